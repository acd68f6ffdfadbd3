package preflight

import (
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight/ports"
)

var (
	defCluster = []netip.Prefix{netip.MustParsePrefix(DefaultClusterCIDR)}
	defService = []netip.Prefix{netip.MustParsePrefix(DefaultServiceCIDR)}
)

const tpctlUnit = `# Written by tpctl.
[Unit]
Description=Lightweight Kubernetes
X-Tpctl-Managed=true

[Service]
Type=notify
ExecStart=/usr/local/bin/k3s server --data-dir /var/lib/rancher/k3s
`

func TestCIDRClashes(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	r := runOne(t, cidrCheck("cluster", "--cluster-cidr", defCluster, defService), h)
	assert.Equal(t, Pass, r.Severity, r.Message)
	assert.Equal(t, "CIDR-cluster", r.Name)

	// An interface address inside the range.
	h = fakeHost(t, "v2", nil)
	h.InterfaceAddrs = func() ([]IfaceAddr, error) {
		return []IfaceAddr{{Iface: "ens3", Prefix: netip.MustParsePrefix("10.42.7.5/16")}}, nil
	}
	r = runOne(t, cidrCheck("cluster", "--cluster-cidr", defCluster, defService), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "address 10.42.7.5/16 on ens3")
	assert.Contains(t, r.Remedy, "--cluster-cidr")
	assert.Contains(t, r.Remedy, "10.52.0.0/16")

	// A route into the service range (a VPN: 10.0.0.0/8 via tun0).
	routes := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"tun0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"
	h = fakeHost(t, "v2", map[string]string{"proc/net/route": routes})
	r = runOne(t, cidrCheck("service", "--service-cidr", defService, defCluster), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "route 10.0.0.0/8 via tun0")
	assert.Contains(t, r.Remedy, "--service-cidr")
	assert.Contains(t, r.Remedy, "a private /16", "every 10.x/16 is taken by the /8 route")

	// A default route alone never clashes; tpctl's own K3s's cni0 does not either.
	cni := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"cni0\t00002A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	h = fakeHost(t, "v2", map[string]string{"proc/net/route": cni, "etc/systemd/system/k3s.service": tpctlUnit})
	assert.Equal(t, Pass, runOne(t, cidrCheck("cluster", "--cluster-cidr", defCluster, defService), h).Severity)
	h = fakeHost(t, "v2", map[string]string{"proc/net/route": cni})
	assert.Equal(t, Fail, runOne(t, cidrCheck("cluster", "--cluster-cidr", defCluster, defService), h).Severity,
		"a cni0 route of a foreign K3s clashes")

	// IPv6 ranges are compared with IPv6 routes.
	v6 := []netip.Prefix{netip.MustParsePrefix("fd00:42::/56")}
	h = fakeHost(t, "v2", map[string]string{"proc/net/ipv6_route": "fd000042000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1\n"})
	r = runOne(t, cidrCheck("cluster", "--cluster-cidr", v6, defService), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "route fd00:42::/64 via eth1")

	h = fakeHost(t, "v2", nil)
	h.InterfaceAddrs = func() ([]IfaceAddr, error) { return nil, errBoom }
	assert.Equal(t, Warn, runOne(t, cidrCheck("cluster", "--cluster-cidr", defCluster, defService), h).Severity)
}

func TestParseRoutes(t *testing.T) {
	rs, err := parseIPv4Routes([]byte("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"))
	require.NoError(t, err)
	assert.Equal(t, []route{{Iface: "eth0", Prefix: netip.MustParsePrefix("192.168.1.0/24")}}, rs)
	_, err = parseIPv4Routes([]byte("h\neth0 zz 0 0 0 0 0 00FFFFFF\n"))
	assert.Error(t, err)
	_, err = parseIPv6Routes([]byte("abc 40 0 0 0 0 0 0 0 eth0\n"))
	assert.Error(t, err)
}

