package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
)

// fakeK3s stands in for systemd running K3s: starting the unit makes K3s
// "generate" its containerd config (through tpctl's template when there is
// one, as K3s does) and write its kubeconfig.
type fakeK3s struct {
	mu      sync.Mutex
	root    string
	dataDir string
	calls   []string
	active  bool
	enabled bool
	loaded  bool
	// generated is the containerd config K3s renders without a template.
	generated []byte
}

func (f *fakeK3s) call(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeK3s) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.calls...)
}

func (f *fakeK3s) Reload(context.Context) error {
	f.call("reload")
	_, err := os.Stat(filepath.Join(f.root, UnitPath))
	f.loaded = err == nil
	return nil
}

func (f *fakeK3s) start() error {
	dir := filepath.Join(f.root, f.dataDir, containerdDirIn)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := f.generated
	for _, name := range []string{templateV3, templateV2} {
		if tmpl, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			// As K3s does: the user's template, with K3s's own as "base".
			tp, err := template.New("c").Parse(string(tmpl))
			if err != nil {
				return err
			}
			base := strings.ReplaceAll(string(f.generated), "{{", `{{"{{"}}`)
			if _, err := tp.New("base").Parse(base); err != nil {
				return err
			}
			var b bytes.Buffer
			if err := tp.Execute(&b, nil); err != nil {
				return err
			}
			out = b.Bytes()
			break
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ContainerdConfigFile), out, 0o600); err != nil {
		return err
	}
	kc := filepath.Join(f.root, KubeconfigPath)
	if err := os.MkdirAll(filepath.Dir(kc), 0o755); err != nil {
		return err
	}
	f.active = true
	return os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
}

func (f *fakeK3s) EnableAndStart(context.Context, string) error {
	f.call("enable+start")
	f.enabled = true
	if f.active {
		return nil
	}
	return f.start()
}

func (f *fakeK3s) Restart(context.Context, string) error {
	f.call("restart")
	return f.start()
}

func (f *fakeK3s) StopAndDisable(context.Context, string) error {
	f.call("stop+disable")
	f.active, f.enabled = false, false
	return nil
}

func (f *fakeK3s) ResetFailed(context.Context, string) error {
	f.call("reset-failed")
	return nil
}

func (f *fakeK3s) State(_ context.Context, unit string) (systemd.UnitState, error) {
	st := systemd.UnitState{Name: unit, LoadState: "not-found", ActiveState: "inactive", UnitFileState: "disabled"}
	if f.loaded {
		st.LoadState = "loaded"
	}
	if f.active {
		st.ActiveState, st.SubState = "active", "running"
	}
	if f.enabled {
		st.UnitFileState = "enabled"
	}
	return st, nil
}

// readyCluster is an API that says everything is ready.
type readyCluster struct{ nodeName string }

func (c readyCluster) Readyz(context.Context) error { return nil }

func (c readyCluster) Node(_ context.Context, name string) (*corev1.Node, error) {
	if name != c.nodeName {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
	}
	n := &corev1.Node{}
	n.Name = name
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	return n, nil
}

func (c readyCluster) Deployment(_ context.Context, _, name string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	d.Name = name
	d.Status.AvailableReplicas, d.Status.UpdatedReplicas = 1, 1
	return d, nil
}

func testPayload(t *testing.T) (*bundle.Bundle, map[string][]byte) {
	return testPayloadWith(t, false)
}

// testPayloadWith is testPayload, with the default pipeline image when
// pipelineImage is set.
func testPayloadWith(t *testing.T, pipelineImage bool) (*bundle.Bundle, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{"amd64/k3s": []byte("#!k3s binary\n"), "amd64/k3s-airgap-images-amd64.tar.zst": bytes.Repeat([]byte("img"), 1000)}
	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	m := bundle.Manifest{SchemaVersion: bundle.SchemaVersion, K3sVersion: "v1.36.3+k3s1", Artifacts: []bundle.Artifact{
		{Name: "k3s", Kind: bundle.KindK3sBinary, Arch: "amd64", Version: "v1.36.3+k3s1", Size: int64(len(files["amd64/k3s"])), SHA256: sha(files["amd64/k3s"]), File: "amd64/k3s"},
		{Name: "k3s-airgap-images", Kind: bundle.KindK3sImages, Arch: "amd64", Version: "v1.36.3+k3s1", Size: 3000, SHA256: sha(files["amd64/k3s-airgap-images-amd64.tar.zst"]), File: "amd64/k3s-airgap-images-amd64.tar.zst"},
	}}
	if pipelineImage {
		f := "amd64/fluent-bit-4.0.3.tar"
		files[f] = bytes.Repeat([]byte("fb"), 700)
		m.Artifacts = append(m.Artifacts, bundle.Artifact{Name: "fluent-bit", Kind: bundle.KindPipelineImage, Arch: "amd64", Version: "4.0.3", Size: int64(len(files[f])), SHA256: sha(files[f]), File: f})
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	fsys := fstest.MapFS{bundle.ManifestFile: {Data: raw}}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: v}
	}
	b, err := bundle.New(fsys, "amd64")
	require.NoError(t, err)
	return b, files
}

