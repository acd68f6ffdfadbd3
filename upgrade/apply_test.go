package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/systemd"
)

// fakeHost is a node below a temporary root: K3s's files, the install
// state, a service manager and an API server that report what the
// "running" K3s binary is.
type fakeHost struct {
	t    *testing.T
	root string
	mu   sync.Mutex
	// running is the content of the K3s binary the service last started.
	running   string
	restarts  int
	releases  map[string]*Release
	rollbacks []string
	notReady  bool // the node never becomes Ready
	// kubeletNoRelease: the kubelet reports v1.35.2, not v1.35.2+k3s1.
	kubeletNoRelease bool
	// heartbeat is when the kubelet last reported; a restart renews it
	// unless frozen (a kubelet that does not report again).
	heartbeat time.Time
	frozen    bool
	// silent is a K3s binary whose kubelet never reports: restarting it
	// leaves the heartbeat as it was.
	silent string
}

const (
	oldK3s = "v1.35.2+k3s1"
	newK3s = "v1.36.3+k3s1"
)

// The containerd templates derived for the old K3s (version 2 layout) and
// the new one (version 3 layout).
var (
	containerdDir = installer.ContainerdDir(installer.Config{DataDir: installer.DefaultDataDir})
	oldTemplate   = filepath.Join(containerdDir, installer.ContainerdTemplateName("2"))
	newTemplate   = filepath.Join(containerdDir, installer.ContainerdTemplateName("3"))
	dropIn        = installer.ContainerdDropInPath(installer.Config{DataDir: installer.DefaultDataDir})
)

func newFakeHost(t *testing.T) *fakeHost {
	h := &fakeHost{t: t, root: t.TempDir(), running: "k3s " + oldK3s, heartbeat: time.Now().Add(-time.Hour)}
	h.write(installer.K3sBinaryPath, "k3s "+oldK3s, 0o755)
	h.write(installer.K3sConfigPath, "node-name: edge1\n", 0o600)
	h.write(installer.UnitPath, "[Service]\nKillMode=process\n", 0o644)
	h.write(oldTemplate, "# tpctl: restrict_oom_score_adj\n# for "+oldK3s+"\n", 0o600)
	st := installer.NewStateStore(filepath.Join(h.root, installer.StatePath), time.Now)
	if err := st.Update(func(s *installer.State) {
		s.Completed = true
		s.Config = installer.Config{NodeName: "edge1", DataDir: installer.DefaultDataDir, CNI: installer.CNIFlannel}
		s.K3s = installer.K3sRecord{Version: oldK3s, Source: "payload"}
	}); err != nil {
		t.Fatal(err)
	}
	h.releases = map[string]*Release{
		installer.OperatorRelease: {Namespace: installer.OperatorNamespace, Name: installer.OperatorRelease, Revision: 1, Status: "deployed", Chart: "0.1.0"},
		installer.InstanceRelease: {Namespace: installer.InstanceNamespace, Name: installer.InstanceRelease, Revision: 2, Status: "deployed", Chart: "0.1.0"},
	}
	return h
}

