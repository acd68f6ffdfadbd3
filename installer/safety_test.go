package installer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
)

func TestK3sMountPrefixesLeaveTheUsersMounts(t *testing.T) {
	c := completed(t, Config{DataDir: "/srv/k3s"})
	points := []string{"/srv/k3s/backup", "/srv/k3s/agent/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs",
		"/srv/k3s/agent", "/srv/k3s", "/srv/k3s/agentx", "/run/netns/cni-1", "/run/cilium/cgroupv2"}
	assert.Equal(t, []string{"/srv/k3s/agent/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs", "/run/netns/cni-1"},
		mountsUnder(points, k3sMountPrefixes(c)), "only below <dataDir>/agent; the data dir and the user's mounts in it stay")
}

// startCopy runs a copy of /bin/sleep from path and returns its process and
// a channel that gets its exit.
func startCopy(t *testing.T, path string) (*os.Process, chan error) {
	t.Helper()
	src, err := os.Open("/bin/sleep")
	require.NoError(t, err)
	defer src.Close()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	cmd := exec.Command(path, "300")
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd.Process, done
}

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, unix.Mount("tpctl-test", dir, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	return slices.Contains(mountPoints(b), dir)
}

// TestUninstallLeavesTheUsersProgramAndMountInTheDataDir runs uninstall with
// the real process table and mount calls: in a custom data dir, a program
// of the user's keeps running and a file system of the user's stays mounted
// with its files, while K3s's own process and mount go.
func TestUninstallLeavesTheUsersProgramAndMountInTheDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts processes and mounts tmpfs")
	}
	ti := newTestInstall(t, Config{DataDir: "/dd"})
	_, err := ti.run(t)
	require.NoError(t, err)
	dd := filepath.Join(ti.root, "dd")

	mine, mineDone := startCopy(t, filepath.Join(dd, "mytool", "sleep"))
	shim, shimDone := startCopy(t, filepath.Join(dd, "data", "abc", "bin", "containerd-shim-runc-v2"))
	backup := filepath.Join(dd, "backup")
	mountTmpfs(t, backup)
	require.NoError(t, os.WriteFile(filepath.Join(backup, "db.dump"), []byte("precious"), 0o600))
	snap := filepath.Join(dd, "agent", "containerd", "snapshots", "1")
	mountTmpfs(t, snap)

	ops := DefaultHostOps()
	ops.Links = func() ([]string, error) { return nil, nil }
	ops.LookPath = func(string) (string, error) { return "", errors.New("not here") }
	ops.Exec = func(context.Context, []byte, string, ...string) ([]byte, error) {
		return nil, errors.New("no programs here")
	}
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: ops})
	require.NoError(t, err)
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))

	select {
	case err := <-shimDone:
		assert.ErrorContains(t, err, "killed", "K3s's shim (run from <dataDir>/data/) is killed")
	case <-time.After(10 * time.Second):
		t.Fatal("the process run from <dataDir>/data/ is still running")
	}
	select {
	case err := <-mineDone:
		t.Fatalf("the user's program in the data dir was stopped: %v", err)
	default:
	}
	assert.NoError(t, mine.Signal(unix.Signal(0)), "the user's program still runs")
	assert.NotEqual(t, shim.Pid, mine.Pid)
	assert.True(t, mounted(t, backup), "the user's mount in the data dir stays mounted")
	b, err := os.ReadFile(filepath.Join(backup, "db.dump"))
	require.NoError(t, err)
	assert.Equal(t, "precious", string(b))
	assert.False(t, mounted(t, snap), "K3s's mount below <dataDir>/agent is detached")
	for _, gone := range []string{"agent", "data"} {
		assert.NoDirExists(t, filepath.Join(dd, gone))
	}
	assert.FileExists(t, filepath.Join(dd, "mytool", "sleep"))
	assert.Contains(t, warnings(rec), "kept /dd: created by the install, but it holds backup, mytool that uninstall does not remove")
}

func warnings(r *recorder) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		if e.Warning {
			b.WriteString(e.Message + "\n")
		}
	}
	return b.String()
}