func TestResolvConf(t *testing.T) {
	r := runOne(t, resolvConfCheck(), fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity)
	assert.Equal(t, "nameservers 192.168.1.1, 2001:db8::53", r.Message)

	loop := map[string]string{"etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0 trust-ad\n"}
	h := fakeHost(t, "v2", loop)
	r = runOne(t, resolvConfCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "loopback")
	assert.Contains(t, r.Remedy, "resolv-conf=")
	assert.Empty(t, GatherFacts(h).KubeletArgs, "no upstream file: no kubelet argument")

	loop[SystemdResolvConf[1:]] = "nameserver 192.168.1.1\n"
	h = fakeHost(t, "v2", loop)
	r = runOne(t, resolvConfCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "--kubelet-arg=resolv-conf=/run/systemd/resolve/resolv.conf")
	assert.Contains(t, GatherFacts(h).KubeletArgs, "resolv-conf=/run/systemd/resolve/resolv.conf")

	r = runOne(t, resolvConfCheck(), fakeHost(t, "v2", map[string]string{"etc/resolv.conf": "search x\n"}))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "no nameserver")

	assert.Equal(t, Warn, runOne(t, resolvConfCheck(), fakeHost(t, "v2", map[string]string{"etc/resolv.conf": del})).Severity)
	assert.True(t, onlyLoopback([]string{"127.0.0.1", "::1"}))
	assert.False(t, onlyLoopback([]string{"127.0.0.1", "10.0.0.1"}))
	assert.False(t, onlyLoopback(nil))
}

var fwRows = []ports.Row{
	{Port: 6443, Protocol: ports.TCP, Binding: ports.BindHost, Component: "api"},
	{Port: 8472, Protocol: ports.UDP, Binding: ports.BindHost, Component: "flannel"},
	{Port: 51820, EndPort: 51821, Protocol: ports.UDP, Binding: ports.BindHost, Component: "wg"},
	{Port: 10248, Protocol: ports.TCP, Binding: ports.BindLocalhost, Component: "kubelet"},
}

func TestFirewall(t *testing.T) {
	cidrs := append(append([]netip.Prefix{}, defCluster...), defService...)
	fw := firewallCheck(fwRows, cidrs)
	r := runOne(t, fw, fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity)

	h := fakeHost(t, "v2", map[string]string{"etc/ufw/ufw.conf": "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n"})
	r = runOne(t, fw, h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "ufw")
	assert.Contains(t, r.Message, "6443/tcp, 8472/udp, 51820-51821/udp")
	assert.NotContains(t, r.Message, "10248", "loopback ports need no firewall rule")
	assert.Contains(t, r.Remedy, "ufw allow 6443/tcp")
	assert.Contains(t, r.Remedy, "ufw allow 51820:51821/udp")
	assert.Contains(t, r.Remedy, "ufw allow from 10.42.0.0/16")

	assert.Equal(t, Pass, runOne(t, fw, fakeHost(t, "v2", map[string]string{"etc/ufw/ufw.conf": "ENABLED=no\n"})).Severity)

	h = fakeHost(t, "v2", map[string]string{"proc/900/comm": "firewalld\n"})
	r = runOne(t, fw, h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "firewalld (pid 900)")
	assert.Contains(t, r.Remedy, "firewall-cmd --permanent --add-port=6443/tcp")
	assert.Contains(t, r.Remedy, "--zone=trusted --add-source=10.43.0.0/16")

	h = fakeHost(t, "v2", nil)
	h.NFTables = func() ([]string, error) { return []string{"inet filter", "ip kube-proxy"}, nil }
	r = runOne(t, fw, h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "tables inet filter")
	assert.NotContains(t, r.Message, "kube-proxy")

	// iptables tables of tpctl's own K3s are not a firewall.
	h = fakeHost(t, "v2", map[string]string{"etc/systemd/system/k3s.service": tpctlUnit})
	h.NFTables = func() ([]string, error) { return []string{"ip filter", "ip nat", "ip6 filter"}, nil }
	assert.Equal(t, Pass, runOne(t, fw, h).Severity)

	h = fakeHost(t, "v2", map[string]string{"proc/net/ip_tables_names": "filter\n"})
	r = runOne(t, fw, h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "iptables-legacy filter")

	h = fakeHost(t, "v2", nil)
	h.NFTables = func() ([]string, error) { return nil, errBoom }
	r = runOne(t, fw, h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "cannot be read")
}

