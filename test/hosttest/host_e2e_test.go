//go:build e2e

package hosttest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostSmoke boots the cached Debian root, checks systemd and D-Bus
// inside, that a quiet host's snapshots agree, and that teardown leaves the
// host as it was (Close compares the host against its snapshot from before
// the boot and fails on any difference).
func TestHostSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	RequireRootfs(t)
	h := Start(ctx, t, Options{Name: "tpctl-smoke"})
	t.Logf("boot: %s (root unpacked in %s), state %s", h.Timings().Boot, h.Timings().Extract, h.SystemState())
	assert.Contains(t, []string{"running", "degraded"}, h.SystemState())

	out, err := h.Exec(ctx, "systemctl", "is-system-running")
	assert.Contains(t, []string{"running", "degraded"}, strings.TrimSpace(out), "%v", err)
	out, err = h.Exec(ctx, "hostname")
	require.NoError(t, err)
	assert.Equal(t, "tpctl-smoke", strings.TrimSpace(out))
	out, err = h.Exec(ctx, "cat", "/proc/1/comm")
	require.NoError(t, err)
	assert.Equal(t, "systemd", strings.TrimSpace(out), "the container's PID 1 is systemd")

	// The mounts unit ran and left the hierarchies and /proc/sys/net writable.
	out, err = h.Exec(ctx, "systemctl", "show", "-p", "ActiveState", "--value", MountsUnit)
	require.NoError(t, err)
	assert.Equal(t, "active", strings.TrimSpace(out))
	_, err = h.Exec(ctx, "sh", "-c", "test -w /proc/sys/net/ipv4/ip_forward")
	assert.NoError(t, err, "/proc/sys/net is writable inside")
	out, err = h.Exec(ctx, "systemctl", "is-enabled", "containerd.service")
	assert.Equal(t, "masked", strings.TrimSpace(out), "Debian's containerd.service is masked (%v)", err)

	// D-Bus: the system bus answers, from inside (busctl) and through the
	// go-systemd client over the container's bus socket.
	out, err = h.Exec(ctx, "busctl", "--system", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
		"org.freedesktop.DBus.Properties", "Get", "ss", "org.freedesktop.systemd1.Manager", "Version")
	require.NoError(t, err)
	assert.Contains(t, out, "252")
	sd, err := h.Systemd(ctx)
	require.NoError(t, err)
	defer sd.Close()
	props, err := sd.GetUnitPropertiesContext(ctx, "dbus.service")
	require.NoError(t, err)
	assert.Equal(t, "active", props["ActiveState"])
	version, err := sd.GetManagerProperty("Version")
	require.NoError(t, err)
	assert.Contains(t, version, "252")

	// A quiet host's two snapshots agree; a change shows up.
	s1, err := h.Snapshot(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, s1.Files)
	require.NotEmpty(t, s1.Units)
	require.NotEmpty(t, s1.Mounts)
	time.Sleep(2 * time.Second)
	s2, err := h.Snapshot(ctx)
	require.NoError(t, err)
	assert.Empty(t, s1.Diff(s2), "snapshots of an idle host differ")
	_, err = h.Exec(ctx, "sh", "-c", "mkdir -p /run/tpctl-smoke && touch /etc/tpctl-smoke")
	require.NoError(t, err)
	s3, err := h.Snapshot(ctx)
	require.NoError(t, err)
	d := s2.Diff(s3)
	assert.Contains(t, d, "+ file: /run/tpctl-smoke drwxr-xr-x")
	assert.Len(t, d, 2, "%v", d)
}
