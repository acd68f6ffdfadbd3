package installer

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilterRulesetGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "iptables-save.txt"))
	require.NoError(t, err)
	out, changed := FilterRuleset(string(in))
	require.True(t, changed)
	golden(t, "iptables-filtered.txt", []byte(out))
	for _, gone := range []string{"KUBE-", "CNI-", "FLANNEL-"} {
		assert.NotContains(t, out, gone)
	}
	for _, kept := range []string{"ssh from the office, keep", "DOCKER-USER -j RETURN", "--to-destination 10.0.0.5:8080", "-o eth0 -j MASQUERADE", "*nat", "COMMIT"} {
		assert.Contains(t, out, kept)
	}
	again, changed := FilterRuleset(out)
	assert.False(t, changed)
	assert.Equal(t, out, again)
}

func TestSplitRule(t *testing.T) {
	assert.Equal(t, []string{"-A", "INPUT", "-m", "comment", "--comment", "a \"quoted\" b", "-j", "KUBE-X"},
		splitRule(`-A INPUT -m comment --comment "a \"quoted\" b" -j KUBE-X`))
	assert.Equal(t, []string{"-A", "X", "--comment", ""}, splitRule(`-A X --comment ""`))
}

func FuzzFilterRuleset(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "iptables-save.txt"))
	require.NoError(f, err)
	f.Add(string(seed))
	f.Add("*filter\n:KUBE-X - [0:0]\n-A INPUT -j KUBE-X\nCOMMIT\n")
	f.Add("-A \"unterminated -j KUBE-")
	f.Fuzz(func(t *testing.T, in string) {
		out, changed := FilterRuleset(in)
		// Only whole lines are dropped, and filtering is idempotent.
		assert.LessOrEqual(t, len(out), len(in))
		assert.Equal(t, changed, out != in)
		again, changed2 := FilterRuleset(out)
		assert.False(t, changed2)
		assert.Equal(t, out, again)
		for _, line := range strings.Split(out, "\n") {
			tr := strings.TrimSpace(line)
			if strings.HasPrefix(tr, ":") {
				name, _, _ := strings.Cut(tr[1:], " ")
				assert.False(t, managedChain(name), line)
			}
		}
	})
}

func TestMountinfo(t *testing.T) {
	info := []byte(`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
100 22 0:50 / /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw
101 22 0:51 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/kube-api-access rw - tmpfs tmpfs rw
102 22 0:4 net:[4026532] /run/netns/cni-1234 rw - nsfs nsfs rw
103 22 0:52 / /var/lib/kubelet/pods/u1/volumes/my\040vol rw - tmpfs tmpfs rw
104 22 0:53 / /var/lib/kubeletother rw - tmpfs tmpfs rw
105 22 0:54 / /var/lib/kubelet rw - ext4 /dev/vdb rw
106 22 0:4 net:[4026533] /run/netns/mine rw - nsfs nsfs rw
broken line
`)
	points := mountPoints(info)
	assert.Contains(t, points, "/var/lib/kubelet/pods/u1/volumes/my vol")
	got := mountsUnder(points, []string{"/run/k3s/", "/var/lib/kubelet/", "/run/netns/cni-"})
	assert.Equal(t, []string{
		"/var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/kube-api-access",
		"/var/lib/kubelet/pods/u1/volumes/my vol",
		"/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
		"/run/netns/cni-1234",
	}, got, "deepest first; /var/lib/kubeletother, /var/lib/kubelet itself and another netns are left alone")
}

func FuzzMountinfo(f *testing.F) {
	f.Add([]byte("22 1 8:1 / / rw - ext4 /dev/vda rw\n100 22 0:50 / /run/k3s/x\\040y rw - tmpfs t rw\n"))
	f.Add([]byte("1 2 3 4 \\0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		points := mountPoints(b)
		under := mountsUnder(points, []string{"/run/k3s/"})
		for _, p := range under {
			assert.True(t, strings.HasPrefix(p, "/run/k3s/"), p)
		}
	})
}

func TestParseStatPPID(t *testing.T) {
	assert.Equal(t, 77, parseStatPPID([]byte("123 (containerd-shim) S 77 123 ...")))
	assert.Equal(t, 5, parseStatPPID([]byte("9 (odd) name) (x) R 5 9 9")))
	assert.Equal(t, 0, parseStatPPID([]byte("garbage")))
}