type testInstall struct {
	// ignored records the extra ignore names of each preflight run.
	ignored [][]string
	root    string
	k3s     *fakeK3s
	facts   preflight.Facts
	opts    Options
}

func newTestInstall(t *testing.T, c Config) *testInstall {
	t.Helper()
	root := t.TempDir()
	c = completed(t, c)
	require.NoError(t, c.Validate())
	gen, err := os.ReadFile(filepath.Join("testdata", "containerd-v3.toml"))
	require.NoError(t, err)
	ti := &testInstall{root: root, k3s: &fakeK3s{root: root, dataDir: c.DataDir, generated: gen}}
	b, _ := testPayload(t)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ti.opts = Options{
		Root: root, Config: c, Bundle: b, PID: 99, Poll: time.Millisecond,
		Now: func() time.Time { clock = clock.Add(time.Second); return clock },
		Preflight: func(_ context.Context, _ Config, ignore ...string) (preflight.Report, error) {
			ti.ignored = append(ti.ignored, ignore)
			return preflight.Report{Summary: preflight.Summary{Pass: 40, Warn: 1},
				Results: []preflight.Result{{Name: "Swap", Severity: preflight.Warn}}, Facts: ti.facts}, nil
		},
		Systemd: func(context.Context) (systemd.Manager, error) { return ti.k3s, nil },
		Cluster: func(string) (Cluster, error) { return readyCluster{nodeName: c.NodeName}, nil },
	}
	return ti
}

func (ti *testInstall) run(t *testing.T) (*recorder, error) {
	t.Helper()
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	rec := &recorder{}
	return rec, Run(context.Background(), plan, rec)
}

func (ti *testInstall) read(t *testing.T, p string) (string, os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ti.root, p))
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(ti.root, p))
	require.NoError(t, err)
	return string(b), st.Mode().Perm()
}

var installSteps = []string{"preflight", "stage payload", "write K3s config", "containerd drop-in", "write environment file", "write unit", "start K3s", "containerd template", "wait for node"}