func TestDataDirProblem(t *testing.T) {
	assert.Contains(t, DataDirProblem("/"), "other than /")
	for _, d := range []string{"/usr", "/var", "/opt", "/srv", "/home", "/etc", "/var/lib", "/usr/local", "/var/lib/rancher"} {
		assert.Contains(t, DataDirProblem(d), "system directory", d)
	}
	assert.Contains(t, DataDirProblem("/etc/systemd"), "holds /etc/systemd/system")
	assert.Contains(t, DataDirProblem("/var/lib/tpctl/k3s"), "lies inside /var/lib/tpctl")
	assert.Contains(t, DataDirProblem("/run/k3s/data"), "lies inside /run/k3s")
	assert.Contains(t, DataDirProblem("/proc/1"), "kernel")
	assert.Contains(t, DataDirProblem("/srv/../usr"), "clean absolute path")
	for _, d := range []string{DefaultDataDir, "/srv/k3s", "/data/k3s", "/home/k3s"} {
		assert.Empty(t, DataDirProblem(d), d)
	}
	err := completed(t, Config{DataDir: "/usr"}).Validate()
	assert.ErrorContains(t, err, `dataDir: "/usr" is a system directory`)
}

func TestInstallRefusesAForeignDataDir(t *testing.T) {
	ti := newTestInstall(t, Config{DataDir: "/srv/data"})
	dir := filepath.Join(ti.root, "srv", "data")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "customers.db"), []byte("x"), 0o600))
	before := tree(t, ti.root)
	_, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds 1 entries (customers.db) that tpctl did not create")
	assert.Contains(t, err.Error(), "--data-dir-force")
	assert.Equal(t, before, tree(t, ti.root), "nothing changed")

	// Run refuses too (the check repeats under the lock).
	plan := &Plan{Name: "install", Root: ti.root, State: NewStateStore(filepath.Join(ti.root, StatePath), time.Now), PID: 1, Now: time.Now}
	env := newEnv(ti.opts)
	plan.Begin = func(context.Context) error { return beginInstall(env) }
	plan.State = env.State
	assert.ErrorContains(t, Run(context.Background(), plan, &recorder{}), "--data-dir-force")
	_, err = os.Stat(filepath.Join(ti.root, StatePath))
	assert.ErrorIs(t, err, os.ErrNotExist, "no state saved for a refused data dir")

	ti.opts.DataDirForce = true
	_, err = ti.run(t)
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "customers.db"))
	// Once adopted, later runs need no force.
	ti.opts.DataDirForce = false
	_, err = ti.run(t)
	require.NoError(t, err)

	// The installed node does not move to another data dir or CNI.
	ti.opts.Config.CNI = CNICilium
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "tpctl does not move an installed node to another data dir or CNI")
	ti.opts.Config.CNI = CNIFlannel
	ti.opts.Config.DataDir = "/srv/other"
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "uses dataDir /srv/data and cni flannel")
}

func TestAnInstallStoppedInPreflightMayChangeItsDataDir(t *testing.T) {
	ti := newTestInstall(t, Config{DataDir: "/srv/a"})
	check := ti.opts.Preflight
	ti.opts.Preflight = func(context.Context, Config, ...string) (preflight.Report, error) {
		return preflight.Report{}, errors.New("the disk is too small")
	}
	_, err := ti.run(t)
	require.ErrorContains(t, err, "the disk is too small")
	assert.Equal(t, "/srv/a", mustState(t, ti.root).Config.DataDir, "saved before anything else")
	assert.Empty(t, mustState(t, ti.root).Created)

	ti.opts.Preflight = check
	ti.opts.Config.DataDir = "/srv/b"
	_, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, "/srv/b", mustState(t, ti.root).Config.DataDir)
}

func TestInstallRefusesADataDirLinkedToASystemDir(t *testing.T) {
	ti := newTestInstall(t, Config{DataDir: "/srv/k3s"})
	require.NoError(t, os.MkdirAll(filepath.Join(ti.root, "usr"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(ti.root, "srv"), 0o755))
	require.NoError(t, os.Symlink("../usr", filepath.Join(ti.root, "srv", "k3s")))
	_, _, err := NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "dataDir /srv/k3s leads to /usr, which is a system directory")
	ti.opts.DataDirForce = true
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "leads to /usr", "force does not make a system directory a data dir")
}

func writeState(t *testing.T, root string, s State) {
	t.Helper()
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, StateDir), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(root, StatePath), raw, 0o600))
}

