package preflight

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight/ports"
)

func sockets(ss ...ports.Socket) func() (*ports.SocketTable, error) {
	return func() (*ports.SocketTable, error) { return &ports.SocketTable{Sockets: ss}, nil }
}

func TestPortCheck(t *testing.T) {
	rows := []ports.Row{
		{Port: 6443, Protocol: ports.TCP, Binding: ports.BindHost, Component: "k3s server"},
		{Port: 8472, Protocol: ports.UDP, Binding: ports.BindHost, Component: "flannel"},
		{Port: 10248, Protocol: ports.TCP, Binding: ports.BindLocalhost, Component: "kubelet"},
		{Port: 2020, Protocol: ports.TCP, Binding: ports.BindHost, Component: "health-check pipeline"},
	}
	h := fakeHost(t, "v2", nil)
	h.WithSocketReader(sockets(
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("0.0.0.0"), Port: 6443, PID: 812, Process: "nginx", Exe: "/usr/sbin/nginx"},
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("0.0.0.0"), Port: 8472, PID: 9, Process: "tcpthing"},
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("192.168.1.10"), Port: 10248, PID: 10, Process: "other"},
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("::"), Port: 2020, PID: 4121, Process: "python3"},
	))
	m := byName(t, portCheck{rows: rows, dataDir: DefaultDataDir}.Run(context.Background(), h))
	require.Len(t, m, 4)

	r := m["Port-6443-TCP"]
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "6443/tcp is in use by nginx (pid 812) on 0.0.0.0")
	assert.NotEmpty(t, r.Remedy)
	assert.Equal(t, Pass, m["Port-8472-UDP"].Severity, "8472/tcp busy does not make 8472/udp busy")
	assert.Equal(t, Pass, m["Port-10248-TCP"].Severity, "a localhost row ignores a listener on another address")
	assert.Contains(t, m["Port-2020-TCP"].Message, "python3 (pid 4121) on [::]")
}

func TestPortCheckOwnK3s(t *testing.T) {
	rows := []ports.Row{
		{Port: 6443, Protocol: ports.TCP, Binding: ports.BindHost, Component: "k3s server"},
		{Port: 10010, Protocol: ports.TCP, Binding: ports.BindLocalhost, Component: "containerd"},
	}
	socks := sockets(
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("::"), Port: 6443, PID: 700, Process: "k3s-server", Exe: "/usr/local/bin/k3s"},
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("127.0.0.1"), Port: 10010, PID: 701, Process: "containerd",
			Exe: "/var/lib/rancher/k3s/data/abc123/bin/k3s"},
	)
	h := fakeHost(t, "v2", map[string]string{"etc/systemd/system/k3s.service": tpctlUnit, "usr/local/bin/k3s": "ELF"})
	h.WithSocketReader(socks)
	for _, r := range (portCheck{rows: rows, dataDir: DefaultDataDir}).Run(context.Background(), h) {
		assert.Equal(t, Pass, r.Severity, r.Name)
		assert.Contains(t, r.Message, "held by the K3s tpctl installed")
	}

	// The same sockets of a K3s tpctl did not install clash.
	h = fakeHost(t, "v2", map[string]string{"usr/local/bin/k3s": "ELF"})
	h.WithSocketReader(socks)
	for _, r := range (portCheck{rows: rows, dataDir: DefaultDataDir}).Run(context.Background(), h) {
		assert.Equal(t, Fail, r.Severity, r.Name)
	}
}

func TestPortCheckSocketsUnreadable(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	h.WithSocketReader(func() (*ports.SocketTable, error) { return nil, errBoom })
	r := runOne(t, portCheck{rows: fwRows}, h)
	assert.Equal(t, "Ports", r.Name)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "4 ports not checked")
}