func TestInstallThenRerunChangesNothing(t *testing.T) {
	ti := newTestInstall(t, Config{HTTPSProxy: "http://u:pw@proxy:3128"})
	ti.facts = preflight.Facts{CgroupVersion: 1, CapSysResource: true, KubeletArgs: []string{"fail-cgroupv1=false"}}
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"stage payload", "write K3s config", "write environment file", "write unit", "start K3s"}, rec.of(EventDone))
	assert.Equal(t, []string{"preflight", "containerd drop-in", "containerd template", "wait for node"}, rec.of(EventSkipped),
		"preflight passes; the template is not needed here; the fake node is Ready as soon as it starts")
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls())

	want, err := RenderK3sConfig(ti.opts.Config, Facts{CgroupV1: true, KubeletArgs: []string{"fail-cgroupv1=false"}})
	require.NoError(t, err)
	got, mode := ti.read(t, K3sConfigPath)
	assert.Equal(t, string(want), got)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Contains(t, got, "fail-cgroupv1=false")
	env, mode := ti.read(t, EnvFilePath)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Contains(t, env, "HTTPS_PROXY=http://u:pw@proxy:3128\n")
	_, mode = ti.read(t, UnitPath)
	assert.Equal(t, os.FileMode(0o644), mode)
	bin, mode := ti.read(t, K3sBinaryPath)
	assert.Equal(t, "#!k3s binary\n", bin)
	assert.Equal(t, os.FileMode(0o755), mode)
	_, mode = ti.read(t, filepath.Join(ImagesDir(ti.opts.Config), "k3s-airgap-images-amd64.tar.zst"))
	assert.Equal(t, os.FileMode(0o644), mode)
	target, err := os.Readlink(filepath.Join(ti.root, "/usr/local/bin/kubectl"))
	require.NoError(t, err)
	assert.Equal(t, "k3s", target)

	st, err := LoadState(filepath.Join(ti.root, StatePath), time.Now)
	require.NoError(t, err)
	s := st.Get()
	assert.True(t, s.Completed)
	assert.Equal(t, K3sRecord{Version: "v1.36.3+k3s1", SHA256: ti.opts.Bundle.Present[0].SHA256, Source: "payload"}, s.K3s)
	assert.Equal(t, "http://u:xxxxx@proxy:3128", s.Config.HTTPSProxy, "no proxy password in the state")
	paths := map[string]Created{}
	for _, c := range s.Created {
		paths[c.Path] = c
	}
	for _, p := range []string{"/usr", "/usr/local/bin/k3s", "/usr/local/bin/kubectl", "/etc/rancher", "/etc/rancher/k3s/config.yaml",
		"/etc/systemd/system/k3s.service", "/var/lib/rancher/k3s", "/var/lib/kubelet", "/run/k3s", "/run/containerd", "/run/nri"} {
		assert.Contains(t, paths, p)
	}
	assert.True(t, paths["/var/lib/rancher/k3s"].Data, "the data dir is cluster data")
	assert.Equal(t, KindRuntime, paths["/var/lib/kubelet"].Kind)
	assert.False(t, s.PendingReload || s.PendingRestart)

	// The second run changes nothing and calls nothing on systemd.
	stateBefore, _ := ti.read(t, StatePath)
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, installSteps, rec.of(EventSkipped))
	assert.Empty(t, rec.of(EventDone))
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls())
	assert.Equal(t, [][]string{nil, nil}, ti.ignored, "a finished install ignores nothing")
	stateAfter, _ := ti.read(t, StatePath)
	assert.Equal(t, stateBefore, stateAfter)
}

func TestInstallChangedConfigRestartsK3s(t *testing.T) {
	ti := newTestInstall(t, Config{})
	_, err := ti.run(t)
	require.NoError(t, err)
	ti.opts.Config.TLSSANs = []string{"edge.example.com"}
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"write K3s config", "start K3s"}, rec.of(EventDone))
	assert.Equal(t, []string{"reload", "enable+start", "restart"}, ti.k3s.Calls())
	cfg, _ := ti.read(t, K3sConfigPath)
	assert.Contains(t, cfg, "- edge.example.com")
}

// For a K3s whose generated config imports no drop-in directory (the
// fake's default): the template is derived from that config, with one
// restart.
func TestInstallWithoutCapSysResourceDerivesContainerdTemplate(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, RestrictOOMScoreAdj: true}
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "containerd template")
	assert.Equal(t, []string{"reload", "enable+start", "restart"}, ti.k3s.Calls(), "K3s restarts once to apply the template")
	tmpl, mode := ti.read(t, filepath.Join(ContainerdDir(ti.opts.Config), templateV3))
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.True(t, strings.HasPrefix(tmpl, templateMarker))
	gen, _ := ti.read(t, filepath.Join(ContainerdDir(ti.opts.Config), ContainerdConfigFile))
	assert.True(t, ContainerdTemplateApplied([]byte(gen)))

	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, installSteps, rec.of(EventSkipped))
	assert.Len(t, ti.k3s.Calls(), 3)
}

func TestInstallRefusesForeignContainerdTemplate(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{RestrictOOMScoreAdj: true}
	ti.opts.DataDirForce = true // a data dir with the user's own template
	p := filepath.Join(ti.root, ContainerdDir(ti.opts.Config), templateV3)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("{{ template \"base\" . }}\n"), 0o600))
	_, err := ti.run(t)
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "containerd template", se.Step)
	assert.Contains(t, err.Error(), "was not written by tpctl")
}

