//go:build e2e

package install

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/backup"
	"github.com/tpctl/tpctl/test/hosttest"
)

// TestBackupRestoreCycleOnBootedHost is a node lost and rebuilt from a
// backup: install, create pipelines, `backup create`, a full `uninstall`
// (the data dir is gone), a fresh `install` (another token, CA and
// datastore), `backup restore`. The CoreInstance and every pipeline come
// back (the same UIDs: the backup's datastore, not the fresh one) with the
// same frontends, and bytes sent to a frontend reach the pipeline's pod.
func TestBackupRestoreCycleOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-backup", hosttest.Options{})
	h, a := e.h, e.a

	r := tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	pa := e.createPipeline(ctx, t, "bk-a", "--port", "data=tcp/15280", "--port", "report=tcp/18190",
		"--arg=--tcp=15280", "--arg=--http=:18190")
	pb := e.createPipeline(ctx, t, "bk-b", "--port", "syslog=udp/15281", "--port", "report=tcp/18191",
		"--arg=--udp=15281", "--arg=--http=:18191")
	instUID := e.uid(ctx, t, "coreinstances.telemetry.tpctl.dev", "core")

	archive := e2eDir + "/backup.tar.gz"
	begin := time.Now()
	out, err := e.tpctlText(ctx, "backup", "create", "--output", archive, "--format", "json")
	require.NoError(t, err, out)
	t.Logf("FIGURE backup create: %s", time.Since(begin).Round(time.Millisecond))
	var created struct {
		Path     string          `json:"path"`
		Manifest backup.Manifest `json:"manifest"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created), out)
	m := created.Manifest
	assert.Equal(t, archive, created.Path)
	require.NotNil(t, m.Inventory, "inventory: %s", m.InventoryError)
	var names []string
	for _, p := range m.Inventory.Pipelines {
		names = append(names, p.Name)
	}
	assert.Subset(t, names, []string{"bk-a", "bk-b"})
	assert.Positive(t, m.Datastore.Rows)
	assert.NotContains(t, out, "::server:", "the token is not printed")
	fi, err := os.Stat(h.Path(archive))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "archive mode")
	t.Logf("FIGURE backup archive: %d bytes, %d parts, datastore %d rows", fi.Size(), len(m.Parts), m.Datastore.Rows)

	out, err = e.tpctlText(ctx, "backup", "list", "--dir", e2eDir, "-o", "json")
	require.NoError(t, err, out)
	var list []backup.Entry
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list, 1, out)
	assert.Equal(t, m.K3sVersion, list[0].K3sVersion)

	// The node is lost: full uninstall, fresh install.
	r = tpctl(ctx, h, nil, nil, "uninstall", "--yes")
	require.NoError(t, r.err, "%s", r)
	r = tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	assert.NotEqual(t, instUID, e.uid(ctx, t, "coreinstances.telemetry.tpctl.dev", "core"), "the fresh install has its own CoreInstance")

	out, err = e.tpctlText(ctx, "backup", "restore", archive)
	require.Error(t, err, "restore without --yes: %s", out)
	out, err = e.tpctlText(ctx, "backup", "restore", "--dry-run", archive)
	require.NoError(t, err, out)
	assert.Contains(t, out, "every sha256 matches")
	assert.Contains(t, out, "Pipeline default/bk-a Ready")
	t.Logf("restore plan:\n%s", out)

	begin = time.Now()
	out, err = e.tpctlText(ctx, "backup", "restore", "--yes", "--timeout", "15m", archive)
	if err != nil {
		e.logState(ctx, t)
	}
	require.NoError(t, err, out)
	t.Logf("FIGURE backup restore (stop, replace, start, node Ready, every CoreInstance and Pipeline back): %s", time.Since(begin).Round(time.Millisecond))
	assert.NotContains(t, out, "::server:", "the token is not printed")

	assert.Equal(t, instUID, e.uid(ctx, t, "coreinstances.telemetry.tpctl.dev", "core"), "the CoreInstance is the backup's")
	for _, old := range []*v1alpha1.Pipeline{pa, pb} {
		got := e.readyPipeline(ctx, t, old.Name)
		assert.Equal(t, old.UID, got.UID, "pipeline %s is the backup's", old.Name)
		assert.Equal(t, frontends(old), frontends(got), "pipeline %s keeps its frontends", old.Name)
	}
	e.waitIngress(ctx, t, "default", "bk-a")
	e.sendUntilReceived(ctx, t, "tcp", frontend(t, pa, v1alpha1.ProtocolTCP, 15280).Frontend, 15280,
		frontend(t, pa, v1alpha1.ProtocolTCP, 18190).Frontend, "after backup restore")
	e.sendUntilReceived(ctx, t, "udp", frontend(t, pb, v1alpha1.ProtocolUDP, 15281).Frontend, 15281,
		frontend(t, pb, v1alpha1.ProtocolTCP, 18191).Frontend, "udp after backup restore")
	_, err = os.Stat(h.Path(backup.RestoreIntentPath))
	assert.ErrorIs(t, err, os.ErrNotExist, "the restore intent is removed once the node is back")
	aside := strings.TrimSpace(e.mustExec(ctx, t, "sh", "-c", "ls -d /var/lib/rancher/k3s/server/pre-restore-*"))
	assert.NotEmpty(t, aside, "the fresh install's files are kept aside")

	require.NoError(t, os.Remove(h.Path(archive)))
	e.uninstall(t)
}

func (e *e2e) mustExec(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.h.Exec(ctx, args...)
	require.NoError(t, err, out)
	return out
}
