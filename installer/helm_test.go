package installer

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/kube"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"

	"github.com/tpctl/tpctl/charts"
)

// memHelm is a Helm configuration over an in-memory release store and a
// fake cluster client, shared by every operation of one test.
type memHelm struct {
	cfg *action.Configuration
}

func newMemHelm() *memHelm {
	caps := *common.DefaultCapabilities
	caps.KubeVersion = common.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	cfg.Releases = storage.Init(driver.NewMemory())
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
	cfg.Capabilities = &caps
	return &memHelm{cfg: cfg}
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }
func (l *lines) all() string  { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.l, "\n") }

func testRelease(t *testing.T, m *memHelm, version string, vals map[string]any) (*HelmRelease, *lines) {
	t.Helper()
	archive, err := charts.Archive(charts.CoreInstance, version)
	require.NoError(t, err)
	var l lines
	return &HelmRelease{
		Namespace: "tpctl-system", Name: "core", Chart: archive, Values: vals,
		Timeout: time.Minute, Progress: l.add,
		Configure: func() (*action.Configuration, error) { return m.cfg, nil },
	}, &l
}

func TestHelmInstallUpgradeUnchanged(t *testing.T) {
	ctx := context.Background()
	m := newMemHelm()
	h, log := testRelease(t, m, "1.0.0", map[string]any{"name": "core"})

	done, err := h.Done(ctx)
	require.NoError(t, err)
	assert.False(t, done, "nothing installed yet")

	res, err := h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, HelmResult{Action: "installed", Revision: 1, ChartVersion: "1.0.0"}, res)
	assert.Contains(t, log.all(), "installing release core (chart tp-core-instance 1.0.0)")

	done, err = h.Done(ctx)
	require.NoError(t, err)
	assert.True(t, done)
	res, err = h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "unchanged", res.Action)
	assert.Equal(t, 1, res.Revision)

	h.Values = map[string]any{"name": "core", "proxy": map[string]any{"httpsProxy": "http://p:3128"}}
	done, err = h.Done(ctx)
	require.NoError(t, err)
	assert.False(t, done, "new values")
	res, err = h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "upgraded", res.Action)
	assert.Equal(t, 2, res.Revision)

	h2, _ := testRelease(t, m, "1.1.0", h.Values)
	res, err = h2.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "upgraded", res.Action, "a new chart version")
	assert.Equal(t, 3, res.Revision)
	rel, err := h2.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, rcommon.StatusDeployed, rel.Info.Status)
	assert.Equal(t, "1.1.0", rel.Chart.Metadata.Version)
}

// stick rewrites the latest revision's status, as a killed run leaves it.
func stick(t *testing.T, m *memHelm, name string, st rcommon.Status) {
	t.Helper()
	rel, err := latest(m.cfg, name)
	require.NoError(t, err)
	require.NotNil(t, rel)
	rel.Info.Status = st
	require.NoError(t, m.cfg.Releases.Update(rel))
}

func TestHelmRecoversPendingInstall(t *testing.T) {
	ctx := context.Background()
	m := newMemHelm()
	h, log := testRelease(t, m, "1.0.0", nil)
	_, err := h.Apply(ctx)
	require.NoError(t, err)
	stick(t, m, "core", rcommon.StatusPendingInstall)

	res, err := h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "installed", res.Action)
	assert.Equal(t, "uninstalled pending-install revision 1", res.Recovered)
	assert.Contains(t, log.all(), "stuck in pending-install")
	rel, err := h.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, rcommon.StatusDeployed, rel.Info.Status)
}