// nlmsg builds one netlink message.
func nlmsg(typ uint16, payload []byte) []byte {
	b := make([]byte, nlmsgHdr, nlmsgHdr+len(payload)+3)
	binary.NativeEndian.PutUint32(b[0:], uint32(nlmsgHdr+len(payload)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nftTable builds an NFT_MSG_NEWTABLE payload: nfgenmsg + NFTA_TABLE_NAME.
func nftTable(family byte, name string) []byte {
	p := []byte{family, 0, 0, 0}
	attr := make([]byte, 4, 4+len(name)+4)
	attr = append(attr, name...)
	attr = append(attr, 0)
	binary.NativeEndian.PutUint16(attr[0:], uint16(len(attr)))
	binary.NativeEndian.PutUint16(attr[2:], 1)
	for len(attr)%4 != 0 {
		attr = append(attr, 0)
	}
	return append(p, attr...)
}

func TestParseNFTableDump(t *testing.T) {
	buf := append(nlmsg(10<<8, nftTable(1, "filter")), nlmsg(10<<8, nftTable(2, "kube-proxy"))...)
	tables, done, err := parseNFTableDump(buf)
	require.NoError(t, err)
	assert.False(t, done)
	assert.Equal(t, []string{"inet filter", "ip kube-proxy"}, tables)

	tables, done, err = parseNFTableDump(nlmsg(nlmsgDone, []byte{0, 0, 0, 0}))
	require.NoError(t, err)
	assert.True(t, done)
	assert.Empty(t, tables)

	errPayload := make([]byte, 4)
	binary.NativeEndian.PutUint32(errPayload, uint32(0xffffffff)) // -1: EPERM
	_, _, err = parseNFTableDump(nlmsg(nlmsgError, errPayload))
	assert.ErrorContains(t, err, "errno 1")
}

func TestListNFTablesOnThisHost(t *testing.T) {
	h := NewHost("/")
	if h.UID() != 0 {
		t.Skip("needs root: the nftables dump needs CAP_NET_ADMIN")
	}
	tables, err := listNFTables()
	require.NoError(t, err, "a read-only table dump must work as root")
	for _, tb := range tables {
		assert.Regexp(t, `^\S+ \S+$`, tb)
	}
	synced, err := clockSynced()
	require.NoError(t, err)
	_ = synced // either answer is a fact of this host
}

func TestExistingInstall(t *testing.T) {
	r := runOne(t, existingInstallCheck(), fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity)
	assert.Nil(t, GatherFacts(fakeHost(t, "v2", nil)).K3s)

	foreign := map[string]string{"usr/local/bin/k3s": "ELF", "etc/rancher/k3s/config.yaml": "", "proc/555/comm": "k3s-server\n"}
	h := fakeHost(t, "v2", foreign)
	r = runOne(t, existingInstallCheck(), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "not installed by tpctl")
	assert.Contains(t, r.Message, "/usr/local/bin/k3s")
	assert.Contains(t, r.Message, "process k3s-server (pid 555)")
	assert.Equal(t, &K3sFact{Binary: "/usr/local/bin/k3s"}, GatherFacts(h).K3s)

	foreign["etc/systemd/system/k3s.service"] = tpctlUnit
	foreign["proc/556/comm"] = "containerd\n"
	h = fakeHost(t, "v2", foreign)
	r = runOne(t, existingInstallCheck(), h)
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "already installed by tpctl")
	assert.NotContains(t, r.Message, "containerd", "K3s's own containerd is not another runtime")
	assert.Equal(t, &K3sFact{Binary: "/usr/local/bin/k3s", InstalledByTpctl: true}, GatherFacts(h).K3s)

	h = fakeHost(t, "v2", map[string]string{"usr/bin/kubelet": "ELF", "proc/600/comm": "kubelet\n"})
	r = runOne(t, existingInstallCheck(), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "another Kubernetes")

	h = fakeHost(t, "v2", map[string]string{"run/containerd/containerd.sock": "", "proc/601/comm": "containerd\n"})
	r = runOne(t, existingInstallCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "/run/containerd/containerd.sock, process containerd (pid 601)")
}

func TestParseTpctlUnit(t *testing.T) {
	marked, bin := parseTpctlUnit([]byte(tpctlUnit))
	assert.True(t, marked)
	assert.Equal(t, "/usr/local/bin/k3s", bin)

	marked, _ = parseTpctlUnit([]byte("[Service]\nX-Tpctl-Managed=true\nExecStart=/usr/local/bin/k3s server\n"))
	assert.False(t, marked, "the marker counts only in [Unit]")
	marked, bin = parseTpctlUnit([]byte("[Unit]\nX-Tpctl-Managed=false\n[Service]\nExecStart=-/opt/k3s/k3s server\n"))
	assert.False(t, marked)
	assert.Equal(t, "/opt/k3s/k3s", bin)
}

// TestListNFTablesInNetns checks the netlink table dump against the kernel:
// the test re-runs itself inside a network namespace of its own (unshare -n),
// creates two tables there with nft, and lists them.
func TestListNFTablesInNetns(t *testing.T) {
	if os.Getenv("TPCTL_NFT_CHILD") == "1" {
		for _, fam := range []string{"inet", "ip6"} {
			out, err := exec.Command("nft", "add", "table", fam, "tpctl-probe").CombinedOutput()
			require.NoError(t, err, "%s", out)
		}
		tables, err := listNFTables()
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"inet tpctl-probe", "ip6 tpctl-probe"}, tables)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft to create tables (apt-get install nftables)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run", "^TestListNFTablesInNetns$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TPCTL_NFT_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "--- PASS: TestListNFTablesInNetns")
}

