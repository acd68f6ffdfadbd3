package preflight

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Kernel release thresholds. Kubernetes supports LTS kernels from 4.19 on;
// anything before 3.10 cannot run containers at all. Cilium needs 5.4 and
// recommends 5.10.
var (
	kernelFailBelow       = kernelVersion{3, 10}
	kernelWarnBelow       = kernelVersion{4, 19}
	kernelCiliumFailBelow = kernelVersion{5, 4}
	kernelCiliumWarnBelow = kernelVersion{5, 10}
)

type kernelVersion struct{ major, minor int }

func (v kernelVersion) less(o kernelVersion) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

func (v kernelVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// parseKernelRelease reads "major.minor" from a release string such as
// "6.1.0-18-amd64".
func parseKernelRelease(s string) (kernelVersion, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return kernelVersion{}, fmt.Errorf("kernel release %q: want major.minor", s)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return kernelVersion{}, fmt.Errorf("kernel release %q: major: %w", s, err)
	}
	end := 0
	for end < len(parts[1]) && parts[1][end] >= '0' && parts[1][end] <= '9' {
		end++
	}
	minor, err := strconv.Atoi(parts[1][:end])
	if err != nil {
		return kernelVersion{}, fmt.Errorf("kernel release %q: minor: %w", s, err)
	}
	return kernelVersion{major, minor}, nil
}

// kernelVersionCheck is "KernelVersion".
type kernelVersionCheck struct{ cilium bool }

func (kernelVersionCheck) Name() string { return "KernelVersion" }

func (c kernelVersionCheck) Run(_ context.Context, h *Host) []Result {
	r := Result{Name: c.Name()}
	rel, err := h.KernelRelease()
	if err != nil {
		return []Result{r.warn(fmt.Sprintf("cannot read the kernel release: %s", err),
			"make /proc readable (mount proc) so the kernel can be checked")}
	}
	v, err := parseKernelRelease(rel)
	if err != nil {
		return []Result{r.warn(err.Error(), "check the kernel release by hand (uname -r)")}
	}
	failBelow, warnBelow, who := kernelFailBelow, kernelWarnBelow, "Kubernetes"
	if c.cilium {
		failBelow, warnBelow, who = kernelCiliumFailBelow, kernelCiliumWarnBelow, "Cilium"
	}
	switch {
	case v.less(failBelow):
		return []Result{r.fail(fmt.Sprintf("kernel %s is older than %s, the oldest %s can run on", rel, failBelow, who),
			fmt.Sprintf("upgrade the kernel to %s or newer", warnBelow))}
	case v.less(warnBelow):
		return []Result{r.warn(fmt.Sprintf("kernel %s is older than %s, the oldest kernel %s supports", rel, warnBelow, who),
			fmt.Sprintf("upgrade the kernel to %s or newer", warnBelow))}
	}
	return []Result{r.pass(fmt.Sprintf("kernel %s", rel))}
}

// kernelConfig maps an option name (without the CONFIG_ prefix) to "y" or "m";
// options set to "n" or absent are not in the map. source is the file read.
type kernelConfig struct {
	opts   map[string]string
	source string
}

// kernelConfigPaths lists where a kernel's build configuration is found, in
// order, below Root.
func kernelConfigPaths(release string) []string {
	return []string{
		"/proc/config.gz",
		"/boot/config-" + release,
		"/lib/modules/" + release + "/config",
		"/usr/lib/modules/" + release + "/config",
		"/lib/modules/" + release + "/build/.config",
	}
}

// KernelConfig reads the running kernel's build configuration once.
func (h *Host) kernelConfig() (kernelConfig, error) {
	return h.kconfig.get(func() (kernelConfig, error) {
		rel, err := h.KernelRelease()
		if err != nil {
			return kernelConfig{}, err
		}
		paths := kernelConfigPaths(rel)
		for _, p := range paths {
			b, err := h.ReadFile(p)
			if isNotExist(err) {
				continue
			}
			if err != nil {
				return kernelConfig{}, err
			}
			var r io.Reader = bytes.NewReader(b)
			if strings.HasSuffix(p, ".gz") {
				gz, err := gzip.NewReader(r)
				if err != nil {
					return kernelConfig{}, fmt.Errorf("decompress %s: %w", p, err)
				}
				defer gz.Close()
				r = gz
			}
			opts, err := parseKernelConfig(r)
			if err != nil {
				return kernelConfig{}, fmt.Errorf("parse %s: %w", p, err)
			}
			return kernelConfig{opts: opts, source: p}, nil
		}
		return kernelConfig{}, fmt.Errorf("no kernel config found (looked at %s): %w",
			strings.Join(paths, ", "), errNotFound)
	})
}

// parseKernelConfig reads "CONFIG_X=y|m" lines. Comments ("# CONFIG_X is not
// set") and options with other values (strings, numbers) are skipped.
func parseKernelConfig(r io.Reader) (map[string]string, error) {
	opts := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if !bytes.HasPrefix(line, []byte("CONFIG_")) {
			continue
		}
		name, val, ok := bytes.Cut(line[len("CONFIG_"):], []byte("="))
		if !ok || len(val) != 1 || (val[0] != 'y' && val[0] != 'm') {
			continue
		}
		opts[string(name)] = string(val)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan kernel config: %w", err)
	}
	return opts, nil
}

// kernelOption is one needed kernel configuration option.
type kernelOption struct {
	Name    string // without CONFIG_
	Require bool   // missing → fail (else warn)
	Why     string
}