func TestStateWithUntrustedPathsIsRefused(t *testing.T) {
	cfg := completed(t, Config{DataDir: "/srv/k3s"})
	for _, c := range []Created{
		{Path: "/etc/passwd", Kind: KindFile},
		{Path: "/home/user", Kind: KindDir},
		{Path: "/srv/k3s/../../home", Kind: KindDir},
		{Path: "srv/k3s/x", Kind: KindFile},
		{Path: "/", Kind: KindDir},
		{Path: "/etc", Kind: KindRuntime},
		{Path: "/usr/local/bin", Kind: KindFile},
		{Path: "/srv/k3s/x", Kind: "tree"},
		{Path: "/var/lib/rancher/k3s/agent", Kind: KindDir}, // another data dir
	} {
		root := t.TempDir()
		writeState(t, root, State{Version: StateVersion, Config: cfg, Created: []Created{{Path: "/srv/k3s", Kind: KindDir}, c}})
		before := tree(t, root)
		_, err := LoadState(filepath.Join(root, StatePath), time.Now)
		var se *StateError
		require.ErrorAs(t, err, &se, "%+v", c)
		_, _, err = NewUninstallPlan(UninstallOptions{Options: Options{Root: root}})
		require.ErrorAs(t, err, &se, "%+v", c)
		assert.Contains(t, err.Error(), "changed nothing")
		assert.Equal(t, before, tree(t, root))
	}
	// What install records is accepted, parents of its paths included.
	root := t.TempDir()
	ok := []Created{{Path: "/srv", Kind: KindDir}, {Path: "/srv/k3s", Kind: KindDir}, {Path: "/usr/local", Kind: KindDir},
		{Path: "/usr/local/bin/k3s", Kind: KindFile}, {Path: "/usr/local/bin/ctr", Kind: KindSymlink}, {Path: "/run/cilium", Kind: KindRuntime},
		{Path: "/etc/rancher/k3s/config.yaml", Kind: KindFile}, {Path: "/srv/k3s/agent/images/a.tar", Kind: KindFile, Data: true}}
	writeState(t, root, State{Version: StateVersion, Config: cfg, Created: ok})
	_, err := LoadState(filepath.Join(root, StatePath), time.Now)
	require.NoError(t, err)
}

