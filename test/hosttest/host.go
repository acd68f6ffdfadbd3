package hosttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tpctl/tpctl/test/cluster"
)

// Options tune a Host; the zero value boots the cached DefaultRootfs.
type Options struct {
	// Rootfs is the root tarball (default: the cached DefaultRootfs; see
	// scripts/test-deps).
	Rootfs string
	// Name is the machine and host name (default "tpctl-host").
	Name string
	// BindRO are host paths bound read-only into the container, keyed by
	// the path inside.
	BindRO map[string]string
	// LockPath defaults to cluster.DefaultLockPath. The container shares the
	// host's network, so it excludes every other node harness.
	LockPath string
	// HostLock, when set, is a lock the caller holds already.
	HostLock *cluster.HostLock
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
	// DropCapabilities are removed from the container's bounding set
	// (systemd-nspawn --drop-capability), e.g. CAP_SYS_RESOURCE as on an
	// LXC host.
	DropCapabilities []string
	// Network, when set, boots the host in its own network namespace on a
	// test bridge (see Network). nil: the host shares this machine's
	// network (the default).
	Network *Network
}

// Timings are measured while a Host boots.
type Timings struct {
	Extract time.Duration // unpacking the root tarball
	Boot    time.Duration // systemd-nspawn start → is-system-running answered
}

// Host is a booted Debian with a real systemd (PID 1 of its own PID
// namespace) and D-Bus, sharing this machine's network: what it does to
// interfaces, addresses and firewall rules happens on the host, and Close
// undoes it.
type Host struct {
	opts      Options
	dir, root string
	lock      *cluster.HostLock
	cmd       *exec.Cmd
	console   *os.File
	done      chan struct{}
	waitErr   error
	pid1      int
	cgroups   []string // cgroups made for the container, one per hierarchy
	before    cluster.HostSnapshot
	routes    []string // this machine's routes and rules before boot (with Network)
	bridge    *Bridge  // with Network: the bridge joined
	ownBridge bool     // the bridge was made for this host (removed on Close)
	addr      netip.Prefix
	veth      string // with Network: the host's end of its veth pair here
	stateFile string // entry for RecoverStale
	state     string // is-system-running after boot
	timings   Timings
	logf      func(string, ...any)
	closeOnce sync.Once
	closeErr  error
}

// Start boots a Host for the test and tears it down in t.Cleanup (printing
// the container's console and journal when the test failed). Needs root.
func Start(ctx context.Context, t testing.TB, opts Options) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a booted host mounts, makes cgroups and shares the network")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/test-deps installs it)", tool)
		}
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	h, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("boot host: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.Diagnostics(context.Background()))
		}
		if err := h.Close(); err != nil {
			t.Errorf("tear down host: %v", err)
		}
	})
	return h
}

// New boots a Host; the caller must Close it.
func New(ctx context.Context, opts Options) (_ *Host, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a booted host needs root")
	}
	if opts.Name == "" {
		opts.Name = "tpctl-host"
	}
	if opts.Rootfs == "" {
		dir, err := CacheDir()
		if err != nil {
			return nil, err
		}
		if opts.Rootfs, err = CachedRootfs(dir, DefaultRootfs()); err != nil {
			return nil, err
		}
	}
	h := &Host{opts: opts, logf: opts.Logf, done: make(chan struct{})}
	if h.logf == nil {
		h.logf = func(string, ...any) {}
	}
	if h.lock = opts.HostLock; h.lock == nil {
		path := opts.LockPath
		if path == "" {
			path = cluster.DefaultLockPath
		}
		if h.lock, err = cluster.AcquireHostLock(ctx, path); err != nil {
			return nil, err
		}
	}
	if err := RecoverStale(opts.LockPath, h.logf); err != nil {
		_ = h.releaseLock()
		return nil, err
	}
	// A host on a shared bridge leaves this machine's check to whoever made
	// the bridge (its other hosts come and go meanwhile).
	if opts.Network == nil || opts.Network.Bridge == nil {
		if h.before, err = cluster.TakeHostSnapshot(ctx); err != nil {
			_ = h.releaseLock()
			return nil, fmt.Errorf("snapshot the host: %w", err)
		}
		if opts.Network != nil {
			if h.routes, err = MachineRoutes(ctx); err != nil {
				_ = h.releaseLock()
				return nil, err
			}
		}
	}
	defer func() {
		if err != nil {
			if d := h.Diagnostics(context.Background()); d != "" {
				err = fmt.Errorf("%w\n%s", err, d)
			}
			if cerr := h.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("teardown after failed boot: %w", cerr))
			}
		}
	}()
	if h.dir, err = os.MkdirTemp("", "tpctl-hosttest-"); err != nil {
		return nil, fmt.Errorf("make host dir: %w", err)
	}
	h.root = filepath.Join(h.dir, opts.Name)
	if err := os.Mkdir(h.root, 0o755); err != nil {
		return nil, fmt.Errorf("make root dir: %w", err)
	}
	if err := h.saveState(); err != nil {
		return nil, err
	}
	if n := opts.Network; n != nil {
		if h.bridge = n.Bridge; h.bridge == nil {
			if h.bridge, err = NewBridge(ctx, BridgeOptions{Name: n.BridgeName, Subnet: n.Subnet, LockPath: opts.LockPath}); err != nil {
				return nil, err
			}
			h.ownBridge = true
		}
		a, err := h.bridge.Allocate(n.Address)
		if err != nil {
			return nil, err
		}
		h.addr = netip.PrefixFrom(a, h.bridge.Subnet().Bits())
	}
	begin := time.Now()
	if _, err := run(ctx, nil, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", h.root, "-xf", opts.Rootfs); err != nil {
		return nil, fmt.Errorf("unpack root: %w", err)
	}
	h.timings.Extract = time.Since(begin)
	if err := configureRoot(h.root, opts.Name, v1Controllers()); err != nil {
		return nil, err
	}
	if h.bridge != nil {
		if err := configureNetwork(h.root, h.addr, h.bridge.Gateway()); err != nil {
			return nil, err
		}
	}
	begin = time.Now()
	if err := h.boot(ctx); err != nil {
		return nil, err
	}
	if h.bridge != nil {
		if err := h.waitNetwork(ctx); err != nil {
			return nil, err
		}
		if err := h.findVeth(ctx); err != nil {
			return nil, err
		}
	}
	h.timings.Boot = time.Since(begin)
	h.logf("hosttest: %s booted (%s) in %s (root unpacked in %s)", opts.Name, h.state,
		h.timings.Boot.Round(time.Millisecond), h.timings.Extract.Round(time.Millisecond))
	return h, nil
}

