//go:build e2e

package hosttest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/cluster"
)

// A killed test whose host shared the machine's network left K3s's node
// address on lo (and cni0, chains, tables): the next test could not boot
// ("ip addr add 10.99.0.1/32 dev lo: Address already assigned"). The entry
// the host leaves beside the lock now carries the network as it was before
// boot, and RecoverStale undoes the difference.
func TestRecoverStaleRestoresASharedNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root: changes lo's addresses (CI runs as root and must run this test)")
		}
		t.Skip("needs root: changes lo's addresses")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Hold the machine's harness lock: no node or shared-network host of
	// another test is running, so every difference below is this test's.
	lock, err := cluster.AcquireHostLock(ctx, cluster.DefaultLockPath)
	require.NoError(t, err)
	defer func() { _ = lock.Release() }()

	const addr = "10.99.0.77/32"
	before, err := cluster.TakeHostSnapshot(ctx)
	require.NoError(t, err)
	for _, a := range before.Addrs {
		require.NotEqual(t, "lo "+addr, a, "the test address is already on lo")
	}
	lockPath := filepath.Join(t.TempDir(), "lock")
	p, err := saveStale(lockPath, "host-killed", staleEntry{Network: &before})
	require.NoError(t, err)
	// The entry belongs to a process that is gone, as a killed test's does.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	var e staleEntry
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	e.PID = dead.Process.Pid
	data, err = json.Marshal(e)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, data, 0o600))

	out, err := exec.CommandContext(ctx, "ip", "addr", "add", addr, "dev", "lo").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", addr, "dev", "lo").Run() })

	require.NoError(t, RecoverStale(lockPath, t.Logf))
	out, err = exec.CommandContext(ctx, "ip", "-o", "addr", "show", "dev", "lo").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), strings.TrimSuffix(addr, "/32")+"/32", "the stale host's address is still on lo")
	_, err = os.Stat(p)
	require.ErrorIs(t, err, os.ErrNotExist, "the entry is removed once recovered")
	after, err := cluster.TakeHostSnapshot(ctx)
	require.NoError(t, err)
	require.Empty(t, before.Diff(after), "the machine's network is as it was")
}