func TestStoredConfigIsValidatedBeforeUninstall(t *testing.T) {
	root := t.TempDir()
	cfg := completed(t, Config{})
	cfg.ClusterCIDR = "10.42.0.1/16"
	writeState(t, root, State{Version: StateVersion, Config: cfg, Created: []Created{{Path: "/etc/rancher", Kind: KindDir}}})
	_, _, err := NewUninstallPlan(UninstallOptions{Options: Options{Root: root}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the configuration recorded in /var/lib/tpctl/state.json is not valid")
	assert.Contains(t, err.Error(), "clusterCIDR")

	cfg = completed(t, Config{})
	cfg.DataDir = "/usr"
	writeState(t, root, State{Version: StateVersion, Config: cfg})
	_, _, err = NewUninstallPlan(UninstallOptions{Options: Options{Root: root}})
	assert.ErrorContains(t, err, `recorded dataDir "/usr" is a system directory`)
}

func FuzzLoadState(f *testing.F) {
	good, err := json.Marshal(State{Version: StateVersion, Config: Config{DataDir: "/srv/k3s", CNI: CNICilium},
		Created: []Created{{Path: "/srv/k3s", Kind: KindDir, Data: true}, {Path: "/usr/local/bin/k3s", Kind: KindFile}, {Path: "/run/k3s", Kind: KindRuntime}}})
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"version":1,"created":[{"path":"/etc","kind":"runtime"}]}`))
	f.Add([]byte(`{"version":1,"config":{"dataDir":"/"},"created":[{"path":"/x/../etc","kind":"dir"}]}`))
	f.Add([]byte(`{"version":1,"created":[{"path":"/usr","kind":"dir"},{"path":"/usr/local/bin/kubectl","kind":"symlink","pending":true}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := filepath.Join(t.TempDir(), "state.json")
		require.NoError(t, os.WriteFile(p, raw, 0o600))
		st, err := LoadState(p, time.Now)
		if err != nil {
			var se *StateError
			require.ErrorAs(t, err, &se)
			assert.Empty(t, st.Get().Created, "a refused state is empty")
			return
		}
		s := st.Get()
		c := stateConfig(s)
		assert.Empty(t, DataDirProblem(c.DataDir))
		for _, e := range s.Created {
			assert.NoError(t, allowedRecord(e, c))
			assert.True(t, filepath.IsAbs(e.Path) && filepath.Clean(e.Path) == e.Path && e.Path != "/", e.Path)
		}
		checkRemovalPlan(t, s, c)
	})
}

// checkRemovalPlan: every removal target lies in the allow-list; trees
// only where K3s owns them.
func checkRemovalPlan(t *testing.T, s State, c Config) {
	for _, keep := range []bool{false, true} {
		plan, err := removalPlan(s, c, keep)
		require.NoError(t, err)
		for _, r := range plan {
			require.NotEqual(t, "/", r.Path)
			require.True(t, filepath.IsAbs(r.Path) && filepath.Clean(r.Path) == r.Path, r.Path)
			switch r.How {
			case removeTree:
				require.True(t, slices.Contains(k3sOwned(c), r.Path) || slices.Contains(runtimePaths(Config{CNI: CNICilium}), r.Path), "tree %s", r.Path)
			case removeFile:
				require.NoError(t, allowedRecord(Created{Path: r.Path, Kind: KindFile}, c))
			case removeEmpty:
				require.NoError(t, allowedRecord(Created{Path: r.Path, Kind: KindDir}, c))
			default:
				t.Fatalf("unknown removal %+v", r)
			}
			if keep {
				require.False(t, inside(r.Path, c.DataDir), "--keep-data keeps %s", r.Path)
			}
		}
	}
}

func FuzzRemovalPlan(f *testing.F) {
	f.Add("/srv/k3s", "/srv/k3s/agent", "dir", "/etc/rancher/k3s/config.yaml", "file", false)
	f.Add("/var/lib/rancher/k3s", "/var/lib/kubelet", "runtime", "/usr/local/bin", "dir", true)
	f.Add("/data", "/etc/passwd", "file", "/data/../etc", "tree", false)
	f.Fuzz(func(t *testing.T, dataDir, p1, k1, p2, k2 string, data bool) {
		s := State{Version: StateVersion, Config: Config{DataDir: dataDir},
			Created: []Created{{Path: p1, Kind: k1, Data: data}, {Path: p2, Kind: k2}}}
		if checkState(s) != nil {
			c := stateConfig(s)
			if DataDirProblem(c.DataDir) == "" {
				_, err := removalPlan(s, c, false)
				assert.Error(t, err, "a state refused on load yields no removal plan")
			}
			return
		}
		checkRemovalPlan(t, s, stateConfig(s))
	})
}

func TestInterruptedInstallIsUninstalledWithItsOwnDataDirAndCNI(t *testing.T) {
	ti := newTestInstall(t, Config{DataDir: "/srv/k3s", CNI: CNICilium})
	hostDirs(t, ti.root)
	host := newFakeHost(t, ti.root)
	before := tree(t, ti.root)
	fake := ti.opts.Systemd
	ti.opts.Systemd = func(context.Context) (systemd.Manager, error) { return nil, errors.New("no D-Bus") }
	_, err := ti.run(t)
	require.ErrorContains(t, err, "no D-Bus")

	st, err := LoadState(filepath.Join(ti.root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, "/srv/k3s", st.Get().Config.DataDir, "saved before the first host write")
	assert.Equal(t, CNICilium, st.Get().Config.CNI)
	assert.False(t, st.Get().Completed)

	// K3s had started once before the failure: its mounts are there.
	host.mounts = append(host.mounts, filepath.Join(ti.root, "/srv/k3s/agent/containerd/snap/1"), filepath.Join(ti.root, "/run/cilium/cgroupv2"))
	host.writeMountinfo(t)
	ti.opts.Systemd = fake
	plan, env, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	assert.Equal(t, "/srv/k3s", env.Config.DataDir)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	assert.NotContains(t, host.mounts, filepath.Join(ti.root, "/srv/k3s/agent/containerd/snap/1"))
	assert.NotContains(t, host.mounts, filepath.Join(ti.root, "/run/cilium/cgroupv2"))
	assert.Equal(t, before, tree(t, ti.root))
}

// hostDirs makes the directories every host has, which tpctl's own state
// and log go into.
func hostDirs(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"run", "var/lib", "var/log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
}

type crash struct{ path string }

// runUntilCrash runs an install that dies right after its n-th write, as a
// kill -9 there would leave it; it reports the path or "" when the run
// finished first.
func (ti *testInstall) runUntilCrash(t *testing.T, n int) (crashed string) {
	t.Helper()
	writes := 0
	ti.opts.afterWrite = func(p string) {
		if writes++; writes == n {
			panic(crash{p})
		}
	}
	defer func() {
		ti.opts.afterWrite = nil
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			crashed = c.path
		}
	}()
	_, err := ti.run(t)
	require.NoError(t, err)
	return ""
}

// TestKilledInstallIsCompletedAndUninstalled kills the install right after
// each of its writes in turn: the path is recorded already, the next run
// finishes, and uninstall leaves the host as it was.
func TestKilledInstallIsCompletedAndUninstalled(t *testing.T) {
	for n := 1; ; n++ {
		ti := newTestInstall(t, Config{DataDir: "/srv/k3s"})
		hostDirs(t, ti.root)
		host := newFakeHost(t, ti.root)
		before := tree(t, ti.root)
		p := ti.runUntilCrash(t, n)
		if p == "" {
			require.Greater(t, n, 10, "the install writes more than 10 paths")
			return
		}
		st, err := LoadState(filepath.Join(ti.root, StatePath), time.Now)
		require.NoError(t, err)
		recorded := slices.ContainsFunc(st.Get().Created, func(c Created) bool { return c.Path == p })
		assert.True(t, recorded, "killed after writing %s: it is recorded", p)

		_, err = ti.run(t)
		require.NoError(t, err, "the next run completes (killed after %s)", p)
		for _, c := range mustState(t, ti.root).Created {
			assert.False(t, c.Pending, "%s is settled", c.Path)
		}
		plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
		require.NoError(t, err)
		require.NoError(t, Run(context.Background(), plan, &recorder{}))
		require.Equal(t, before, tree(t, ti.root), "killed after writing %s", p)
	}
}

func mustState(t *testing.T, root string) State {
	t.Helper()
	st, err := LoadState(filepath.Join(root, StatePath), time.Now)
	require.NoError(t, err)
	return st.Get()
}

func TestKilledAfterAConfigWriteStillRestartsK3s(t *testing.T) {
	ti := newTestInstall(t, Config{})
	_, err := ti.run(t)
	require.NoError(t, err)
	ti.opts.Config.TLSSANs = []string{"edge.example.com"}
	// Killed right after the new K3s config is written.
	ti.opts.afterWrite = func(p string) {
		if p == K3sConfigPath {
			panic(crash{p})
		}
	}
	func() {
		defer func() { assert.Equal(t, crash{K3sConfigPath}, recover()) }()
		_, _ = ti.run(t)
	}()
	ti.opts.afterWrite = nil
	assert.True(t, mustState(t, ti.root).PendingRestart, "the restart was due before the write")
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "start K3s")
	assert.Equal(t, []string{"reload", "enable+start", "restart"}, ti.k3s.Calls(), "K3s restarts for the new config")
}