func TestInstallPreflightFailureStopsBeforeChanges(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.opts.Preflight = func(context.Context, Config, ...string) (preflight.Report, error) {
		return preflight.Report{Summary: preflight.Summary{Fail: 1}, Results: []preflight.Result{{Name: "Port-6443-TCP", Severity: preflight.Fail, Message: "in use by nginx"}}}, nil
	}
	rec, err := ti.run(t)
	var pe *PreflightError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), "Port-6443-TCP")
	assert.Equal(t, []string{"preflight"}, rec.of(EventFailed))
	for _, p := range []string{K3sBinaryPath, K3sConfigPath, UnitPath} {
		_, err := os.Stat(filepath.Join(ti.root, p))
		assert.ErrorIs(t, err, os.ErrNotExist, p)
	}
	assert.Empty(t, ti.k3s.Calls())
}

func TestInstallResumesAfterFailedStart(t *testing.T) {
	ti := newTestInstall(t, Config{})
	failing := &failingStart{fakeK3s: ti.k3s, fails: 1}
	ti.opts.Systemd = func(context.Context) (systemd.Manager, error) { return failing, nil }
	_, err := ti.run(t)
	require.ErrorContains(t, err, "start k3s.service: the unit failed")
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, [][]string{nil, {"ExistingInstall"}}, ti.ignored,
		"the resumed run does not fail on the K3s files its own first run staged")
	assert.Equal(t, []string{"start K3s"}, rec.of(EventDone))
	assert.Equal(t, []string{"preflight", "stage payload", "write K3s config", "containerd drop-in", "write environment file", "write unit", "containerd template", "wait for node"}, rec.of(EventSkipped),
		"the node came up with the start, so the wait has nothing left to do")
}

type failingStart struct {
	*fakeK3s
	fails int
}

func (f *failingStart) EnableAndStart(ctx context.Context, unit string) error {
	if f.fails > 0 {
		f.fails--
		return &systemd.JobError{Verb: "start", Unit: unit, Result: "failed"}
	}
	return f.fakeK3s.EnableAndStart(ctx, unit)
}

func TestInstallWithoutAnyK3sBinaryIsRefusedUpFront(t *testing.T) {
	ti := newTestInstall(t, Config{})
	empty, err := bundle.New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	ti.opts.Bundle = empty
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no K3s binary to install")
	assert.Contains(t, err.Error(), "carries no payload")
	assert.Contains(t, err.Error(), "--k3s-binary")
}

func TestInstallFromK3sBinaryFlag(t *testing.T) {
	ti := newTestInstall(t, Config{AirGap: true})
	empty, err := bundle.New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	ti.opts.Bundle = empty
	src := filepath.Join(t.TempDir(), "k3s-launcher")
	require.NoError(t, os.WriteFile(src, []byte("launcher"), 0o755))
	img := filepath.Join(t.TempDir(), "images.tar")
	require.NoError(t, os.WriteFile(img, []byte("images"), 0o644))
	ti.opts.Sources = Sources{K3sBinary: src, K3sSHA256: strings.Repeat("0", 64), K3sImages: []string{img}}
	_, err = ti.run(t)
	var mm *bundle.MismatchError
	require.ErrorAs(t, err, &mm, "a wrong --k3s-sha256 is refused")
	_, statErr := os.Stat(filepath.Join(ti.root, K3sBinaryPath))
	assert.ErrorIs(t, statErr, os.ErrNotExist)

	sum := sha256.Sum256([]byte("launcher"))
	ti.opts.Sources.K3sSHA256 = hex.EncodeToString(sum[:])
	ti.opts.K3sVersion = func(context.Context, string) (string, error) { return "k3s version v1.36.3+k3s1 (test)\n", nil }
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "stage payload")
	bin, _ := ti.read(t, K3sBinaryPath)
	assert.Equal(t, "launcher", bin)
	got, _ := ti.read(t, filepath.Join(ImagesDir(ti.opts.Config), "images.tar"))
	assert.Equal(t, "images", got)
	st, err := LoadState(filepath.Join(ti.root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, K3sRecord{Version: "v1.36.3+k3s1", SHA256: ti.opts.Sources.K3sSHA256, Source: "file"}, st.Get().K3s)

	ti.opts.Sources.K3sImages = nil
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "airGap is set but there are no air-gap images")

	// The default pipeline image is no substitute for K3s's own images.
	fb := []byte("fluent bit image")
	fbSum := sha256.Sum256(fb)
	raw, err := json.Marshal(bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Artifacts: []bundle.Artifact{{
		Name: "fluent-bit", Kind: bundle.KindPipelineImage, Arch: "amd64", Version: "4.0.3",
		Size: int64(len(fb)), SHA256: hex.EncodeToString(fbSum[:]), File: "amd64/fluent-bit-4.0.3.tar"}}})
	require.NoError(t, err)
	ti.opts.Bundle, err = bundle.New(fstest.MapFS{bundle.ManifestFile: {Data: raw}, "amd64/fluent-bit-4.0.3.tar": {Data: fb}}, "amd64")
	require.NoError(t, err)
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "airGap is set but there are no air-gap images")
}