func TestLeftovers(t *testing.T) {
	procs := []proc{
		{PID: 1, PPID: 0, Exe: "/sbin/init"},
		{PID: 10, PPID: 1, Exe: "/usr/sbin/sshd"},
		{PID: 20, PPID: 1, Exe: "/var/lib/rancher/k3s/data/abc/bin/containerd-shim-runc-v2"},
		{PID: 21, PPID: 20, Exe: "/pause"},
		{PID: 22, PPID: 20, Exe: "/usr/bin/fluent-bit"},
		{PID: 23, PPID: 22, Exe: "/bin/sh"},
		{PID: 30, PPID: 1, Exe: "/usr/bin/containerd-shim-runc-v2", Cgroups: []string{"/system.slice/k3s.service"}},
		{PID: 31, PPID: 30, Exe: "/pause"},
		{PID: 40, PPID: 1, Exe: "/usr/bin/other", Cgroups: []string{"/system.slice/k3s.service.bak"}},
		{PID: 50, PPID: 1, Exe: "/var/lib/rancher/k3s-other/x"},
		{PID: 60, PPID: 10, Exe: "/var/lib/rancher/k3s/data/abc/bin/tpctl-itself"},
		// The user's own programs in the data dir, outside data/.
		{PID: 70, PPID: 1, Exe: "/var/lib/rancher/k3s/mytool/backup"},
		{PID: 71, PPID: 1, Exe: "/var/lib/rancher/k3s/database"},
		{PID: 72, PPID: 1, Exe: "/var/lib/rancher/k3s/data"},
		// A unit of the same name elsewhere is not K3s's.
		{PID: 80, PPID: 1, Exe: "/usr/bin/x", Cgroups: []string{"/user.slice/user-1000.slice/user@1000.service/app.slice/k3s.service"}},
		{PID: 81, PPID: 1, Exe: "/usr/bin/y", Cgroups: []string{"/system.slice/k3s.service/sub"}},
		{PID: 90, PPID: 1, Exe: "/var/lib/rancher/k3s/data/abc/bin/containerd-shim-runc-v2 (deleted)"},
	}
	assert.Equal(t, []int{20, 21, 22, 23, 30, 31, 81, 90}, leftovers(procs, "/var/lib/rancher/k3s", 60))
}

func TestUnitCgroups(t *testing.T) {
	v1 := "12:memory:/system.slice/k3s.service\n11:pids:/system.slice/k3s.service\n2:cpu,cpuacct:/other\n1:name=systemd:/system.slice/k3s.service\n0::/\n"
	assert.Equal(t, []string{"/system.slice/k3s.service", "/system.slice/k3s.service", "/"}, unitCgroups([]byte(v1)))
	assert.Equal(t, []string{"/system.slice/ssh.service"}, unitCgroups([]byte("0::/system.slice/ssh.service\n")))
	// Only the memory controller says k3s.service: not enough.
	procs := []proc{{PID: 5, PPID: 1, Cgroups: unitCgroups([]byte("4:memory:/system.slice/k3s.service\n1:name=systemd:/user.slice\n"))}}
	assert.Empty(t, leftovers(procs, "/var/lib/rancher/k3s", 0))
}

// fakeHost is a machine for uninstall: a fake /proc, mount table, links
// and firewall, changed by the operations as the real ones would be.
type fakeHost struct {
	mu      sync.Mutex
	root    string
	links   []string
	mounts  []string
	saves   map[string]string
	nft     []string
	killed  []int
	execLog []string
	// onChange runs at the first iptables change.
	onChange func()
}

func newFakeHost(t *testing.T, root string) *fakeHost {
	ipt, err := os.ReadFile(filepath.Join("testdata", "iptables-save.txt"))
	require.NoError(t, err)
	h := &fakeHost{root: root,
		links: []string{"lo", "eth0", "cni0", "flannel.1", "cilium_host", "cilium_net", "lxcbr0"},
		saves: map[string]string{"iptables-save": string(ipt), "ip6tables-save": "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"},
		nft:   []string{"table ip kube-proxy", "table ip6 kube-proxy", "table inet filter"},
	}
	h.mounts = []string{"/", filepath.Join(root, "/run/k3s/containerd/x/rootfs"), filepath.Join(root, "/var/lib/kubelet/pods/p/volumes/v"),
		filepath.Join(root, "/run/netns/cni-1"), filepath.Join(root, "/srv/other"), "/proc"}
	h.writeMountinfo(t)
	h.addProc(t, 1, 0, "/sbin/init", "/")
	h.addProc(t, 200, 1, filepath.Join(root, "/var/lib/rancher/k3s/data/x/bin/containerd-shim-runc-v2"), "/system.slice/k3s.service")
	h.addProc(t, 201, 200, "/pause", "/kubepods/besteffort/pod1/c1")
	h.addProc(t, 300, 1, "/usr/sbin/sshd", "/system.slice/ssh.service")
	return h
}