func TestCorruptStateIsKeptAndExplained(t *testing.T) {
	ti := newTestInstall(t, Config{})
	garbage := []byte(`{"version": 1, "created": [`)
	require.NoError(t, os.MkdirAll(filepath.Join(ti.root, StateDir), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(ti.root, StatePath), garbage, 0o600))

	_, err := ti.run(t)
	var se *StateError
	require.ErrorAs(t, err, &se)
	require.NotEmpty(t, se.Backup)
	assert.Contains(t, err.Error(), "a copy is kept at "+se.Backup)
	assert.Contains(t, err.Error(), "tpctl changed nothing")
	b, err := os.ReadFile(se.Backup)
	require.NoError(t, err)
	assert.Equal(t, garbage, b)
	b, err = os.ReadFile(filepath.Join(ti.root, StatePath))
	require.NoError(t, err)
	assert.Equal(t, garbage, b, "the state itself is left as it was")
	assert.NoFileExists(t, filepath.Join(ti.root, K3sBinaryPath), "nothing was installed")

	// Once per content: a second run keeps the same copy.
	_, err = ti.run(t)
	require.ErrorAs(t, err, &se)
	copies, _ := filepath.Glob(filepath.Join(ti.root, StatePath+".corrupt-*"))
	assert.Len(t, copies, 1)

	_, _, err = NewUninstallPlan(UninstallOptions{Options: ti.opts})
	require.ErrorAs(t, err, &se)
	assert.False(t, NotInstalled(err))
}