func TestInstallUsesExistingSupportedK3s(t *testing.T) {
	ti := newTestInstall(t, Config{})
	empty, err := bundle.New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	ti.opts.Bundle = empty
	p := filepath.Join(ti.root, K3sBinaryPath)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o755))
	ti.opts.K3sVersion = func(context.Context, string) (string, error) { return "k3s version v1.30.2+k3s1 (x)", nil }
	_, _, err = NewInstallPlan(context.Background(), ti.opts)
	assert.ErrorContains(t, err, "needs v1.33 or newer")
	ti.opts.K3sVersion = func(context.Context, string) (string, error) { return "k3s version v1.35.1+k3s2 (x)", nil }
	_, err = ti.run(t)
	require.NoError(t, err)
	st, err := LoadState(filepath.Join(ti.root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, "existing", st.Get().K3s.Source)
	assert.Equal(t, [][]string{{"ExistingInstall"}}, ti.ignored, "the K3s the user asked for is not a conflict")
	for _, c := range st.Get().Created {
		assert.NotEqual(t, K3sBinaryPath, c.Path, "a K3s that was there is not ours to remove")
	}
}

func TestDryRunGolden(t *testing.T) {
	ti := newTestInstall(t, Config{NodeName: "edge-1", HTTPProxy: "http://bob:hunter2@proxy:3128", CNI: CNICilium})
	ti.facts = preflight.Facts{CgroupVersion: 1, RestrictOOMScoreAdj: true, KubeletArgs: []string{"fail-cgroupv1=false"}}
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	rep := DryRun(context.Background(), plan)
	var b bytes.Buffer
	require.NoError(t, WriteDryRun(&b, rep))
	golden(t, "dry-run.txt", b.Bytes())
	assert.NotContains(t, b.String(), "hunter2")
	entries, err := os.ReadDir(ti.root)
	require.NoError(t, err)
	assert.Empty(t, entries, "a dry run writes nothing")
	assert.Empty(t, ti.k3s.Calls())
}

// slowCluster becomes ready one stage per look.
type slowCluster struct {
	readyCluster
	looks *int
}

func (c slowCluster) Readyz(context.Context) error {
	*c.looks++
	if *c.looks < 2 {
		return errors.New("etcd not ready")
	}
	return nil
}

func (c slowCluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.readyCluster.Node(ctx, name)
	if err == nil && *c.looks < 3 {
		n.Status.Conditions[0].Status, n.Status.Conditions[0].Reason = corev1.ConditionFalse, "KubeletNotReady"
	}
	return n, err
}

func (c slowCluster) Deployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	d, err := c.readyCluster.Deployment(ctx, ns, name)
	if *c.looks < 4 && name == "coredns" {
		d.Status.AvailableReplicas = 0
	}
	return d, err
}

func TestWaitStepReportsWhatItWaitsFor(t *testing.T) {
	ti := newTestInstall(t, Config{Disable: []string{"traefik", "metrics-server"}})
	env := newEnv(ti.opts)
	looks := 0
	env.Cluster = func(string) (Cluster, error) { return slowCluster{readyCluster{nodeName: "node-1"}, &looks}, nil }
	w := &waitStep{env: env}
	done, err := w.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done)
	require.NoError(t, os.MkdirAll(filepath.Join(ti.root, "/etc/rancher/k3s"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ti.root, KubeconfigPath), nil, 0o600))
	rec := &recorder{}
	require.NoError(t, w.Run(context.Background(), rec))
	var msgs []string
	for _, e := range rec.events {
		msgs = append(msgs, e.Message)
	}
	assert.Equal(t, []string{
		"waiting for the API server (etcd not ready)",
		"waiting for node node-1 to be Ready (KubeletNotReady: )",
		"waiting for core add-ons to be available: coredns",
	}, msgs)
	assert.Equal(t, []string{"coredns", "local-path-provisioner"}, CoreAddons(env.Config))

	// Bounded by the context: a node that never comes is reported.
	never := 0
	w.cl = slowCluster{readyCluster{nodeName: "other"}, &never}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = w.Run(ctx, &recorder{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "waiting for node node-1 to register")
}

