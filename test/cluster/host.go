package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tpctl/tpctl/internal/mountinfo"
)

// managedSysctls are the /proc/sys entries a Node sets itself or that its
// components (kubelet, kube-proxy) change; all are restored at teardown.
func managedSysctls() []string {
	return []string{
		"net/ipv4/ip_forward", // first: writing it resets every conf/*/forwarding
		"net/ipv4/conf/all/forwarding",
		"net/ipv4/conf/default/forwarding",
		"net/ipv4/conf/lo/forwarding",
		"net/ipv4/conf/all/route_localnet",
		"net/ipv4/conf/default/route_localnet",
		"net/ipv4/conf/all/rp_filter",
		"net/ipv6/conf/all/forwarding",
		"net/ipv6/conf/default/forwarding",
		"net/bridge/bridge-nf-call-iptables",
		"net/bridge/bridge-nf-call-ip6tables",
		"net/bridge/bridge-nf-call-arptables",
		"net/netfilter/nf_conntrack_max",
		"net/netfilter/nf_conntrack_tcp_timeout_established",
		"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
		"net/netfilter/nf_conntrack_tcp_be_liberal",
		"vm/overcommit_memory",
		"vm/panic_on_oom",
		"kernel/panic",
		"kernel/panic_on_oops",
		"kernel/keys/root_maxkeys",
		"kernel/keys/root_maxbytes",
	}
}

// managedPaths are host paths the node's components create outside the
// harness directory; the ones that did not exist before are removed.
func managedPaths() []string {
	return []string{
		"/var/lib/kubelet", "/var/lib/cni", "/var/lib/containerd", "/run/containerd",
		"/var/log/containers", "/var/log/pods", "/run/netns", "/var/run/kubernetes",
		"/opt/containerd", "/etc/cni", "/opt/cni", "/run/xtables.lock",
	}
}

// netnsDir is where containerd's CNI setup pins pod network namespaces
// (bind-mounted files named cni-*).
const netnsDir = "/run/netns"

// netnsEntries lists the files in netnsDir.
func netnsEntries() []string {
	entries, _ := os.ReadDir(netnsDir)
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, filepath.Join(netnsDir, e.Name()))
	}
	return out
}

// mountRoots are where a Node's mounts appear (besides its own directory).
func mountRoots() []string {
	return []string{"/run/netns", "/run/containerd", "/var/lib/kubelet", "/var/lib/containerd"}
}

