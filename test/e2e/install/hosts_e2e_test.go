//go:build e2e

package install

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// bootedHost starts the booted Debian host of one test, named name, as a
// user's machine before tpctl: it holds the node harness lock (one node on
// this machine's shared network at a time), copies tpctl, the K3s stand-in
// and the air-gap images in, gives the node its address (prepareHost), and
// takes the snapshot uninstall is compared with. A failed test logs K3s's
// journal. opts adds to the defaults (capabilities to drop, more binds).
func bootedHost(ctx context.Context, t *testing.T, name string, opts hosttest.Options) *e2e {
	t.Helper()
	a, err := buildArtifacts(ctx, t.TempDir())
	require.NoError(t, err)
	lock, err := cluster.AcquireHostLock(ctx, cluster.DefaultLockPath)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, lock.Release()) })
	opts.Name, opts.HostLock = name, lock
	binds := map[string]string{launcher.DefaultComponentDir: a.components}
	for inside, host := range opts.BindRO {
		binds[inside] = host
	}
	opts.BindRO = binds
	h := hosttest.Start(ctx, t, opts)
	prepareHost(ctx, t, h, a)
	before, err := h.Snapshot(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.Journal(context.Background(), "k3s.service", 300))
		}
	})
	return &e2e{t: t, h: h, a: a, before: before}
}