// nspawnArgs are the settings HARNESS.md measured: each one was a failure
// before it was set.
func (h *Host) nspawnArgs() []string {
	args := []string{
		"-D", h.root, "-M", h.opts.Name,
		"--register=no", "--keep-unit", "-b",
		// CAP_NET_ADMIN: the node address and CNI; CAP_SYSLOG: the kubelet
		// reads /dev/kmsg (dmesg_restrict=1).
		"--capability=CAP_NET_ADMIN,CAP_SYSLOG",
		"--bind=/dev/kmsg",
		// runc joins a session keyring.
		"--system-call-filter=@keyring",
		"--console=read-only",
		"--link-journal=no",
		"--resolv-conf=copy-host",
		"--timezone=off",
	}
	if len(h.opts.DropCapabilities) > 0 {
		args = append(args, "--drop-capability="+strings.Join(h.opts.DropCapabilities, ","))
	}
	for inside, host := range h.opts.BindRO {
		args = append(args, "--bind-ro="+host+":"+inside)
	}
	if h.bridge != nil {
		// A veth pair: host0 inside, vb-<name> on this machine in the bridge.
		args = append(args, "--network-bridge="+h.bridge.Name())
	}
	return args
}

func (h *Host) boot(ctx context.Context) error {
	console, err := os.OpenFile(filepath.Join(h.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open console log: %w", err)
	}
	h.console = console
	cmd := exec.Command("systemd-nspawn", h.nspawnArgs()...)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The container's cgroups must be its own: start nspawn from a cgroup
	// made for it in every hierarchy, so teardown can remove them all.
	if err := h.startInOwnCgroups(cmd); err != nil {
		return err
	}
	go func() {
		h.waitErr = cmd.Wait()
		close(h.done)
	}()
	h.cmd = cmd
	if h.pid1, err = h.findPID1(ctx); err != nil {
		return err
	}
	// is-system-running --wait blocks until start-up finished.
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		out, err := h.Exec(bctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			h.state = state
			return nil
		}
		if bctx.Err() != nil {
			return fmt.Errorf("wait for the container's systemd (state %q): %w", state, errors.Join(bctx.Err(), err))
		}
		select {
		case <-h.done:
			return fmt.Errorf("systemd-nspawn exited during boot: %w", h.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// findPID1 waits for the container's init: the descendant of nspawn whose
// PID in its own namespace is 1.
func (h *Host) findPID1(ctx context.Context) (int, error) {
	deadline := time.After(30 * time.Second)
	for {
		if pid := containerInit(h.cmd.Process.Pid); pid > 0 {
			return pid, nil
		}
		select {
		case <-h.done:
			return 0, fmt.Errorf("systemd-nspawn exited: %w", h.waitErr)
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for the container's init: %w", ctx.Err())
		case <-deadline:
			return 0, errors.New("the container's init did not appear within 30s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// containerInit returns the PID of the process below parent that is PID 1 of
// a nested PID namespace, or 0.
func containerInit(parent int) int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	nspid := map[int][]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		ppid := 0
		sc := bufio.NewScanner(strings.NewReader(string(st)))
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				nspid[pid] = strings.Fields(v)
			}
		}
		children[ppid] = append(children[ppid], pid)
	}
	queue := []int{parent}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if ns := nspid[c]; len(ns) >= 2 && ns[len(ns)-1] == "1" {
				return c
			}
			queue = append(queue, c)
		}
	}
	return 0
}

// cleanEnv is a plain root environment: nothing of the test process's own
// (proxies, KUBECONFIG, NOTIFY_SOCKET, test settings) leaks into the host.
func cleanEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LANG=C.UTF-8", "TERM=dumb",
	}
}