func readSysctl(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join("/proc/sys", name))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func writeSysctl(name, value string) error {
	if err := os.WriteFile(filepath.Join("/proc/sys", name), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// readSysctls returns the managed sysctls that exist on this kernel.
func readSysctls() map[string]string {
	out := map[string]string{}
	for _, n := range managedSysctls() {
		if v, err := readSysctl(n); err == nil {
			out[n] = v
		}
	}
	return out
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// run executes a command with an argument list and returns its output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// runStdin is run with standard input.
func runStdin(ctx context.Context, stdin, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mountPoints lists the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, mountinfo.Unescape(fields[4]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

func under(p, root string) bool {
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")
}

// unmountNew detaches every mount point that is not in before and lies under
// one of roots, deepest first, repeating for stacked mounts.
func unmountNew(before map[string]bool, roots []string) error {
	var errs []error
	for pass := 0; pass < 5; pass++ {
		mps, err := mountPoints()
		if err != nil {
			return err
		}
		var todo []string
		for _, mp := range mps {
			if before[mp] {
				continue
			}
			for _, r := range roots {
				if under(mp, r) {
					todo = append(todo, mp)
					break
				}
			}
		}
		if len(todo) == 0 {
			return errors.Join(errs...)
		}
		sort.Slice(todo, func(i, j int) bool { return len(todo[i]) > len(todo[j]) })
		errs = errs[:0]
		for _, mp := range todo {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errors.Join(append(errs, errors.New("mounts left after 5 passes"))...)
}

// iptablesCleanup removes every KUBE-* and CNI-* chain and the rules that
// jump to them from all tables of one family, in one iptables-restore
// --noflush transaction per table.
func iptablesCleanup(ctx context.Context, family string) error {
	save, restore := family+"-save", family+"-restore"
	if _, err := exec.LookPath(save); err != nil {
		return nil //nolint:nilerr // no iptables, nothing to clean
	}
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := run(ctx, save, "-t", table)
		if err != nil {
			continue // table not present
		}
		script := iptablesCleanupScript(table, out)
		if script == "" {
			continue
		}
		if err := runStdin(ctx, script, restore, "--noflush"); err != nil {
			errs = append(errs, fmt.Errorf("clean %s table %s: %w", family, table, err))
		}
	}
	return errors.Join(errs...)
}

// ownChain reports whether an iptables chain belongs to Kubernetes or CNI.
func ownChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// iptablesCleanupScript turns iptables-save output of one table into an
// iptables-restore script that deletes jumps into own chains from other
// chains, then flushes and deletes the own chains. Empty when nothing to do.
func iptablesCleanupScript(table, save string) string {
	var chains, deletes []string
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if ownChain(name) {
				chains = append(chains, name)
			}
		case strings.HasPrefix(line, "-A "):
			fields := strings.Fields(line)
			if len(fields) < 2 || ownChain(fields[1]) {
				continue
			}
			for i := 2; i+1 < len(fields); i++ {
				if (fields[i] == "-j" || fields[i] == "-g") && ownChain(fields[i+1]) {
					deletes = append(deletes, "-D "+line[len("-A "):])
					break
				}
			}
		}
	}
	if len(chains) == 0 && len(deletes) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*" + table + "\n")
	for _, d := range deletes {
		b.WriteString(d + "\n")
	}
	for _, c := range chains {
		b.WriteString("-F " + c + "\n")
	}
	for _, c := range chains {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// nftTables lists "family name" of every nftables table (nil without nft).
func nftTables(ctx context.Context) ([]string, error) {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, nil //nolint:nilerr // nft not installed: no tables to see
	}
	out, err := run(ctx, "nft", "list", "tables")
	if err != nil {
		return nil, err
	}
	var tables []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	sort.Strings(tables)
	return tables, nil
}

// nftRuleCount counts the rules of one table.
func nftRuleCount(ctx context.Context, family, table string) (int, error) {
	out, err := run(ctx, "nft", "-j", "list", "table", family, table)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return 0, fmt.Errorf("parse nft -j output: %w", err)
	}
	n := 0
	for _, obj := range doc.Nftables {
		if _, ok := obj["rule"]; ok {
			n++
		}
	}
	return n, nil
}

// nftCleanup deletes kube-proxy's own tables, and tables that appeared during
// the run (iptables-nft's filter/nat/…) once they hold no rule.
func nftCleanup(ctx context.Context, before map[string]bool) error {
	tables, err := nftTables(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tables {
		family, name, _ := strings.Cut(t, " ")
		drop := name == "kube-proxy"
		if !drop && !before[t] {
			n, err := nftRuleCount(ctx, family, name)
			drop = err == nil && n == 0
		}
		if drop {
			if _, err := run(ctx, "nft", "delete", "table", family, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupRoots are the mounted cgroup hierarchies (v1 controllers and unified).
func cgroupRoots() []string {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var roots []string
	if pathExists("/sys/fs/cgroup/cgroup.procs") { // pure cgroup v2
		return []string{"/sys/fs/cgroup"}
	}
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if st, err := os.Lstat(p); err == nil && st.IsDir() && pathExists(filepath.Join(p, "cgroup.procs")) {
			roots = append(roots, p)
		}
	}
	return roots
}

// kubepodsPIDs lists processes in any kubepods cgroup.
func kubepodsPIDs() []int {
	seen := map[int]bool{}
	for _, root := range cgroupRoots() {
		_ = filepath.WalkDir(filepath.Join(root, "kubepods"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil //nolint:nilerr // missing hierarchy: nothing to list
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}

// removeKubepodsCgroups removes kubepods trees depth-first in every hierarchy.
func removeKubepodsCgroups() error {
	var errs []error
	for _, root := range cgroupRoots() {
		top := filepath.Join(root, "kubepods")
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 20; try++ { // a dying process can hold a cgroup for a moment
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// pidsWithArg lists processes whose command line mentions marker.
func pidsWithArg(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(data, []byte(marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killAll sends SIGKILL to every pid and waits (bounded) until they are gone.
func killAll(pids []int) {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for time.Now().Before(deadline) {
			if err := syscall.Kill(p, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil && isZombie(st) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// linkNames lists network interfaces.
func linkNames() []string {
	entries, _ := os.ReadDir("/sys/class/net")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// hasAddr reports whether dev carries ip (as "ip/prefix" in `ip -o addr`).
func hasAddr(ctx context.Context, dev, cidr string) bool {
	out, err := run(ctx, "ip", "-o", "addr", "show", "dev", dev)
	return err == nil && strings.Contains(out, " "+cidr+" ")
}