func TestMissingStateBesideATpctlUnitIsNotNothingToUninstall(t *testing.T) {
	root := t.TempDir()
	_, _, err := NewUninstallPlan(UninstallOptions{Options: Options{Root: root}})
	assert.True(t, NotInstalled(err), "no state and no unit: nothing to uninstall")

	unit, err := RenderUnit()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(UnitPath)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, UnitPath), unit, 0o644))
	_, _, err = NewUninstallPlan(UninstallOptions{Options: Options{Root: root}})
	var me *MissingStateError
	require.ErrorAs(t, err, &me)
	assert.False(t, NotInstalled(err))
	assert.Contains(t, err.Error(), "removes nothing")
	assert.Contains(t, err.Error(), "systemctl disable --now k3s.service")

	// A unit that is not tpctl's: nothing of tpctl's to uninstall.
	require.NoError(t, os.WriteFile(filepath.Join(root, UnitPath), []byte("[Unit]\nDescription=k3s by hand\n"), 0o644))
	_, _, err = NewUninstallPlan(UninstallOptions{Options: Options{Root: root}})
	assert.True(t, NotInstalled(err))
}

func TestUninstallKeepsWhatItDidNotCreate(t *testing.T) {
	ti := newTestInstall(t, Config{})
	host := newFakeHost(t, ti.root)
	_, err := ti.run(t)
	require.NoError(t, err)
	put := func(p, content string) {
		require.NoError(t, os.MkdirAll(filepath.Join(ti.root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ti.root, p), []byte(content), 0o600))
	}
	// The user's files in directories the install created, and K3s's own.
	put("/etc/rancher/k3s/registries.yaml", "mirrors: {}")
	put("/var/lib/rancher/k3s/notes.txt", "mine")
	put("/var/lib/rancher/k3s/server/db/state.db", "k3s")
	put("/var/lib/rancher/k3s/storage/pvc-1/data", "k3s")
	put("/etc/rancher/node/password", "k3s")

	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	var out strings.Builder
	require.NoError(t, WriteDryRun(&out, DryRun(context.Background(), plan)))
	dry := out.String()
	assert.Contains(t, dry, "/etc/rancher/k3s\n     keep: created by the install, but it holds registries.yaml that uninstall does not remove")
	assert.Contains(t, dry, "/var/lib/rancher/k3s\n     keep: created by the install, but it holds notes.txt that uninstall does not remove")
	assert.Contains(t, dry, "/var/lib/rancher/k3s/server\n     remove with everything below it (K3s's)")
	assert.Contains(t, dry, "/etc/rancher/k3s/config.yaml\n     remove (file)")
	assert.FileExists(t, filepath.Join(ti.root, "/var/lib/rancher/k3s/server/db/state.db"), "the dry run changes nothing")

	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))
	assert.FileExists(t, filepath.Join(ti.root, "/etc/rancher/k3s/registries.yaml"))
	assert.FileExists(t, filepath.Join(ti.root, "/var/lib/rancher/k3s/notes.txt"))
	for _, gone := range []string{"/etc/rancher/k3s/config.yaml", KubeconfigPath, "/etc/rancher/node", "/var/lib/rancher/k3s/server",
		"/var/lib/rancher/k3s/storage", "/var/lib/rancher/k3s/agent", K3sBinaryPath} {
		assert.NoFileExists(t, filepath.Join(ti.root, gone))
		assert.NoDirExists(t, filepath.Join(ti.root, gone))
	}
	assert.Contains(t, warnings(rec), "kept /etc/rancher: created by the install, but it holds k3s that uninstall does not remove")
}

func TestUninstallRemovesK3sPathsInAPreexistingDataDir(t *testing.T) {
	ti := newTestInstall(t, Config{DataDir: "/srv/k3s"})
	hostDirs(t, ti.root)
	host := newFakeHost(t, ti.root)
	require.NoError(t, os.MkdirAll(filepath.Join(ti.root, "srv", "k3s"), 0o750))
	before := tree(t, ti.root)
	_, err := ti.run(t)
	require.NoError(t, err)
	for _, p := range []string{"server/db/state.db", "storage/pvc-1/data", "data/abc/bin/containerd"} {
		require.NoError(t, os.MkdirAll(filepath.Join(ti.root, "srv/k3s", filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ti.root, "srv/k3s", p), []byte("k3s"), 0o600))
	}
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	assert.Equal(t, before, tree(t, ti.root), "K3s's server/, storage/ and data/ go; the directory itself stays")
}