// kernelOptions returns the options K3s needs with the chosen networking.
// The list follows K3s's check-config and Kubernetes' node requirements.
func kernelOptions(o Options) []kernelOption {
	req := func(name, why string) kernelOption { return kernelOption{name, true, why} }
	opt := func(name, why string) kernelOption { return kernelOption{name, false, why} }
	list := []kernelOption{
		req("NAMESPACES", "container namespaces"),
		req("NET_NS", "network namespaces for pods"),
		req("PID_NS", "PID namespaces for containers"),
		req("IPC_NS", "IPC namespaces for containers"),
		req("UTS_NS", "UTS namespaces for containers"),
		opt("USER_NS", "user namespaces (rootless and user-namespaced pods)"),
		req("CGROUPS", "control groups"),
		req("CGROUP_CPUACCT", "CPU accounting controller"),
		req("CGROUP_DEVICE", "device controller"),
		req("CGROUP_FREEZER", "freezer controller"),
		req("CGROUP_SCHED", "CPU scheduler controller"),
		req("CGROUP_PIDS", "pids controller"),
		req("CPUSETS", "cpuset controller"),
		req("MEMCG", "memory controller"),
		opt("CGROUP_HUGETLB", "hugetlb controller"),
		opt("CFS_BANDWIDTH", "CPU limits for pods"),
		opt("FAIR_GROUP_SCHED", "CPU shares for pods"),
		opt("SECCOMP", "seccomp profiles for containers"),
		req("KEYS", "kernel keyrings (runc session keyring)"),
		req("POSIX_MQUEUE", "POSIX message queues in containers"),
		req("OVERLAY_FS", "the overlayfs snapshotter of containerd"),
		req("VETH", "veth pairs between pods and the host"),
		req("BRIDGE", "the pod bridge"),
		req("BRIDGE_NETFILTER", "iptables on bridged pod traffic (br_netfilter)"),
		req("NETFILTER_XTABLES", "iptables matches and targets"),
		req("NF_CONNTRACK", "connection tracking for Services"),
		req("NF_NAT", "NAT for Services and egress"),
		req("IP_NF_IPTABLES", "iptables for IPv4"),
		req("IP_NF_FILTER", "iptables filter table"),
		req("IP_NF_NAT", "iptables nat table"),
		req("IP_NF_TARGET_MASQUERADE", "MASQUERADE for pod egress"),
		req("NETFILTER_XT_MATCH_ADDRTYPE", "kube-proxy addrtype match"),
		req("NETFILTER_XT_MATCH_CONNTRACK", "kube-proxy conntrack match"),
		req("NETFILTER_XT_MATCH_COMMENT", "rule comments used by kube-proxy"),
		req("NETFILTER_XT_MATCH_MULTIPORT", "multiport match"),
		req("NETFILTER_XT_MATCH_STATISTIC", "kube-proxy load balancing"),
		req("NETFILTER_XT_MARK", "packet marks used by kube-proxy"),
		opt("IP_SET", "ipsets of the network policy controller"),
		opt("NETFILTER_XT_SET", "ipset match of the network policy controller"),
		opt("IP6_NF_IPTABLES", "iptables for IPv6 (dual stack)"),
		opt("NF_TABLES", "nftables backend of iptables"),
	}
	if o.cni() == CNIFlannel {
		switch o.flannelBackend() {
		case "vxlan":
			list = append(list, req("VXLAN", "flannel's VXLAN backend"))
		case "wireguard-native":
			list = append(list, req("WIREGUARD", "flannel's WireGuard backend"))
		}
	}
	if o.cni() == CNICilium {
		list = append(list,
			req("BPF", "eBPF for Cilium"),
			req("BPF_SYSCALL", "eBPF for Cilium"),
			req("BPF_JIT", "eBPF JIT for Cilium"),
			req("NET_CLS_BPF", "eBPF classifier for Cilium"),
			req("NET_CLS_ACT", "traffic-control actions for Cilium"),
			req("NET_SCH_INGRESS", "ingress qdisc for Cilium"),
			req("CGROUP_BPF", "socket load balancing for Cilium"),
			req("CRYPTO_USER_API_HASH", "Cilium's kernel hash API"),
			opt("VXLAN", "Cilium's VXLAN tunnel mode"),
		)
	}
	return list
}

// kernelConfigCheck yields "KernelConfig-CONFIG_<X>" per option, or one
// "KernelConfig" warning when the configuration cannot be read.
type kernelConfigCheck struct{ options []kernelOption }

func (kernelConfigCheck) Name() string { return "KernelConfig" }

func (c kernelConfigCheck) Run(_ context.Context, h *Host) []Result {
	kc, err := h.kernelConfig()
	if err != nil {
		return []Result{{Name: c.Name(), Severity: Warn,
			Message: fmt.Sprintf("cannot check kernel options: %s", err),
			Remedy:  "install the kernel's config file as /boot/config-$(uname -r), or load the configs module (modprobe configs) for /proc/config.gz"}}
	}
	out := make([]Result, 0, len(c.options))
	for _, o := range c.options {
		r := Result{Name: "KernelConfig-CONFIG_" + o.Name}
		switch kc.opts[o.Name] {
		case "y":
			out = append(out, r.pass("built in, for "+o.Why))
		case "m":
			out = append(out, r.pass("module, for "+o.Why))
		default:
			msg := fmt.Sprintf("CONFIG_%s is not set in %s: no %s", o.Name, kc.source, o.Why)
			remedy := fmt.Sprintf("use a kernel built with CONFIG_%s=y or =m (most distribution kernels are)", o.Name)
			if o.Require {
				out = append(out, r.fail(msg, remedy))
			} else {
				out = append(out, r.warn(msg, remedy))
			}
		}
	}
	return out
}