// Root is the container's root directory as seen from the host. Paths the
// container mounts over (/run, /tmp, /proc, /sys) differ inside: use Path.
func (h *Host) Root() string { return h.root }

// Path is a path inside the running container, reachable from the host
// through its init's root (its mounts included).
func (h *Host) Path(inside string) string {
	return filepath.Join("/proc", strconv.Itoa(h.pid1), "root", inside)
}

// Address is the host's address on its bridge (invalid without Network).
func (h *Host) Address() netip.Addr { return h.addr.Addr() }

// Bridge is the bridge the host is on (nil without Network).
func (h *Host) Bridge() *Bridge { return h.bridge }

// PID1 is the host PID of the container's systemd.
func (h *Host) PID1() int { return h.pid1 }

// Name is the machine's name (also its host name).
func (h *Host) Name() string { return h.opts.Name }

// SystemState is what `systemctl is-system-running` said after boot.
func (h *Host) SystemState() string { return h.state }

// Timings returns the measured boot durations.
func (h *Host) Timings() Timings { return h.timings }

// Exec runs a program inside the container (all its namespaces, a plain
// root environment) and returns its standard output; the error carries
// standard error.
func (h *Host) Exec(ctx context.Context, args ...string) (string, error) {
	var out, errb strings.Builder
	err := h.ExecIO(ctx, nil, &out, &errb, args...)
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, tail(errb.String(), 4000))
	}
	return out.String(), nil
}

// Command returns an unstarted command that runs args inside the container.
func (h *Host) Command(ctx context.Context, args ...string) *exec.Cmd {
	full := []string{"-t", strconv.Itoa(h.pid1), "-a", "--"}
	if len(h.opts.DropCapabilities) > 0 {
		// nsenter keeps this process's capabilities: drop from the bounding
		// set what the container lacks, as a login inside it would.
		var drop []string
		for _, c := range h.opts.DropCapabilities {
			drop = append(drop, "-"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		}
		full = append(full, "setpriv", "--bounding-set", strings.Join(drop, ","), "--")
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = cleanEnv()
	return cmd
}

// ExecIO runs args inside the container with the given streams.
func (h *Host) ExecIO(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args ...string) error {
	if h.pid1 == 0 {
		return errors.New("the host is not running")
	}
	cmd := h.Command(ctx, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("in %s: %s: %w", h.opts.Name, strings.Join(args, " "), err)
	}
	return nil
}

// CopyIn copies a host file into the container's root file system at
// inside (a path on the root's disk, not below /run or /tmp) with mode.
func (h *Host) CopyIn(src, inside string, mode os.FileMode) error {
	dst := filepath.Join(h.root, inside)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("make dir for %s: %w", inside, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, inside, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// Journal returns the last lines of the container's journal (of one unit
// when unit is not empty).
func (h *Host) Journal(ctx context.Context, unit string, lines int) string {
	args := []string{"journalctl", "--no-pager", "-o", "short-monotonic", "-n", strconv.Itoa(lines)}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	out, err := h.Exec(ctx, args...)
	if err != nil {
		return fmt.Sprintf("(journal: %v)", err)
	}
	return out
}

// Diagnostics is the console's tail and the failed units, for a failed test.
func (h *Host) Diagnostics(ctx context.Context) string {
	var b strings.Builder
	if h.dir != "" {
		if data, err := os.ReadFile(filepath.Join(h.dir, "console.log")); err == nil {
			fmt.Fprintf(&b, "===== console of %s =====\n%s\n", h.opts.Name, tail(string(data), 6000))
		}
	}
	if h.pid1 > 0 && h.running() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, _ := h.Exec(ctx, "systemctl", "--failed", "--no-pager")
		fmt.Fprintf(&b, "===== failed units =====\n%s\n", out)
	}
	return b.String()
}

func (h *Host) running() bool {
	if h.cmd == nil {
		return false
	}
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

func (h *Host) releaseLock() error {
	if h.opts.HostLock != nil {
		return nil
	}
	return h.lock.Release()
}