func TestInstallUnverifiedK3sBinaryIsHashedOnTheWayIn(t *testing.T) {
	ti := newTestInstall(t, Config{})
	empty, err := bundle.New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	ti.opts.Bundle = empty
	src := filepath.Join(t.TempDir(), "k3s")
	require.NoError(t, os.WriteFile(src, []byte("user binary"), 0o755))
	ti.opts.Sources = Sources{K3sBinary: src}
	rec, err := ti.run(t)
	require.NoError(t, err)
	var warnings []string
	for _, e := range rec.events {
		if e.Warning {
			warnings = append(warnings, e.Message)
		}
	}
	assert.Contains(t, warnings, "K3s binary from "+src+": no digest to check it against (pass --k3s-sha256, or use a payload build)")
	assert.Contains(t, warnings, "no air-gap images to stage: K3s will pull its images from registries")
	st, err := LoadState(filepath.Join(ti.root, StatePath), time.Now)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("user binary"))
	assert.Equal(t, hex.EncodeToString(sum[:]), st.Get().K3s.SHA256)
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, installSteps, rec.of(EventSkipped))
}

func TestDryRunAfterInstallReadsState(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, CapSysResource: true}
	_, err := ti.run(t)
	require.NoError(t, err)

	// A new process: a fresh plan whose state store has not been loaded yet.
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	rep := DryRun(context.Background(), plan)
	require.Empty(t, rep.StateError)
	for _, s := range rep.Steps {
		if s.Name == "preflight" {
			continue // preflight always runs its checks
		}
		assert.Equal(t, "no change", s.Would, "step %q on an installed host", s.Name)
	}

	require.NoError(t, os.WriteFile(filepath.Join(ti.root, StatePath), []byte("{not json"), 0o600))
	plan, _, err = NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	rep = DryRun(context.Background(), plan)
	assert.Contains(t, rep.StateError, StatePath)
	var b bytes.Buffer
	require.NoError(t, WriteDryRun(&b, rep))
	assert.Contains(t, b.String(), "cannot read the install state")
}

// staleCluster is a ready API whose node's Ready condition was last
// reported at beat.
type staleCluster struct {
	readyCluster
	beat *time.Time
}

func (c staleCluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.readyCluster.Node(ctx, name)
	if err == nil {
		n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(*c.beat)
	}
	return n, err
}

// After this run (re)started K3s, the node's Ready condition from before
// the restart does not end the wait: it stays in the API until the node
// controller marks it Unknown, so a K3s whose kubelet never reports would
// pass. A report made since the start does.
func TestWaitStepWantsAReadySinceK3sStarted(t *testing.T) {
	ti := newTestInstall(t, Config{Disable: []string{"traefik", "metrics-server", "coredns", "local-storage"}})
	env := newEnv(ti.opts)
	started := time.Date(2026, 12, 7, 10, 0, 0, 500e6, time.UTC)
	env.Now = func() time.Time { return started }
	env.k3sStarting()
	beat := started.Add(-30 * time.Second)
	env.Cluster = func(string) (Cluster, error) { return staleCluster{readyCluster{nodeName: "node-1"}, &beat}, nil }
	require.NoError(t, os.MkdirAll(filepath.Join(ti.root, "/etc/rancher/k3s"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ti.root, KubeconfigPath), nil, 0o600))
	w := &waitStep{env: env}

	done, err := w.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done, "a Ready reported before K3s was started")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = w.Run(ctx, &recorder{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "node node-1 to report since K3s was started at 2026-12-07T10:00:00Z (its Ready was last reported at 2026-12-07T09:59:30Z)")

	// The API keeps heartbeats to the second: one in the second K3s
	// started counts.
	beat = started.Truncate(time.Second)
	done, err = w.Done(context.Background())
	require.NoError(t, err)
	assert.True(t, done)

	// A run that did not start K3s takes the node's Ready as it is.
	env.k3sStarted = time.Time{}
	beat = started.Add(-time.Hour)
	done, err = w.Done(context.Background())
	require.NoError(t, err)
	assert.True(t, done)
}
