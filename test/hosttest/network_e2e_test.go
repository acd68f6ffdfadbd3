//go:build e2e

package hosttest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostOwnNetwork boots a host with Network: it makes its own bridge
// (a subnet asked for), the host's networkd gives host0 its address and a
// default route via the bridge, the gateway answers, and what a K3s node
// needs is there: /dev/kmsg, writable cgroups, and ip forwarding that the
// host turns on in its own namespace only. Close removes the bridge and
// compares this machine (routes included) with its snapshot from before.
func TestHostOwnNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	RequireRootfs(t)
	subnet := netip.MustParsePrefix("10.213.9.0/24")
	addr := netip.MustParseAddr("10.213.9.20")
	h := Start(ctx, t, Options{Name: "tpctl-net", Network: &Network{Subnet: subnet, BridgeName: "tpctl-br9", Address: addr}})
	require.NotNil(t, h.Bridge())
	assert.Equal(t, addr, h.Address())
	assert.Equal(t, "tpctl-br9", h.Bridge().Name())
	_, err := os.Stat("/sys/class/net/tpctl-br9/brif/" + h.Veth())
	require.NoError(t, err, "the host's veth is a port of the bridge")

	out, err := h.Exec(ctx, "networkctl", "status", "host0", "--no-pager")
	require.NoError(t, err)
	assert.Contains(t, out, "10-host0.network", "configured by the host's networkd")
	// A server on the gateway address answers the host, and sees its
	// address (no NAT).
	ln, err := net.Listen("tcp", "10.213.9.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	out, err = h.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://"+ln.Addr().String()+"/")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, addr.String()+":"), "the gateway's server saw %q", out)

	// K3s's needs inside the host.
	_, err = h.Exec(ctx, "test", "-r", "/dev/kmsg")
	assert.NoError(t, err, "/dev/kmsg")
	_, err = h.Exec(ctx, "test", "-w", "/sys/fs/cgroup/memory")
	assert.NoError(t, err, "cgroups writable")
	machine, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	_, err = h.Exec(ctx, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	require.NoError(t, err)
	out, err = h.Exec(ctx, "cat", "/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, "1", strings.TrimSpace(out))
	after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, string(machine), string(after), "the host's ip_forward is its own")
	m, err := h.Memory()
	require.NoError(t, err)
	t.Logf("boot %s, memory (idle): %s", h.Timings().Boot.Round(time.Millisecond), m)
}