func (h *fakeHost) write(p, content string, mode os.FileMode) {
	h.t.Helper()
	full := filepath.Join(h.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeHost) read(p string) string {
	b, err := os.ReadFile(filepath.Join(h.root, p))
	if err != nil {
		return ""
	}
	return string(b)
}

func (h *fakeHost) state() installer.State {
	h.t.Helper()
	st, err := installer.LoadState(filepath.Join(h.root, installer.StatePath), time.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Get()
}

// Manager.
func (h *fakeHost) Reload(context.Context) error                 { return nil }
func (h *fakeHost) EnableAndStart(context.Context, string) error { return nil }
func (h *fakeHost) StopAndDisable(context.Context, string) error { return nil }
func (h *fakeHost) ResetFailed(context.Context, string) error    { return nil }
func (h *fakeHost) State(context.Context, string) (systemd.UnitState, error) {
	return systemd.UnitState{LoadState: "loaded", ActiveState: "active", UnitFileState: "enabled"}, nil
}
func (h *fakeHost) Restart(_ context.Context, unit string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.restarts++
	h.running = h.read(installer.K3sBinaryPath)
	if !h.frozen && h.running != h.silent {
		h.heartbeat = time.Now()
	}
	return nil
}

// Cluster.
func (h *fakeHost) Node(context.Context, string) (*corev1.Node, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ver := strings.TrimPrefix(h.running, "k3s ")
	if h.kubeletNoRelease {
		ver, _, _ = strings.Cut(ver, "+")
	}
	status := corev1.ConditionTrue
	if h.notReady || !strings.HasPrefix(h.running, "k3s v") {
		status = corev1.ConditionFalse
	}
	return &corev1.Node{Status: corev1.NodeStatus{
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: ver},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: "KubeletNotReady",
			// The API keeps it to the second.
			LastHeartbeatTime: metav1.NewTime(h.heartbeat.Truncate(time.Second))}},
	}}, nil
}
func (h *fakeHost) Release(_ context.Context, ns, name string) (*Release, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.releases[name]
	if r == nil {
		return nil, nil
	}
	c := *r
	return &c, nil
}
func (h *fakeHost) Image(context.Context, string, string) (string, error) { return "", nil }

// Releaser: a rollback is a new revision with the old chart.
func (h *fakeHost) Rollback(_ context.Context, ns, name string, rev int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rollbacks = append(h.rollbacks, name)
	r := h.releases[name]
	r.Revision++
	r.Chart = "0.1.0"
	return nil
}

// install stands for the install plan of the new tpctl: new binary and
// config, one restart, the releases upgraded.
func (h *fakeHost) install(binary string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		h.write(installer.K3sBinaryPath, binary, 0o755)
		h.write(installer.K3sConfigPath, "node-name: edge1\nnew-key: 1\n", 0o600)
		h.write(installer.RegistriesPath, "mirrors: {}\n", 0o600)
		// The template derived for the old K3s goes as the new binary is
		// staged; the new K3s's config imports the containerd drop-in.
		if err := os.Remove(filepath.Join(h.root, oldTemplate)); err != nil {
			return err
		}
		h.write(dropIn, "version = 3\n", 0o600)
		st, err := installer.LoadState(filepath.Join(h.root, installer.StatePath), time.Now)
		if err != nil {
			return err
		}
		if err := st.Update(func(s *installer.State) { s.K3s = installer.K3sRecord{Version: newK3s, Source: "payload"} }); err != nil {
			return err
		}
		if err := h.Restart(ctx, installer.UnitName); err != nil {
			return err
		}
		n, _ := h.Node(ctx, "edge1")
		if ok, _ := installer.NodeReady(n); !ok {
			return errors.New("node did not become Ready")
		}
		h.mu.Lock()
		for _, r := range h.releases {
			r.Revision++
			r.Chart = "0.2.0"
		}
		h.mu.Unlock()
		return nil
	}
}

type fakeSnap struct{ n int }

func (s *fakeSnap) Snapshot(context.Context) (string, error) {
	s.n++
	return "/var/lib/tpctl/backups/pre-upgrade.tar.gz", nil
}

func (h *fakeHost) options(install func(context.Context) error, snap Snapshotter) Options {
	in := Inspect(context.Background(), h.root, func(string) (Cluster, error) { return h, nil }, time.Now)
	to := Target{Tpctl: "v0.2.0", K3s: newK3s, Chart: "0.2.0", OperatorImage: "op:0.2.0"}
	return Options{
		Root: h.root, Installed: in, Target: to, Plan: Compute(in, to),
		Install:   install,
		Instances: func(context.Context) ([]string, error) { return nil, nil },
		Systemd:   func(context.Context) (systemd.Manager, error) { return h, nil },
		Cluster:   func(string) (Cluster, error) { return h, nil },
		Releases:  h, Snapshot: snap,
		Timeout: 2 * time.Second, Poll: 10 * time.Millisecond,
		Log: h.t.Logf,
	}
}

