//go:build e2e

package multihost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
)

const probePort = 7070

// buildProbe builds test/multihost/tcpprobe, static, for the hosts.
func buildProbe(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tcpprobe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./tcpprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build tcpprobe: %s", b)
	return out
}

func needRootfs(t *testing.T) {
	t.Helper()
	hosttest.RequireRootfs(t)
}

// TestThreeHostsOnBridge boots three hosts on one bridge: each reaches the
// others over TCP on their bridge addresses (source addresses kept: no
// NAT), sees none of this machine's interfaces, reaches this machine only
// through the gateway and nothing beyond it; it logs boot time and memory
// per host. Close then checks this machine against its snapshot from
// before the bridge (interfaces, addresses, firewall, routes, sysctls).
func TestThreeHostsOnBridge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	needRootfs(t)
	probe := buildProbe(t)
	machineLinks, err := os.ReadDir("/sys/class/net")
	require.NoError(t, err)

	g := StartWith(ctx, t, Options{Hosts: 3, Host: hosttest.Options{BindRO: map[string]string{"/usr/local/bin/tcpprobe": probe}}})
	require.Len(t, g.Hosts, 3)
	gw := g.Bridge.Gateway()
	t.Logf("group boot (3 at once): %s", g.Boot().Round(time.Millisecond))
	for _, h := range g.Hosts {
		require.True(t, g.Bridge.Subnet().Contains(h.Address()), "%s has %s", h.Name(), h.Address())
		t.Logf("%s: %s, veth %s, boot %s (root unpacked in %s), state %s", h.Name(), h.Address(), h.Veth(),
			h.Timings().Boot.Round(time.Millisecond), h.Timings().Extract.Round(time.Millisecond), h.SystemState())
	}

	for _, h := range g.Hosts {
		_, err := h.Exec(ctx, "systemd-run", "--unit=tcpprobe-listen", "--quiet", "/usr/local/bin/tcpprobe", "listen",
			net.JoinHostPort("0.0.0.0", strconv.Itoa(probePort)))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := h.Exec(ctx, "/usr/local/bin/tcpprobe", "dial", net.JoinHostPort("127.0.0.1", strconv.Itoa(probePort)), "1s")
			return err == nil
		}, 20*time.Second, 200*time.Millisecond, "listener in %s", h.Name())
	}
	// Every host reaches every other one; the listener sees the dialler's
	// own bridge address.
	for _, from := range g.Hosts {
		for _, to := range g.Hosts {
			if from == to {
				continue
			}
			out, err := from.Exec(ctx, "/usr/local/bin/tcpprobe", "dial", net.JoinHostPort(to.Address().String(), strconv.Itoa(probePort)))
			require.NoError(t, err, "%s → %s", from.Name(), to.Name())
			f := strings.Fields(out)
			require.Len(t, f, 2, "%q", out)
			assert.Equal(t, to.Name(), f[0], "%s → %s answered by", from.Name(), to.Name())
			peer, _, err := net.SplitHostPort(f[1])
			require.NoError(t, err)
			assert.Equal(t, from.Address().String(), peer, "%s → %s: source address seen", from.Name(), to.Name())
		}
	}

	a := g.Hosts[0]
	// Inside: lo and host0 only (tunnel devices a kernel module adds to
	// every namespace aside), none of this machine's interfaces.
	out, err := a.Exec(ctx, "ip", "-o", "link")
	require.NoError(t, err)
	var inside []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			inside = append(inside, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	assert.Contains(t, inside, "host0")
	for _, l := range machineLinks {
		if l.Name() != "lo" {
			assert.NotContains(t, inside, l.Name(), "this machine's interface is not in the host")
		}
	}
	out, err = a.Exec(ctx, "ip", "-4", "route")
	require.NoError(t, err)
	assert.Equal(t, []string{"default via " + gw.String() + " dev host0", g.Bridge.Subnet().String() + " dev host0"},
		routeHeads(out), "the host's routes: the bridge and the default via the gateway")

	// This machine, through the gateway: a listener on the gateway address
	// answers and sees the host's address; one on this machine's loopback
	// is out of reach (127.0.0.1 is the host's own); this machine's other
	// addresses are routed via the gateway.
	gwLn := listen(t, net.JoinHostPort(gw.String(), "0"))
	out, err = a.Exec(ctx, "/usr/local/bin/tcpprobe", "dial", gwLn.Addr().String())
	require.NoError(t, err, "host → this machine's gateway address")
	assert.Equal(t, "machine "+a.Address().String(), strings.Fields(out)[0]+" "+hostOf(strings.Fields(out)[1]))
	loLn := listen(t, "127.0.0.1:0")
	_, err = a.Exec(ctx, "/usr/local/bin/tcpprobe", "dial", loLn.Addr().String(), "2s")
	assert.Error(t, err, "this machine's loopback listener is not reachable from the host")
	for _, addr := range machineAddrs(t, ctx, g.Bridge.Name()) {
		out, err := a.Exec(ctx, "ip", "-4", "route", "get", addr)
		require.NoError(t, err)
		assert.Contains(t, out, "via "+gw.String()+" dev host0", "route to this machine's %s", addr)
	}

	// Beyond this machine: its own default gateway answers it (a
	// connection or a refusal) but not the host (this machine does not
	// route the bridge anywhere else).
	if up := machineGateway(t, ctx); up != "" {
		target := net.JoinHostPort(up, "80")
		c, err := net.DialTimeout("tcp", target, 3*time.Second)
		if err == nil {
			_ = c.Close()
		}
		if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
			_, herr := a.Exec(ctx, "/usr/local/bin/tcpprobe", "dial", target, "3s")
			require.Error(t, herr, "the host reaches %s beyond this machine", target)
			assert.NotContains(t, herr.Error(), "connection refused", "no answer from beyond this machine reaches the host")
			t.Logf("beyond: this machine reaches %s (%v); the host does not: %v", target, err, lastLine(herr.Error()))
		} else {
			t.Logf("beyond: %s does not answer this machine either (%v); not checked", target, err)
		}
	}

	// Memory per idle host.
	var total uint64
	for _, h := range g.Hosts {
		m, err := h.Memory()
		require.NoError(t, err)
		require.NotZero(t, m.PSS)
		total += m.Cgroup
		t.Logf("memory %s (idle): %s", h.Name(), m)
	}
	t.Logf("memory of the 3 idle hosts (cgroups): %.1f MiB", float64(total)/(1<<20))
}