func (h *fakeHost) writeMountinfo(t *testing.T) {
	var b strings.Builder
	for i, m := range h.mounts {
		fmt.Fprintf(&b, "%d 1 0:%d / %s rw - tmpfs tmpfs rw\n", 100+i, i, strings.ReplaceAll(m, " ", `\040`))
	}
	p := filepath.Join(h.root, "proc", "self", "mountinfo")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
}

func (h *fakeHost) addProc(t *testing.T, pid, ppid int, exe, cgroup string) {
	d := filepath.Join(h.root, "proc", strconv.Itoa(pid))
	require.NoError(t, os.MkdirAll(d, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d, "stat"), []byte(fmt.Sprintf("%d (x) S %d 1 1", pid, ppid)), 0o644))
	require.NoError(t, os.Symlink(exe, filepath.Join(d, "exe")))
	require.NoError(t, os.WriteFile(filepath.Join(d, "cgroup"), []byte("0::"+cgroup+"\n"), 0o644))
}

func (h *fakeHost) ops(t *testing.T) HostOps {
	return HostOps{
		ProcDir: filepath.Join(h.root, "proc"),
		Self:    999,
		Kill: func(pid int) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.killed = append(h.killed, pid)
			return os.RemoveAll(filepath.Join(h.root, "proc", strconv.Itoa(pid)))
		},
		Unmount: func(p string) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			i := slices.Index(h.mounts, p)
			if i < 0 {
				return fmt.Errorf("%s: not mounted", p)
			}
			h.mounts = slices.Delete(h.mounts, i, i+1)
			h.writeMountinfo(t)
			return nil
		},
		Links: func() ([]string, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return slices.Clone(h.links), nil
		},
		LookPath: func(n string) (string, error) {
			if slices.Contains([]string{"iptables-save", "iptables", "ip6tables-save", "ip6tables", "nft", "ip"}, n) {
				return "/usr/sbin/" + n, nil
			}
			return "", fs.ErrNotExist
		},
		Exec: func(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.execLog = append(h.execLog, strings.Join(append([]string{name}, args...), " "))
			switch {
			case strings.HasSuffix(name, "-save"):
				return []byte(h.saves[name]), nil
			case name == "iptables" || name == "ip6tables":
				return nil, h.iptables(name+"-save", args)
			case name == "nft" && args[0] == "list":
				return []byte(strings.Join(h.nft, "\n") + "\n"), nil
			case name == "nft" && args[0] == "delete":
				h.nft = slices.DeleteFunc(h.nft, func(s string) bool { return s == "table "+args[2]+" "+args[3] })
				return nil, nil
			case name == "ip" && args[1] == "delete":
				if !slices.Contains(h.links, args[2]) {
					return nil, fmt.Errorf("Cannot find device %q", args[2])
				}
				h.links = slices.DeleteFunc(h.links, func(s string) bool {
					return s == args[2] || (args[2] == "cilium_host" && s == "cilium_net")
				})
				return nil, nil
			}
			return nil, fmt.Errorf("unexpected command %s %v", name, args)
		},
	}
}

// iptables applies one -D, -F or -X command to the fake rule set, as
// iptables would; the first change lets "another program" add a rule.
func (h *fakeHost) iptables(save string, args []string) error {
	if len(args) < 5 || args[0] != "-w" || args[1] != "-t" {
		return fmt.Errorf("unexpected iptables arguments %v", args)
	}
	if h.onChange != nil {
		h.onChange()
		h.onChange = nil
	}
	table, op, chain, rest := args[2], args[3], args[4], args[5:]
	lines := strings.SplitAfter(h.saves[save], "\n")
	cur := ""
	found := false
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "*") {
			cur = t[1:]
		}
		if cur != table {
			out = append(out, l)
			continue
		}
		drop := false
		switch op {
		case "-D":
			drop = !found && slices.Equal(splitRule(t), append([]string{"-A", chain}, rest...))
		case "-F":
			drop = strings.HasPrefix(t, "-A "+chain+" ")
		case "-X":
			if strings.HasPrefix(t, "-A ") && (strings.HasPrefix(t, "-A "+chain+" ") || slices.Contains(splitRule(t), chain)) {
				return fmt.Errorf("iptables: chain %s is not empty or still referenced", chain)
			}
			drop = strings.HasPrefix(t, ":"+chain+" ")
		default:
			return fmt.Errorf("unexpected iptables operation %s", op)
		}
		found = found || drop
		if !drop {
			out = append(out, l)
		}
	}
	if !found && op != "-F" {
		return fmt.Errorf("iptables: no such rule or chain in %s: %v", table, args)
	}
	h.saves[save] = strings.Join(out, "")
	return nil
}