func TestRemoverNeverCrossesAFileSystem(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"/run/k3s/a/file", "/run/k3s/mnt/inside", "/run/k3s/b/c/d"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), nil, 0o600))
	}
	rm := newRemover(root, []string{filepath.Join(root, "/run/k3s/mnt"), "/proc"}, false)
	existed, err := rm.do(removal{Path: "/run/k3s", How: removeTree})
	require.NoError(t, err)
	assert.True(t, existed)
	assert.FileExists(t, filepath.Join(root, "/run/k3s/mnt/inside"), "a mount point is left with what it holds")
	assert.NoDirExists(t, filepath.Join(root, "/run/k3s/a"))
	assert.NoDirExists(t, filepath.Join(root, "/run/k3s/b"))
	assert.Equal(t, []keptPath{{"/run/k3s/mnt", "is a mount point: left mounted, with what it holds"},
		{"/run/k3s", "not removed whole: it holds what is kept below"}}, rm.kept)
}

func TestFirewallDeletesChainsOneByOne(t *testing.T) {
	ti := newTestInstall(t, Config{})
	host := newFakeHost(t, ti.root)
	_, err := ti.run(t)
	require.NoError(t, err)
	// Another program adds a rule while uninstall works.
	added := "-A INPUT -s 203.0.113.7/32 -m comment --comment \"added meanwhile\" -j DROP\n"
	host.onChange = func() {
		s := host.saves["iptables-save"]
		i := strings.Index(s, "-A INPUT ")
		host.saves["iptables-save"] = s[:i] + added + s[i:]
	}
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	after := host.saves["iptables-save"]
	assert.Contains(t, after, added, "a rule added meanwhile by another program stays")
	for _, gone := range []string{"KUBE-", "CNI-", "FLANNEL-"} {
		assert.NotContains(t, after, gone)
	}
	assert.Contains(t, after, "ssh from the office, keep")
	assert.Contains(t, host.execLog, "iptables -w -t filter -X KUBE-FORWARD")
	assert.Contains(t, host.execLog, `iptables -w -t filter -D INPUT -j KUBE-FIREWALL`)
	// What is left is exactly the original without the managed chains.
	orig, err := os.ReadFile(filepath.Join("testdata", "iptables-save.txt"))
	require.NoError(t, err)
	want, _ := FilterRuleset(string(orig))
	assert.Equal(t, want, strings.Replace(after, added, "", 1))
}

func TestPendingRecordsAreSettled(t *testing.T) {
	root := t.TempDir()
	st := NewStateStore(filepath.Join(root, "state.json"), time.Now)
	require.NoError(t, st.Record(Created{Path: "/etc/rancher", Kind: KindDir, Pending: true}))
	require.NoError(t, st.Record(Created{Path: "/etc/rancher/k3s", Kind: KindDir, Pending: true}))
	require.NoError(t, st.Record(Created{Path: "/usr/local/bin/k3s", Kind: KindFile}))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/rancher"), 0o755))
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(root, p)); return err == nil }
	require.NoError(t, st.ResolvePending(exists))
	assert.Equal(t, []Created{{Path: "/etc/rancher", Kind: KindDir}, {Path: "/usr/local/bin/k3s", Kind: KindFile}}, st.Get().Created,
		"made before the kill: recorded; never made: dropped")
}

// The node password in /etc/rancher/node pairs with the node-password
// Secret in the datastore: --keep-data keeps both, or K3s refuses the node
// on the next install over the kept data.
func TestKeepDataKeepsTheNodePassword(t *testing.T) {
	c := Config{DataDir: DefaultDataDir}
	s := State{Version: StateVersion, Config: c, Created: []Created{
		{Path: "/etc/rancher/node", Kind: KindDir},
		{Path: "/etc/rancher/node/password", Kind: KindFile},
	}}
	kept, err := removalPlan(s, c, true)
	require.NoError(t, err)
	for _, r := range kept {
		assert.False(t, inside(r.Path, "/etc/rancher/node"), "--keep-data removes %s", r.Path)
	}
	all, err := removalPlan(s, c, false)
	require.NoError(t, err)
	assert.Contains(t, all, removal{Path: "/etc/rancher/node", How: removeTree})
}