func TestResolvConfAsK3sReadsIt(t *testing.T) {
	// One loopback nameserver among others: K3s rejects the whole file.
	mixed := map[string]string{"etc/resolv.conf": "nameserver 10.0.0.1\nnameserver 127.0.0.53\n"}
	r := runOne(t, resolvConfCheck(), fakeHost(t, "v2", mixed))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "8.8.8.8")
	assert.Contains(t, r.Message, "loopback nameserver 127.0.0.53")

	linkLocal := map[string]string{"etc/resolv.conf": "nameserver fe80::1%eth0\n"}
	r = runOne(t, resolvConfCheck(), fakeHost(t, "v2", linkLocal))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "8.8.8.8")

	// No /etc/resolv.conf, but systemd-resolved's list is usable: K3s takes it.
	h := fakeHost(t, "v2", map[string]string{"etc/resolv.conf": del, SystemdResolvConf[1:]: "nameserver 192.168.1.1\n"})
	r = runOne(t, resolvConfCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.NotContains(t, r.Message, "8.8.8.8")
	assert.Contains(t, r.Message, SystemdResolvConf)
	assert.Contains(t, GatherFacts(h).KubeletArgs, "resolv-conf="+SystemdResolvConf)

	assert.Equal(t, "", resolvConfProblem([]byte("search x\nnameserver 10.1.1.1\n nameserver 127.0.0.1\n"), nil), "K3s reads only lines that start with nameserver")
	assert.Equal(t, "no nameserver", resolvConfProblem([]byte("search x\n"), nil))
}

func TestDefaultRoute(t *testing.T) {
	r := runOne(t, defaultRouteCheck(""), fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "eth0")

	noDefault := map[string]string{
		"proc/net/route": "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
			"eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n",
		// The kernel's unreachable default on lo has no gateway: not a default route for K3s.
		"proc/net/ipv6_route": "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n",
	}
	r = runOne(t, defaultRouteCheck(""), fakeHost(t, "v2", noDefault))
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "no default route")
	assert.Contains(t, r.Remedy, "--node-ip")

	r = runOne(t, defaultRouteCheck("192.168.1.10"), fakeHost(t, "v2", noDefault))
	assert.Equal(t, Pass, r.Severity)

	noDefault["proc/net/ipv6_route"] = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n"
	r = runOne(t, defaultRouteCheck(""), fakeHost(t, "v2", noDefault))
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "eth1 (IPv6)")

	checks, err := DefaultChecks(Options{NodeIP: "192.168.1.10"})
	require.NoError(t, err)
	var names []string
	for _, c := range checks {
		names = append(names, c.Name())
	}
	assert.Contains(t, names, "DefaultRoute")
	assert.Contains(t, names, "K3sConfigDropIns")
}

func TestK3sConfigDropIns(t *testing.T) {
	r := runOne(t, dropInCheck(), fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity)

	r = runOne(t, dropInCheck(), fakeHost(t, "v2", map[string]string{K3sConfigDropIns[1:] + "/10-site.yaml": "node-ip: 10.0.0.9\n"}))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "10-site.yaml")
	assert.Contains(t, r.Message, "override tpctl's keys")
}

// A host `tpctl join` made an agent has the marked k3s-agent.service: its
// K3s is tpctl's own, not another install.
func TestExistingInstallJoinedAgent(t *testing.T) {
	agent := strings.Replace(tpctlUnit, "k3s server", "k3s agent", 1)
	h := fakeHost(t, "v2", map[string]string{"usr/local/bin/k3s": "ELF", "etc/rancher/k3s/config.yaml": "",
		"etc/systemd/system/k3s-agent.service": agent, "proc/555/comm": "k3s-agent\n"})
	r := runOne(t, existingInstallCheck(), h)
	assert.Equal(t, Pass, r.Severity, r.Message)
	assert.Contains(t, r.Message, "already installed by tpctl (/etc/systemd/system/k3s-agent.service")
	assert.Equal(t, &K3sFact{Binary: "/usr/local/bin/k3s", InstalledByTpctl: true}, GatherFacts(h).K3s)
}