// tree lists every path below root except the fake /proc.
func tree(t *testing.T, root string) []string {
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "proc" {
			return filepath.SkipDir
		}
		out = append(out, rel)
		return nil
	}))
	return out
}

func TestInstallUninstallLeavesTheHostAsItWas(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts.RestrictOOMScoreAdj = true
	// What the host had before: kept.
	for _, p := range []string{"/etc/hostname", "/usr/bin/true", "/var/lib/dpkg/status"} {
		require.NoError(t, os.MkdirAll(filepath.Join(ti.root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ti.root, p), []byte("host"), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(ti.root, "run"), 0o755))
	host := newFakeHost(t, ti.root)
	before := tree(t, ti.root)

	_, err := ti.run(t)
	require.NoError(t, err)
	// K3s's own run-time files appear while it runs.
	for _, d := range []string{"/var/lib/kubelet/pods/p/volumes/v", "/run/k3s/containerd/x/rootfs", "/var/lib/cni/networks"} {
		require.NoError(t, os.MkdirAll(filepath.Join(ti.root, d), 0o755))
	}
	require.NotEqual(t, before, tree(t, ti.root))

	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))
	assert.Equal(t, []string{"undo start K3s", "kill leftover processes", "unmount", "delete network interfaces", "remove firewall rules", "remove files"}, rec.of(EventDone))

	assert.Equal(t, before, tree(t, ti.root), "exactly what the install created is gone")
	assert.Equal(t, []int{200, 201}, host.killed)
	assert.Equal(t, []string{"/", filepath.Join(ti.root, "/srv/other"), "/proc"}, host.mounts)
	assert.Equal(t, []string{"lo", "eth0", "lxcbr0"}, host.links)
	assert.Equal(t, []string{"table inet filter"}, host.nft)
	assert.NotContains(t, host.saves["iptables-save"], "KUBE-")
	assert.Contains(t, host.saves["iptables-save"], "ssh from the office, keep")
	for _, c := range host.execLog {
		assert.NotContains(t, c, "ip6tables ", "an unchanged rule set is not touched")
		assert.NotContains(t, c, "-restore", "rules are deleted one by one, never restored whole")
	}
	calls := ti.k3s.Calls()
	assert.Equal(t, []string{"stop+disable", "reset-failed", "reload"}, calls[len(calls)-3:], "systemd forgets the unit at the end")

	// Nothing left to uninstall; install works again on the same host.
	_, _, err = NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	assert.True(t, NotInstalled(err))
	ti.k3s.loaded = false
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "start K3s")
}

func TestUninstallKeepData(t *testing.T) {
	ti := newTestInstall(t, Config{})
	host := newFakeHost(t, ti.root)
	_, err := ti.run(t)
	require.NoError(t, err)
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t), KeepData: true})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	img := filepath.Join(ImagesDir(ti.opts.Config), "k3s-airgap-images-amd64.tar.zst")
	_, err = os.Stat(filepath.Join(ti.root, img))
	assert.NoError(t, err, "the data dir stays")
	for _, p := range []string{K3sBinaryPath, UnitPath, K3sConfigPath} {
		_, err := os.Stat(filepath.Join(ti.root, p))
		assert.ErrorIs(t, err, os.ErrNotExist, p)
	}
	st, err := LoadState(filepath.Join(ti.root, StatePath), nil)
	require.NoError(t, err)
	for _, c := range st.Get().Created {
		assert.True(t, c.Data || inside(c.Path, DefaultDataDir), "only kept data stays recorded: %s", c.Path)
	}
	assert.NotEmpty(t, st.Get().Created)

	// A later full uninstall removes the kept data too.
	host2 := newFakeHost(t, t.TempDir())
	plan, _, err = NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host2.ops(t)})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	_, err = os.Stat(filepath.Join(ti.root, DefaultDataDir))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