func TestHelmRecoversPendingUpgrade(t *testing.T) {
	ctx := context.Background()
	m := newMemHelm()
	h, log := testRelease(t, m, "1.0.0", nil)
	_, err := h.Apply(ctx)
	require.NoError(t, err)
	h.Values = map[string]any{"name": "other"}
	_, err = h.Apply(ctx)
	require.NoError(t, err)
	stick(t, m, "core", rcommon.StatusPendingUpgrade)

	// Helm itself refuses to touch the release now.
	up := action.NewUpgrade(m.cfg)
	up.Namespace, up.WaitStrategy = "tpctl-system", kube.HookOnlyStrategy
	ch, err := h.LoadChart()
	require.NoError(t, err)
	_, err = up.Run("core", ch, nil)
	require.ErrorContains(t, err, "another operation (install/upgrade/rollback) is in progress", "precondition: a pending release blocks a plain upgrade")

	h.Values = map[string]any{"name": "third"}
	res, err := h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "upgraded", res.Action)
	assert.Equal(t, "rolled back from pending-upgrade revision 2 to revision 1", res.Recovered)
	assert.Contains(t, log.all(), "rolling back to revision 1")
	rel, err := h.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, rcommon.StatusDeployed, rel.Info.Status)
	assert.Equal(t, "third", rel.Config["name"])
}

func TestHelmRecoversFailedFirstInstall(t *testing.T) {
	ctx := context.Background()
	m := newMemHelm()
	h, _ := testRelease(t, m, "1.0.0", nil)
	_, err := h.Apply(ctx)
	require.NoError(t, err)
	stick(t, m, "core", rcommon.StatusFailed)
	res, err := h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "installed", res.Action)
	assert.Contains(t, res.Recovered, "uninstalled failed revision 1")
}

func TestHelmUninstall(t *testing.T) {
	ctx := context.Background()
	m := newMemHelm()
	h, _ := testRelease(t, m, "1.0.0", nil)
	require.NoError(t, h.Uninstall(ctx, false), "a missing release is not an error")
	_, err := h.Apply(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Uninstall(ctx, false))
	rel, err := h.Current(ctx)
	require.NoError(t, err)
	assert.Nil(t, rel)
}

func TestHelmBadArchive(t *testing.T) {
	h := &HelmRelease{Name: "x", Chart: []byte("not a chart")}
	_, err := h.Apply(context.Background())
	assert.ErrorContains(t, err, "read chart archive of release x")
}

func TestHelmProgressWhileWaiting(t *testing.T) {
	var l lines
	h := &HelmRelease{Progress: l.add, ProgressInterval: 5 * time.Millisecond, Timeout: time.Minute}
	stop := h.watch("install core")
	assert.Eventually(t, func() bool { return strings.Contains(l.all(), "install core: still waiting") },
		5*time.Second, 5*time.Millisecond)
	stop()
}

// A stuck release rendered by a chart that does not keep its CoreInstance
// is not uninstalled: that would delete the instance and every pipeline.
func TestHelmRecoveryNeverDeletesAnUnkeptInstance(t *testing.T) {
	ctx := context.Background()
	m := newMemHelm()
	h, _ := testRelease(t, m, "1.0.0", nil)
	h.Keep = []string{"CoreInstance"}
	_, err := h.Apply(ctx)
	require.NoError(t, err)
	rel, err := latest(m.cfg, "core")
	require.NoError(t, err)
	require.Contains(t, rel.Manifest, "helm.sh/resource-policy: keep", "precondition: today's chart keeps the instance")
	stick(t, m, "core", rcommon.StatusPendingInstall)
	res, err := h.Apply(ctx)
	require.NoError(t, err, "a kept instance does not stop the recovery")
	assert.Equal(t, "uninstalled pending-install revision 1", res.Recovered)

	// The same release as an older chart rendered it: no keep policy.
	rel, err = latest(m.cfg, "core")
	require.NoError(t, err)
	rel.Manifest = strings.Replace(rel.Manifest, "helm.sh/resource-policy: keep", "example.test/other: x", 1)
	rel.Info.Status = rcommon.StatusPendingInstall
	require.NoError(t, m.cfg.Releases.Update(rel))
	_, err = h.Apply(ctx)
	require.ErrorContains(t, err, "would delete CoreInstance core (its chart does not mark it helm.sh/resource-policy: keep); refusing")
	cur, err := h.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, rcommon.StatusPendingInstall, cur.Info.Status, "the release was left alone")
	assert.Equal(t, rel.Version, cur.Version)
}
