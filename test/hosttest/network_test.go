package hosttest

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOverlapping(t *testing.T) {
	addrs := "1: lo    inet 127.0.0.1/8 scope host lo\n3: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n"
	routes := "default via 192.0.2.1 dev eth0 \n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2 \n" +
		"local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 \n10.42.0.0/16 via 10.9.0.1 dev x\n" +
		"blackhole 10.50.0.0/24 \n"
	assert.Empty(t, overlapping(DefaultSubnet(), addrs, routes), "the default route does not count")
	assert.Contains(t, overlapping(netip.MustParsePrefix("192.0.2.128/25"), addrs, routes), "address 192.0.2.2/24 on eth0")
	assert.Contains(t, overlapping(netip.MustParsePrefix("10.42.3.0/24"), addrs, routes), "route 10.42.0.0/16")
	assert.Contains(t, overlapping(netip.MustParsePrefix("10.50.0.0/16"), addrs, routes), "route blackhole 10.50.0.0/24")
	assert.Contains(t, overlapping(netip.MustParsePrefix("127.0.0.0/30"), "", routes), "route local 127.0.0.1")
}

func TestValidBridge(t *testing.T) {
	assert.NoError(t, validBridge(DefaultBridgeName, DefaultSubnet()))
	assert.Error(t, validBridge("a-name-far-too-long", DefaultSubnet()))
	assert.Error(t, validBridge("br/0", DefaultSubnet()))
	assert.Error(t, validBridge("br0", netip.MustParsePrefix("fd00::/64")), "IPv4 only")
	assert.Error(t, validBridge("br0", netip.MustParsePrefix("10.0.0.0/30")), "no room for hosts")
}

func TestBridgeAllocate(t *testing.T) {
	p := netip.MustParsePrefix("10.213.7.0/29")
	b := &Bridge{name: "br", subnet: p, gateway: netip.MustParseAddr("10.213.7.1"), next: netip.MustParseAddr("10.213.7.2"), used: map[netip.Addr]bool{}}
	a, err := b.Allocate(netip.Addr{})
	require.NoError(t, err)
	assert.Equal(t, "10.213.7.2", a.String())
	a, err = b.Allocate(netip.MustParseAddr("10.213.7.5"))
	require.NoError(t, err)
	assert.Equal(t, "10.213.7.5", a.String())
	_, err = b.Allocate(netip.MustParseAddr("10.213.7.5"))
	assert.ErrorContains(t, err, "taken")
	for _, bad := range []string{"10.213.7.1", "10.213.7.0", "10.213.7.7", "10.213.8.2"} {
		_, err = b.Allocate(netip.MustParseAddr(bad))
		assert.Error(t, err, bad)
	}
	var got []string
	for {
		a, err := b.Allocate(netip.Addr{})
		if err != nil {
			assert.ErrorContains(t, err, "no free address")
			break
		}
		got = append(got, a.String())
	}
	assert.Equal(t, []string{"10.213.7.3", "10.213.7.4", "10.213.7.6"}, got, "skips the taken .5 and stops before the broadcast")
	assert.Equal(t, "10.213.7.255", lastAddr(DefaultSubnet()).String())
}

func TestBridgeRuleset(t *testing.T) {
	r := bridgeRuleset("tpctl_hostnet_tpctl_br0", "tpctl-br0")
	assert.Contains(t, r, "table inet tpctl_hostnet_tpctl_br0 {")
	assert.Contains(t, r, "type filter hook forward priority filter - 10; policy accept;")
	assert.Contains(t, r, `iifname "tpctl-br0" oifname != "tpctl-br0" drop`)
	assert.Contains(t, r, `oifname "tpctl-br0" iifname != "tpctl-br0" drop`)
}

func TestConfigureNetwork(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, configureNetwork(root, netip.MustParsePrefix("10.213.7.2/24"), netip.MustParseAddr("10.213.7.1")))
	b, err := os.ReadFile(filepath.Join(root, "etc/systemd/network/10-host0.network"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "Name=host0\n")
	assert.Contains(t, string(b), "Address=10.213.7.2/24\nGateway=10.213.7.1\n")
	b, err = os.ReadFile(filepath.Join(root, "etc/systemd/networkd.conf.d/50-foreign.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "ManageForeignRoutes=no")
	target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"))
	require.NoError(t, err)
	assert.Equal(t, "/lib/systemd/system/systemd-networkd.service", target)
	require.NoError(t, configureNetwork(root, netip.MustParsePrefix("10.213.7.3/24"), netip.MustParseAddr("10.213.7.1")), "again")
}

func TestNspawnArgsNetwork(t *testing.T) {
	h := &Host{opts: Options{Name: "h"}, root: "/r"}
	assert.NotContains(t, strings.Join(h.nspawnArgs(), " "), "--network", "the default shares this machine's network")
	h.bridge = &Bridge{name: "tpctl-br0"}
	assert.Contains(t, h.nspawnArgs(), "--network-bridge=tpctl-br0")
	assert.Contains(t, h.nspawnArgs(), "--bind=/dev/kmsg", "kept for the kubelet")
}

func TestRoutesDiff(t *testing.T) {
	assert.Equal(t, "default via fe80::1 dev eth0 proto ra metric 1024 pref medium",
		dropExpires("default via fe80::1 dev eth0 proto ra metric 1024 expires 1795sec pref medium"))
	assert.Equal(t, []string{"- route: -4 a", "+ route: -4 c"}, DiffLines("route", []string{"-4 a", "-4 b"}, []string{"-4 b", "-4 c"}))
	assert.Empty(t, DiffLines("route", []string{"x"}, []string{"x"}))
}

func TestRecoverStale(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	dir, err := os.MkdirTemp("", "tpctl-hosttest-")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "root/etc"), 0o755))
	// An entry of another (dead) process: removed with its directory.
	p, err := saveStale(lock, "host-x", staleEntry{Dir: dir})
	require.NoError(t, err)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(data), `"pid":`, `"pid":1`, 1)), 0o600))
	// An entry of this process: a live host, kept.
	own, err := os.MkdirTemp("", "tpctl-hosttest-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(own) })
	ownState, err := saveStale(lock, "host-own", staleEntry{Dir: own})
	require.NoError(t, err)
	// A directory outside the harness's own is never removed.
	outside := t.TempDir()
	q, err := saveStale(lock, "host-y", staleEntry{Dir: outside})
	require.NoError(t, err)
	data, err = os.ReadFile(q)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(q, []byte(strings.Replace(string(data), `"pid":`, `"pid":1`, 1)), 0o600))

	require.NoError(t, RecoverStale(lock, t.Logf))
	assert.NoDirExists(t, dir)
	assert.NoFileExists(t, p)
	assert.DirExists(t, own)
	assert.FileExists(t, ownState)
	assert.DirExists(t, outside)
	assert.NoError(t, RecoverStale(filepath.Join(t.TempDir(), "none"), nil), "no state dir")
}