// TestGroupAfterKilledTest kills a test process that has booted a host on
// a bridge (SIGKILL, no teardown) and starts a group: the group removes
// what the killed one left (its bridge, nftables table, root and cgroups),
// and once it is closed this machine is as before the killed test.
func TestGroupAfterKilledTest(t *testing.T) {
	if os.Getenv("TPCTL_MULTIHOST_KILLED") == "1" {
		ctx := context.Background()
		g, err := New(ctx, Options{Hosts: 1, Prefix: "tpctl-kill"})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("booted", g.Hosts[0].Root())
		time.Sleep(10 * time.Minute)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	needRootfs(t)
	lock, err := cluster.AcquireHostLock(ctx, cluster.DefaultLockPath)
	require.NoError(t, err)
	before, err := cluster.TakeHostSnapshot(ctx)
	require.NoError(t, err)
	routes, err := hosttest.MachineRoutes(ctx)
	require.NoError(t, err)
	require.NoError(t, lock.Release())

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGroupAfterKilledTest$", "-test.v")
	cmd.Env = append(os.Environ(), "TPCTL_MULTIHOST_KILLED=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	var root string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if r, ok := strings.CutPrefix(sc.Text(), "booted "); ok {
			root = r
			break
		}
		t.Log("killed test:", sc.Text())
	}
	require.NotEmpty(t, root, "the test to kill did not boot its host")
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(discard{}) }()
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	assert.DirExists(t, root, "left by the killed test")
	_, err = os.Stat("/sys/class/net/" + hosttest.DefaultBridgeName)
	assert.NoError(t, err, "the killed test's bridge is left")

	g, err := New(ctx, Options{Hosts: 1, Logf: t.Logf})
	require.NoError(t, err, "a group after a killed one")
	assert.NoDirExists(t, filepath.Dir(root), "the killed test's host directory")
	assert.NotEmpty(t, g.Hosts[0].Address())
	require.NoError(t, g.Close())

	lock, err = cluster.AcquireHostLock(ctx, cluster.DefaultLockPath)
	require.NoError(t, err)
	defer func() { assert.NoError(t, lock.Release()) }()
	after, err := cluster.TakeHostSnapshot(ctx)
	require.NoError(t, err)
	assert.Empty(t, before.Diff(after), "this machine after a killed test and the next group")
	routesAfter, err := hosttest.MachineRoutes(ctx)
	require.NoError(t, err)
	assert.Empty(t, hosttest.DiffLines("route", routes, routesAfter))
	ents, _ := os.ReadDir(cluster.DefaultLockPath + ".hosttest")
	assert.Empty(t, ents, "no host state left")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// listen accepts on addr (this machine) and answers like tcpprobe, with
// "machine" for the host name.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintf(c, "machine %s\n", c.RemoteAddr())
			_ = c.Close()
		}
	}()
	return ln
}

func hostOf(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// routeHeads keeps each route's destination, "via" and "dev".
func routeHeads(out string) []string {
	var heads []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		var keep []string
		for i := 0; i < len(f); i++ {
			switch {
			case i == 0:
				keep = append(keep, f[i])
			case (f[i] == "via" || f[i] == "dev") && i+1 < len(f):
				keep = append(keep, f[i], f[i+1])
				i++
			}
		}
		heads = append(heads, strings.Join(keep, " "))
	}
	return heads
}

// machineAddrs are this machine's IPv4 addresses but loopback's and the
// bridge's.
func machineAddrs(t *testing.T, ctx context.Context, bridge string) []string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "addr").Output()
	require.NoError(t, err)
	var addrs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] != "lo" && f[1] != bridge {
			addrs = append(addrs, strings.SplitN(f[3], "/", 2)[0])
		}
	}
	return addrs
}

// machineGateway is this machine's IPv4 default gateway, or "".
func machineGateway(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "default").Output()
	require.NoError(t, err)
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" {
			return f[i+1]
		}
	}
	return ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
