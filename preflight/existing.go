package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// K3sUnitPath is the systemd unit tpctl writes for K3s. A unit there whose
// [Unit] section carries the marker the systemd package writes (systemd
// ignores X- keys)
//
//	[Unit]
//	X-Tpctl-Managed=true
//
// marks the K3s on this host as installed by tpctl; the K3s binary is the
// first word of its ExecStart=. Preflight then treats that K3s and the ports
// its processes hold as tpctl's own rather than as a clash.
const (
	K3sUnitPath = "/etc/systemd/system/k3s.service"
	// K3sAgentUnitPath is the unit of a K3s agent (tpctl join); it carries
	// the same marker.
	K3sAgentUnitPath = "/etc/systemd/system/k3s-agent.service"
	TpctlUnitMarker  = "X-Tpctl-Managed"
)

// process is one entry of /proc.
type process struct {
	PID  int
	Comm string
}

// processes lists /proc/<pid>/comm once.
func (h *Host) processes() ([]process, error) {
	return h.procs.get(func() ([]process, error) {
		ents, err := os.ReadDir(h.Path("/proc"))
		if err != nil {
			return nil, fmt.Errorf("list /proc: %w", err)
		}
		var out []process
		buf := make([]byte, 64)
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid <= 0 {
				continue
			}
			n, err := readSmall(h.Path("/proc/"+e.Name()+"/comm"), buf)
			if err != nil {
				continue // the process exited
			}
			out = append(out, process{PID: pid, Comm: strings.TrimSpace(string(buf[:n]))})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
		return out, nil
	})
}

// running returns the processes whose comm is one of names.
func (h *Host) running(names ...string) []process {
	procs, _ := h.processes()
	var out []process
	for _, p := range procs {
		for _, n := range names {
			if p.Comm == n {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseTpctlUnit reports whether a unit file carries the tpctl marker
// (X-Tpctl-Managed=true in [Unit]) and returns the binary of its
// ExecStart= in [Service].
func parseTpctlUnit(b []byte) (marked bool, binary string) {
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case section == "Unit" && k == TpctlUnitMarker:
			marked = v == "true"
		case section == "Service" && k == "ExecStart" && binary == "":
			v = strings.TrimLeft(v, "-@:+!")
			if f := strings.Fields(v); len(f) > 0 && f[0] != `\` {
				binary = f[0]
			}
		}
	}
	return marked, binary
}

// installInfo is what exists on the host already.
type installInfo struct {
	// ByTpctl: a K3s installed by tpctl (the marked unit is present).
	ByTpctl bool
	// Unit is the marked unit's path (ByTpctl).
	Unit string
	// K3sBinary is the K3s binary of tpctl's unit (ByTpctl) or the first
	// K3s binary found.
	K3sBinary string
	K3s       []string // evidence of a K3s: paths and processes
	Kube      []string // evidence of other Kubernetes: kubelet & co.
	Runtime   []string // evidence of a container runtime
}

var (
	k3sPaths     = []string{"/usr/local/bin/k3s", "/usr/bin/k3s", "/etc/rancher/k3s", "/var/lib/rancher/k3s", "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service"}
	kubePaths    = []string{"/usr/bin/kubelet", "/usr/local/bin/kubelet", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/manifests", "/var/lib/kubelet/config.yaml"}
	runtimePaths = []string{"/run/containerd/containerd.sock", "/var/run/docker.sock", "/run/docker.sock", "/usr/bin/dockerd", "/run/crio/crio.sock"}
	k3sProcs     = []string{"k3s", "k3s-server", "k3s-agent"}
	kubeProcs    = []string{"kubelet", "kube-apiserver", "kube-proxy", "kube-scheduler", "kube-controller"}
	runtimeProcs = []string{"containerd", "dockerd", "crio", "podman"}
)

func (h *Host) installInfo() (*installInfo, error) {
	return h.install.get(func() (*installInfo, error) {
		ii := &installInfo{}
		for _, unit := range []string{K3sUnitPath, K3sAgentUnitPath} {
			if b, err := h.ReadFile(unit); err == nil {
				if marked, bin := parseTpctlUnit(b); marked {
					ii.ByTpctl, ii.K3sBinary, ii.Unit = true, bin, unit
					break
				}
			}
		}
		find := func(paths, procs []string) []string {
			var found []string
			for _, p := range paths {
				if h.Exists(p) {
					found = append(found, p)
				}
			}
			for _, p := range h.running(procs...) {
				found = append(found, fmt.Sprintf("process %s (pid %d)", p.Comm, p.PID))
			}
			return found
		}
		ii.K3s = find(k3sPaths, k3sProcs)
		ii.Kube = find(kubePaths, kubeProcs)
		ii.Runtime = find(runtimePaths, runtimeProcs)
		if ii.K3sBinary == "" {
			for _, p := range []string{"/usr/local/bin/k3s", "/usr/bin/k3s"} {
				if h.Exists(p) {
					ii.K3sBinary = p
					break
				}
			}
		}
		return ii, nil
	})
}

// existingInstallCheck is "ExistingInstall". K3s's own containerd lives under
// /run/k3s, so a separate container runtime is only a warning; another
// K3s or Kubernetes would fight over ports, iptables and the kubelet's
// directories, so it fails.
func existingInstallCheck() Check {
	return checkFunc{name: "ExistingInstall", run: func(_ context.Context, h *Host, r Result) Result {
		ii, err := h.installInfo()
		if err != nil {
			return r.warn(fmt.Sprintf("cannot look for existing installs: %s", err), "check by hand for k3s, kubelet and containerd")
		}
		switch {
		case ii.ByTpctl && len(ii.Kube) == 0:
			msg := fmt.Sprintf("K3s already installed by tpctl (%s, binary %s)", ii.Unit, ii.K3sBinary)
			// K3s's own containerd shows up as a "containerd" process: name
			// only the paths of another runtime here.
			var other []string
			for _, p := range runtimePaths {
				if h.Exists(p) {
					other = append(other, p)
				}
			}
			if len(other) > 0 {
				msg += "; another container runtime is present too: " + strings.Join(other, ", ")
			}
			return r.pass(msg)
		case len(ii.K3s) > 0 && !ii.ByTpctl:
			return r.fail("a K3s not installed by tpctl is present: "+strings.Join(ii.K3s, ", "),
				"remove it first (/usr/local/bin/k3s-uninstall.sh for an install-script K3s), or use another host")
		case len(ii.Kube) > 0:
			return r.fail("another Kubernetes is present: "+strings.Join(ii.Kube, ", "),
				"remove it first (kubeadm reset, or the distribution's uninstall), or use another host")
		case len(ii.Runtime) > 0:
			return r.warn("a container runtime is present: "+strings.Join(ii.Runtime, ", ")+
				"; K3s runs its own containerd under /run/k3s, but both compete for memory and iptables rules",
				"stop and disable the other runtime if this host is dedicated to tpctl (systemctl disable --now containerd docker)")
		}
		return r.pass("no K3s, Kubernetes or container runtime found")
	}}
}