func TestSocketsReadOnce(t *testing.T) {
	n := 0
	h := fakeHost(t, "v2", nil)
	h.WithSocketReader(func() (*ports.SocketTable, error) { n++; return &ports.SocketTable{}, nil })
	checks, err := DefaultChecks(Options{Tables: []string{ports.TableK3s, ports.TableKubernetesCilium}})
	require.NoError(t, err)
	Run(context.Background(), checks, h, nil)
	assert.Equal(t, 1, n, "the socket tables are read once per run, not once per row")
}

func TestPortsFileRowsAreChecked(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	h.WithSocketReader(sockets(ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("10.0.0.5"), Port: 9100, PID: 31, Process: "node_exporter"}))
	checks, err := DefaultChecks(Options{PortsFiles: []string{"testdata/site-ports.yaml"}})
	require.NoError(t, err)
	m := byName(t, Run(context.Background(), checks, h, nil).Results)
	assert.Equal(t, Fail, m["Port-9100-TCP"].Severity)
	assert.Contains(t, m["Port-9100-TCP"].Message, "9100/tcp is in use by node_exporter (pid 31) on 10.0.0.5")
	assert.Equal(t, Pass, m["Port-8125-UDP"].Severity)
	assert.Contains(t, m, "Port-6443-TCP", "the default tables stay selected")

	_, err = DefaultChecks(Options{PortsFiles: []string{"testdata/site-ports.yaml", "testdata/site-ports.yaml"}})
	assert.ErrorContains(t, err, "already taken")
}

// The port check also records what other programs serve on the host, for
// the operator never to give out: not K3s's own sockets, not a port of the
// K3s table, not loopback, not the ephemeral range.
func TestPortCheckRecordsForeignHostListeners(t *testing.T) {
	rows := []ports.Row{
		{Port: 6443, Protocol: ports.TCP, Binding: ports.BindHost, Component: "k3s server"},
		{Port: 8472, Protocol: ports.UDP, Binding: ports.BindHost, Component: "flannel"},
	}
	h := fakeHost(t, "v2", map[string]string{
		"etc/systemd/system/k3s.service":        tpctlUnit,
		"usr/local/bin/k3s":                     "ELF",
		"proc/sys/net/ipv4/ip_local_port_range": "40000\t60999\n",
	})
	any4 := netip.MustParseAddr("0.0.0.0")
	h.WithSocketReader(sockets(
		ports.Socket{Protocol: ports.TCP, Addr: any4, Port: 22, PID: 5, Process: "sshd", Exe: "/usr/sbin/sshd"},
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("::"), Port: 22, PID: 5, Process: "sshd", Exe: "/usr/sbin/sshd"},
		ports.Socket{Protocol: ports.UDP, Addr: netip.MustParseAddr("192.168.1.10"), Port: 53, PID: 6, Process: "dnsmasq", Exe: "/usr/sbin/dnsmasq"},
		ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("127.0.0.1"), Port: 631, PID: 7, Process: "cupsd"},
		ports.Socket{Protocol: ports.TCP, Addr: any4, Port: 6443, PID: 700, Process: "k3s-server", Exe: "/usr/local/bin/k3s"},
		ports.Socket{Protocol: ports.UDP, Addr: any4, Port: 8472},
		ports.Socket{Protocol: ports.TCP, Addr: any4, Port: 9999, PID: 701, Process: "containerd", Exe: "/var/lib/rancher/k3s/data/abc/bin/containerd"},
		ports.Socket{Protocol: ports.UDP, Addr: any4, Port: 2049},
		ports.Socket{Protocol: ports.UDP, Addr: any4, Port: 45000, PID: 8, Process: "rpc.statd"},
	))
	portCheck{rows: rows, dataDir: DefaultDataDir}.Run(context.Background(), h)
	f := GatherFacts(h)
	assert.Equal(t, []HostListener{
		{Protocol: "tcp", Port: 22, Program: "sshd"},
		{Protocol: "udp", Port: 53, Program: "dnsmasq"},
		{Protocol: "udp", Port: 2049},
	}, f.HostListeners)
}