func TestApplyUpgrades(t *testing.T) {
	h := newFakeHost(t)
	snap := &fakeSnap{}
	o := h.options(h.install("k3s "+newK3s), snap)
	if o.Plan.Refused() {
		t.Fatalf("plan refused: %+v", o.Plan.Refusals)
	}
	if err := Apply(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	st := h.state()
	if st.Upgrade == nil || st.Upgrade.Phase != installer.UpgradeDone || st.TpctlVersion != "v0.2.0" || st.K3s.Version != newK3s {
		t.Fatalf("state after upgrade: upgrade %+v, tpctl %q, k3s %+v", st.Upgrade, st.TpctlVersion, st.K3s)
	}
	if snap.n != 1 || st.Upgrade.Snapshot == "" {
		t.Fatalf("snapshots taken: %d, recorded %q", snap.n, st.Upgrade.Snapshot)
	}
	if h.restarts != 1 {
		t.Fatalf("K3s restarted %d times, want once", h.restarts)
	}
	if got := h.read(filepath.Join(KeptDir, "k3s")); got != "k3s "+oldK3s {
		t.Fatalf("kept K3s binary = %q", got)
	}
	kept := map[string]installer.KeptFile{}
	for _, k := range st.Upgrade.Kept {
		kept[k.Path] = k
	}
	if k := kept[oldTemplate]; k.Absent || len(k.SHA256) != 64 || h.read(k.Saved) != "# tpctl: restrict_oom_score_adj\n# for "+oldK3s+"\n" {
		t.Fatalf("old containerd template kept as %+v", k)
	}
	if k, ok := kept[newTemplate]; !ok || !k.Absent {
		t.Fatalf("new containerd template recorded as %+v (%v), want absent", k, ok)
	}
	if k, ok := kept[dropIn]; !ok || !k.Absent {
		t.Fatalf("containerd drop-in recorded as %+v (%v), want absent", k, ok)
	}
	if fi, err := os.Stat(filepath.Join(h.root, KeptDir, "config.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept config: %v %v", fi, err)
	}
	for _, rr := range st.Upgrade.Releases {
		if (rr.Name == installer.OperatorRelease && rr.Revision != 1) || (rr.Name == installer.InstanceRelease && rr.Revision != 2) {
			t.Fatalf("recorded release revisions %+v", st.Upgrade.Releases)
		}
	}

	// On demand: back to the previous version.
	o = h.options(nil, snap)
	if err := Rollback(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkRolledBack(t, h, 2)
	// Again: nothing to roll back.
	if err := Rollback(context.Background(), h.options(nil, snap)); err == nil || !strings.Contains(err.Error(), "nothing to roll back") {
		t.Fatalf("second rollback: %v", err)
	}
}

func checkRolledBack(t *testing.T, h *fakeHost, restarts int) {
	t.Helper()
	st := h.state()
	if st.Upgrade == nil || st.Upgrade.Phase != installer.UpgradeRolledBack || st.K3s.Version != oldK3s || st.TpctlVersion != "" {
		t.Fatalf("state after rollback: upgrade %+v, k3s %+v, tpctl %q", st.Upgrade, st.K3s, st.TpctlVersion)
	}
	if got := h.read(installer.K3sBinaryPath); got != "k3s "+oldK3s {
		t.Fatalf("K3s binary after rollback = %q", got)
	}
	if got := h.read(installer.K3sConfigPath); got != "node-name: edge1\n" {
		t.Fatalf("config after rollback = %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.root, installer.RegistriesPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("registries.yaml the upgrade added is still there: %v", err)
	}
	// The old K3s gets the template derived for it back, not the new one's.
	if got := h.read(oldTemplate); got != "# tpctl: restrict_oom_score_adj\n# for "+oldK3s+"\n" {
		t.Fatalf("old containerd template after rollback = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(h.root, oldTemplate)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("old containerd template mode: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(h.root, newTemplate)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the containerd template the upgrade derived is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.root, dropIn)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the containerd drop-in the upgrade added is still there: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(h.root, installer.K3sBinaryPath)); fi.Mode().Perm() != 0o755 {
		t.Fatalf("K3s binary mode %v", fi.Mode())
	}
	if h.running != "k3s "+oldK3s || h.restarts != restarts {
		t.Fatalf("running %q after %d restarts, want the old K3s after %d", h.running, h.restarts, restarts)
	}
	for _, r := range h.releases {
		if r.Chart != "0.1.0" {
			t.Fatalf("release %s runs chart %s after rollback", r.Name, r.Chart)
		}
	}
}

func TestApplyRollsBackABrokenK3s(t *testing.T) {
	h := newFakeHost(t)
	o := h.options(h.install("#!/bin/sh\nexit 1\n"), &fakeSnap{})
	err := Apply(context.Background(), o)
	var rb *RolledBackError
	if !errors.As(err, &rb) {
		t.Fatalf("Apply = %v, want a rollback", err)
	}
	checkRolledBack(t, h, 2)
	// The releases were not upgraded by the failed install: no Helm
	// rollback was needed.
	if len(h.rollbacks) != 0 {
		t.Fatalf("Helm rollbacks %v, want none", h.rollbacks)
	}
	if st := h.state(); !strings.Contains(st.Upgrade.Error, "node did not become Ready") {
		t.Fatalf("recorded error %q", st.Upgrade.Error)
	}
}

func TestApplyRollsBackOnTimeout(t *testing.T) {
	h := newFakeHost(t)
	o := h.options(h.install("k3s "+newK3s), &fakeSnap{})
	o.Instances = func(context.Context) ([]string, error) {
		if h.read(installer.K3sBinaryPath) == "k3s "+newK3s {
			return []string{"core: Degraded"}, nil
		}
		return nil, nil
	}
	o.Timeout = 200 * time.Millisecond
	err := Apply(context.Background(), o)
	var rb *RolledBackError
	if !errors.As(err, &rb) || !strings.Contains(err.Error(), "core: Degraded") {
		t.Fatalf("Apply = %v, want a rollback naming the instance", err)
	}
	checkRolledBack(t, h, 2)
	if len(h.rollbacks) != 2 {
		t.Fatalf("Helm rollbacks %v, want both releases", h.rollbacks)
	}
}

// A new K3s that starts but whose kubelet never reports again: the node's
// Ready condition from before the restart is still in the API (the install
// plan's wait accepts it), but no report comes from the new K3s within the
// timeout, and the upgrade rolls back.
func TestApplyRollsBackWhenTheNewKubeletNeverReports(t *testing.T) {
	h := newFakeHost(t)
	h.heartbeat = time.Now().Add(-2 * time.Second) // Ready, reported before the upgrade
	h.silent = "k3s " + newK3s
	o := h.options(h.install("k3s "+newK3s), &fakeSnap{})
	o.Timeout = time.Second
	err := Apply(context.Background(), o)
	var rb *RolledBackError
	if !errors.As(err, &rb) || !strings.Contains(err.Error(), "has not reported since") {
		t.Fatalf("Apply = %v, want a rollback naming the missing report", err)
	}
	checkRolledBack(t, h, 2)
}

// A run killed after the new binary was staged (phase applying) is
// completed by the next run: Apply resumes, Rollback undoes it.
func TestResumeAfterKill(t *testing.T) {
	for _, tc := range []string{"apply", "rollback"} {
		t.Run(tc, func(t *testing.T) {
			h := newFakeHost(t)
			killed := errors.New("killed")
			o := h.options(nil, &fakeSnap{})
			// A kill: the run stops without its rollback. Interrupting the
			// parent context stands for it.
			ctx, cancel := context.WithCancel(context.Background())
			o.Install = func(context.Context) error {
				h.write(installer.K3sBinaryPath, "k3s "+newK3s, 0o755)
				cancel()
				return killed
			}
			if err := Apply(ctx, o); err == nil || !strings.Contains(err.Error(), "interrupted") {
				t.Fatalf("Apply = %v", err)
			}
			if st := h.state(); st.Upgrade.Phase != installer.UpgradeApplying {
				t.Fatalf("phase %q after the kill", st.Upgrade.Phase)
			}
			o = h.options(h.install("k3s "+newK3s), &fakeSnap{})
			if o.Plan.Resume != installer.UpgradeApplying {
				t.Fatalf("plan resume = %q", o.Plan.Resume)
			}
			if tc == "apply" {
				if err := Apply(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				if st := h.state(); st.Upgrade.Phase != installer.UpgradeDone || st.K3s.Version != newK3s {
					t.Fatalf("after resume: %+v", st.Upgrade)
				}
				// The kept binary is still the old one, not the staged new one.
				if got := h.read(filepath.Join(KeptDir, "k3s")); got != "k3s "+oldK3s {
					t.Fatalf("kept = %q", got)
				}
				return
			}
			if err := Rollback(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			checkRolledBack(t, h, 1)
		})
	}
}

// A rollback killed after restoring the files finishes without
// restarting again when the old K3s already runs.
func TestRollbackResumesWithoutSecondRestart(t *testing.T) {
	h := newFakeHost(t)
	if err := Apply(context.Background(), h.options(h.install("k3s "+newK3s), &fakeSnap{})); err != nil {
		t.Fatal(err)
	}
	st := installer.NewStateStore(filepath.Join(h.root, installer.StatePath), time.Now)
	if err := st.Load(); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(s *installer.State) { s.Upgrade.Phase = installer.UpgradeRollingBack; s.Upgrade.Error = "killed" }); err != nil {
		t.Fatal(err)
	}
	h.write(installer.K3sBinaryPath, "k3s "+oldK3s, 0o755)
	h.write(installer.K3sConfigPath, "node-name: edge1\n", 0o600)
	os.Remove(filepath.Join(h.root, installer.RegistriesPath))
	os.Remove(filepath.Join(h.root, dropIn))
	h.write(oldTemplate, "# tpctl: restrict_oom_score_adj\n# for "+oldK3s+"\n", 0o600)
	h.running = "k3s " + oldK3s
	o := h.options(nil, &fakeSnap{})
	if err := Apply(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkRolledBack(t, h, 1)
}

// A kubelet that reports its Kubernetes version without K3s's release
// (v1.35.2, not v1.35.2+k3s1) does not make the rollback wait for a
// version it never reports.
func TestRollbackOnKubeletWithoutK3sRelease(t *testing.T) {
	h := newFakeHost(t)
	h.kubeletNoRelease = true
	if err := Apply(context.Background(), h.options(h.install("k3s "+newK3s), &fakeSnap{})); err != nil {
		t.Fatal(err)
	}
	if err := Rollback(context.Background(), h.options(nil, &fakeSnap{})); err != nil {
		t.Fatal(err)
	}
	checkRolledBack(t, h, 2)
}

// After restarting K3s, the rollback does not take the Ready condition the
// node had before the restart for the old K3s being up: it waits for the
// kubelet to report again.
func TestRollbackWaitsForAHeartbeatAfterTheRestart(t *testing.T) {
	h := newFakeHost(t)
	if err := Apply(context.Background(), h.options(h.install("k3s "+newK3s), &fakeSnap{})); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.heartbeat, h.frozen = time.Now().Add(-time.Minute), true
	h.mu.Unlock()
	o := h.options(nil, &fakeSnap{})
	o.Timeout = 300 * time.Millisecond
	err := Rollback(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "has not reported since K3s was restarted") {
		t.Fatalf("Rollback with a stale Ready = %v, want it to wait for a heartbeat after the restart", err)
	}
	if st := h.state(); st.Upgrade.Phase != installer.UpgradeRollingBack {
		t.Fatalf("phase %q, want the rollback left to finish", st.Upgrade.Phase)
	}
}

func TestNodeRuns(t *testing.T) {
	for _, c := range []struct {
		kubelet, want string
		runs          bool
	}{
		{"v1.35.2+k3s1", "v1.35.2+k3s1", true},
		{"v1.35.2+k3s2", "v1.35.2+k3s1", false},
		{"v1.35.2", "v1.35.2+k3s1", true},
		{"v1.36.3", "v1.35.2+k3s1", false},
		{"", "v1.35.2+k3s1", true},
	} {
		if got := nodeRuns(c.kubelet, c.want); got != c.runs {
			t.Errorf("nodeRuns(%q, %q) = %v", c.kubelet, c.want, got)
		}
	}
}

func TestRefusals(t *testing.T) {
	h := newFakeHost(t)
	o := h.options(h.install("k3s "+newK3s), nil)
	if err := Apply(context.Background(), o); err == nil || !strings.Contains(err.Error(), "no snapshot") {
		t.Fatalf("Apply without a snapshot = %v", err)
	}
	if st := h.state(); st.Upgrade != nil {
		t.Fatalf("refused upgrade recorded %+v", st.Upgrade)
	}
	o.Plan.Refusals = []Refusal{{Code: RefuseSkipMinor, Reason: "skips a minor"}}
	if err := Apply(context.Background(), o); err == nil || !strings.Contains(err.Error(), "skips a minor") {
		t.Fatalf("Apply of a refused plan = %v", err)
	}
	// A tampered record does not make the rollback write elsewhere.
	rec := &installer.UpgradeRecord{Kept: []installer.KeptFile{{Path: "/etc/shadow", Saved: KeptDir + "/shadow"}}}
	cfg := h.state().Config
	if err := checkRecord(rec, cfg); err == nil {
		t.Fatal("record naming /etc/shadow accepted")
	}
	rec.Kept[0] = installer.KeptFile{Path: installer.K3sBinaryPath, Saved: "/tmp/k3s"}
	if err := checkRecord(rec, cfg); err == nil {
		t.Fatal("record keeping a copy outside the state dir accepted")
	}
}

func TestSameK3s(t *testing.T) {
	for _, c := range []struct {
		kubelet, want string
		same          bool
	}{
		{"v1.35.2+k3s1", "v1.35.2+k3s1", true},
		{"v1.36.3+k3s1", "v1.35.2+k3s1", false},
		{"v1.35.2+k3s1", "k3s version v1.35.2+k3s1 (abc)", true},
		{"", "v1.35.2+k3s1", true},
	} {
		if got := sameK3s(c.kubelet, c.want); got != c.same {
			t.Errorf("sameK3s(%q, %q) = %v", c.kubelet, c.want, got)
		}
	}
}

// Inspect says which of the files the recorded upgrade kept are on the
// host now (the rollback plan lists a removal only for those).
func TestInspectSaysWhichKeptFilesArePresent(t *testing.T) {
	h := newFakeHost(t)
	if err := Apply(context.Background(), h.options(h.install("k3s "+newK3s), &fakeSnap{})); err != nil {
		t.Fatal(err)
	}
	in := Inspect(context.Background(), h.root, func(string) (Cluster, error) { return h, nil }, time.Now)
	for p, want := range map[string]bool{installer.K3sBinaryPath: true, dropIn: true, oldTemplate: false, newTemplate: false} {
		if got, ok := in.Present[p]; !ok || got != want {
			t.Errorf("Present[%s] = %v (known %v), want %v", p, got, ok, want)
		}
	}
}
