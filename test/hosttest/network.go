package hosttest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tpctl/tpctl/test/cluster"
)

// DefaultSubnet is the subnet of a test bridge unless one is asked for:
// outside K3s's defaults (10.42.0.0/16 pods, 10.43.0.0/16 services), the
// other CIDRs the tests use, Docker's default pools (172.17.0.0/12,
// 192.168.0.0/16) and this machine's documentation range.
func DefaultSubnet() netip.Prefix { return netip.MustParsePrefix("10.213.7.0/24") }

// DefaultBridgeName is the test bridge's interface name unless one is asked
// for.
const DefaultBridgeName = "tpctl-br0"

// bridgeTablePrefix names the nftables table (family inet) that keeps a
// bridge's hosts from being routed through this machine.
const bridgeTablePrefix = "tpctl_hostnet_"

// Network puts a Host in its own network namespace, joined to a test bridge
// by a veth pair (systemd-nspawn --network-bridge): inside it is host0 with
// Address and a default route via the bridge's gateway, configured by the
// host's own systemd-networkd from /etc/systemd/network. The host sees
// none of this machine's interfaces; ip forwarding, firewall rules and
// interfaces made inside it (K3s's cni0, flannel, kube-proxy's rules) stay
// in its namespace.
type Network struct {
	// Bridge is the bridge to join (shared by several hosts); nil: the host
	// makes its own bridge (BridgeName, Subnet) and removes it on Close.
	Bridge *Bridge
	// Subnet of the host's own bridge (default DefaultSubnet()); unused
	// with Bridge.
	Subnet netip.Prefix
	// BridgeName of the host's own bridge (default DefaultBridgeName);
	// unused with Bridge.
	BridgeName string
	// Address is the host's address in the bridge's subnet (default: the
	// bridge's next free address).
	Address netip.Addr
}

// BridgeOptions describe a test bridge.
type BridgeOptions struct {
	Name   string       // interface name (default DefaultBridgeName)
	Subnet netip.Prefix // default DefaultSubnet(); the first address is the gateway
	// LockPath is the host lock the caller holds (default
	// cluster.DefaultLockPath): the bridge's state is kept beside it, so
	// that the next holder removes a bridge whose test was killed.
	LockPath string
}

// Bridge is a Linux bridge on this machine with the first address of its
// subnet (the hosts' gateway). Its hosts reach each other (bridged) and
// this machine's addresses through the gateway; an nftables table drops
// whatever this machine would route between the bridge and any other
// interface, so they reach nothing beyond it, whatever ip_forward says.
// The caller holds the host lock while a Bridge exists.
type Bridge struct {
	name    string
	subnet  netip.Prefix
	gateway netip.Addr
	table   string
	state   string // state file

	mu   sync.Mutex
	next netip.Addr
	used map[netip.Addr]bool

	closeOnce sync.Once
	closeErr  error
}

// NewBridge makes the bridge. It refuses a subnet that overlaps an address
// or a route this machine has, and a name already taken.
func NewBridge(ctx context.Context, opts BridgeOptions) (_ *Bridge, err error) {
	if opts.Name == "" {
		opts.Name = DefaultBridgeName
	}
	if !opts.Subnet.IsValid() {
		opts.Subnet = DefaultSubnet()
	}
	if err := validBridge(opts.Name, opts.Subnet); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, errors.New("a test bridge needs nft (its hosts are kept from being routed beyond this machine)")
	}
	if hasLink(opts.Name) {
		return nil, fmt.Errorf("an interface named %s exists already: refusing to reuse it as the test bridge", opts.Name)
	}
	if err := subnetFree(ctx, opts.Subnet); err != nil {
		return nil, err
	}
	p := opts.Subnet.Masked()
	gw := p.Addr().Next()
	b := &Bridge{
		name: opts.Name, subnet: p, gateway: gw, next: gw.Next(),
		table: bridgeTablePrefix + strings.ReplaceAll(opts.Name, "-", "_"),
		used:  map[netip.Addr]bool{},
	}
	// The state goes first: a test killed half-way leaves what the next
	// holder of the lock removes.
	b.state, err = saveStale(lockPathOr(opts.LockPath), "bridge-"+opts.Name, staleEntry{Bridge: opts.Name, NFTTable: b.table})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	steps := [][]string{
		{"ip", "link", "add", "name", b.name, "type", "bridge"},
		// No IPv6 link-local address or router solicitations from the bridge.
		{"sysctl", "-q", "-w", "net.ipv6.conf." + b.name + ".disable_ipv6=1"},
		{"ip", "addr", "add", netip.PrefixFrom(gw, p.Bits()).String(), "dev", b.name},
		{"ip", "link", "set", b.name, "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, nil, s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("make bridge %s: %w", b.name, err)
		}
	}
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(bridgeRuleset(b.table, b.name))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nft table %s: %w: %s", b.table, err, tail(string(out), 1000))
	}
	return b, nil
}

// bridgeRuleset keeps a bridge's traffic on it: frames bridged between its
// ports (seen here through br_netfilter as bridge → bridge) and traffic to
// and from this machine itself pass; anything routed between the bridge and
// another interface is dropped.
func bridgeRuleset(table, bridge string) string {
	return fmt.Sprintf(`table inet %[1]s {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		iifname %[2]q oifname != %[2]q drop
		oifname %[2]q iifname != %[2]q drop
	}
}
`, table, bridge)
}

// validBridge checks the bridge's name (an interface name) and subnet (IPv4,
// room for a gateway and hosts).
func validBridge(name string, subnet netip.Prefix) error {
	if len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("bridge name %q is not a valid interface name (at most 15 characters, no '/', ':' or spaces)", name)
	}
	if !subnet.Addr().Is4() || subnet.Bits() > 29 || subnet.Bits() < 8 {
		return fmt.Errorf("bridge subnet %s: want an IPv4 prefix between /8 and /29", subnet)
	}
	return nil
}

// subnetFree refuses a subnet that overlaps an address or route of this
// machine (in any routing table).
func subnetFree(ctx context.Context, subnet netip.Prefix) error {
	out, err := run(ctx, nil, "ip", "-o", "-4", "addr")
	if err != nil {
		return err
	}
	routes, err := run(ctx, nil, "ip", "-o", "-4", "route", "show", "table", "all")
	if err != nil {
		return err
	}
	if c := overlapping(subnet, out, routes); c != "" {
		return fmt.Errorf("test subnet %s overlaps this machine's %s: choose another subnet", subnet, c)
	}
	return nil
}

// overlapping returns the first address (`ip -o -4 addr` lines) or route
// (`ip -o -4 route show table all` lines, default routes aside) that
// overlaps subnet, or "".
func overlapping(subnet netip.Prefix, addrs, routes string) string {
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			if p, err := netip.ParsePrefix(f[3]); err == nil && p.Overlaps(subnet) {
				return "address " + f[3] + " on " + f[1]
			}
		}
	}
	for _, line := range strings.Split(routes, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		switch dst {
		case "local", "broadcast", "unicast", "multicast", "anycast", "blackhole", "unreachable", "prohibit", "throw", "nat":
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil && p.Overlaps(subnet) {
			return "route " + strings.TrimSpace(line)
		}
	}
	return ""
}

// Name is the bridge's interface name.
func (b *Bridge) Name() string { return b.name }

// Subnet is the bridge's subnet.
func (b *Bridge) Subnet() netip.Prefix { return b.subnet }

// Gateway is the bridge's own address, the hosts' default route.
func (b *Bridge) Gateway() netip.Addr { return b.gateway }

// Table is the nftables table (family inet) of the bridge's forward rules.
func (b *Bridge) Table() string { return b.table }

// Allocate reserves addr for a host, or the next free address when addr is
// the zero value.
func (b *Bridge) Allocate(addr netip.Addr) (netip.Addr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	last := lastAddr(b.subnet)
	if addr.IsValid() {
		if !b.subnet.Contains(addr) || addr == b.gateway || addr == b.subnet.Addr() || addr == last {
			return netip.Addr{}, fmt.Errorf("address %s is not a host address of %s other than the gateway %s", addr, b.subnet, b.gateway)
		}
		if b.used[addr] {
			return netip.Addr{}, fmt.Errorf("address %s is taken on %s", addr, b.name)
		}
		b.used[addr] = true
		return addr, nil
	}
	for a := b.next; b.subnet.Contains(a) && a != last; a = a.Next() {
		if !b.used[a] {
			b.used[a] = true
			b.next = a.Next()
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left on %s (%s)", b.name, b.subnet)
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Close removes the nftables table and the bridge (the hosts' veth pairs
// go with their network namespaces), then the state.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := removeBridge(ctx, b.name, b.table)
		if err == nil && b.state != "" {
			err = removeStale(b.state)
		}
		b.closeErr = err
	})
	return b.closeErr
}

// removeBridge deletes the table and the bridge when they exist.
func removeBridge(ctx context.Context, name, table string) error {
	var errs []error
	if table != "" {
		if _, err := run(ctx, nil, "nft", "list", "table", "inet", table); err == nil {
			if _, err := run(ctx, nil, "nft", "delete", "table", "inet", table); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if name != "" && hasLink(name) {
		if _, err := run(ctx, nil, "ip", "link", "del", name); err != nil && hasLink(name) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func lockPathOr(p string) string {
	if p == "" {
		return cluster.DefaultLockPath
	}
	return p
}

// networkdFiles are the files that give host0 its address and default route
// through the host's own systemd-networkd (enabled, as on a Debian host
// configured with it). networkd keeps its hands off routes and rules it did
// not make (K3s's CNI and kube-proxy add them), as K3s's documentation asks
// of hosts running it.
func networkdFiles(addr netip.Prefix, gateway netip.Addr) map[string]string {
	return map[string]string{
		"etc/systemd/network/10-host0.network": fmt.Sprintf(`[Match]
Name=host0

[Network]
Address=%s
Gateway=%s
LinkLocalAddressing=no
IPv6AcceptRA=no
`, addr, gateway),
		"etc/systemd/networkd.conf.d/50-foreign.conf": "[Network]\nManageForeignRoutes=no\nManageForeignRoutingPolicyRules=no\n",
	}
}

// networkdLinks enable systemd-networkd (`systemctl enable` makes the same
// links).
func networkdLinks() map[string]string {
	return map[string]string{
		"etc/systemd/system/multi-user.target.wants/systemd-networkd.service":                 "/lib/systemd/system/systemd-networkd.service",
		"etc/systemd/system/sockets.target.wants/systemd-networkd.socket":                     "/lib/systemd/system/systemd-networkd.socket",
		"etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service": "/lib/systemd/system/systemd-networkd-wait-online.service",
		"etc/systemd/system/dbus-org.freedesktop.network1.service":                            "/lib/systemd/system/systemd-networkd.service",
	}
}

// configureNetwork writes the network files into an unpacked root.
func configureNetwork(root string, addr netip.Prefix, gateway netip.Addr) error {
	for p, content := range networkdFiles(addr, gateway) {
		if err := writeRootFile(root, p, content); err != nil {
			return err
		}
	}
	for p, target := range networkdLinks() {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("make dir for %s: %w", p, err)
		}
		if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", p, err)
		}
		if err := os.Symlink(target, full); err != nil {
			return fmt.Errorf("link %s: %w", p, err)
		}
	}
	return nil
}

// saveState records the host's directory, cgroups and, when it shares the
// machine's network, the network as it was before boot, for RecoverStale.
func (h *Host) saveState() error {
	e := staleEntry{Dir: h.dir, Cgroups: h.cgroups}
	if h.opts.Network == nil && h.before.Sysctls != nil {
		before := h.before
		e.Network = &before
	}
	p, err := saveStale(lockPathOr(h.opts.LockPath), "host-"+filepath.Base(h.dir), e)
	if err != nil {
		return err
	}
	h.stateFile = p
	return nil
}

// waitNetwork waits until the host's networkd has given host0 its address
// and default route, and the gateway answers (ARP resolved).
func (h *Host) waitNetwork(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	want := h.addr.String()
	var last string
	for {
		addrs, err1 := h.Exec(ctx, "ip", "-o", "-4", "addr", "show", "dev", "host0")
		route, err2 := h.Exec(ctx, "ip", "-4", "route", "show", "default")
		if strings.Contains(addrs, " "+want+" ") && strings.Contains(route, "via "+h.bridge.Gateway().String()+" dev host0") {
			return nil
		}
		last = fmt.Sprintf("addresses %q, default route %q (%v)", strings.TrimSpace(addrs), strings.TrimSpace(route), errors.Join(err1, err2))
		select {
		case <-ctx.Done():
			return fmt.Errorf("host0 of %s did not get %s and a default route via %s: %s; networkd: %s", h.opts.Name, want,
				h.bridge.Gateway(), last, h.Journal(context.Background(), "systemd-networkd.service", 30))
		case <-h.done:
			return fmt.Errorf("systemd-nspawn exited: %w", h.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// MachineRoutes lists this machine's routes (every table, both families)
// and policy rules, for checking that a test bridge left none behind.
func MachineRoutes(ctx context.Context) ([]string, error) {
	var out []string
	for _, args := range [][]string{
		{"-o", "-4", "route", "show", "table", "all"}, {"-o", "-6", "route", "show", "table", "all"},
		{"-4", "rule"}, {"-6", "rule"},
	} {
		text, err := run(ctx, nil, "ip", args...)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(text, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, args[1]+" "+dropExpires(line))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// dropExpires removes the "expires Ns" of a route learnt from router
// advertisements, which counts down by itself.
func dropExpires(line string) string {
	f := strings.Fields(line)
	out := f[:0]
	for i := 0; i < len(f); i++ {
		if f[i] == "expires" && i+1 < len(f) {
			i++
			continue
		}
		out = append(out, f[i])
	}
	return strings.Join(out, " ")
}

// DiffLines lists what differs between two sets of lines ("+ what: line"
// appeared, "- what: line" disappeared).
func DiffLines(what string, before, after []string) []string {
	var d []string
	for _, l := range (Snapshot{Links: before}).Diff(Snapshot{Links: after}) {
		sign, rest, _ := strings.Cut(l, " interface: ")
		d = append(d, sign+" "+what+": "+rest)
	}
	return d
}

// findVeth records the name of the host's veth on this machine (the peer
// of host0), so that Close can wait for it to go with the namespace.
func (h *Host) findVeth(ctx context.Context) error {
	out, err := h.Exec(ctx, "cat", "/sys/class/net/host0/iflink")
	if err != nil {
		return err
	}
	idx := strings.TrimSpace(out)
	ents, _ := os.ReadDir(filepath.Join("/sys/class/net", h.bridge.Name(), "brif"))
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("/sys/class/net", e.Name(), "ifindex"))
		if err == nil && strings.TrimSpace(string(data)) == idx {
			h.veth = e.Name()
			return nil
		}
	}
	return fmt.Errorf("no port of %s has ifindex %s (host0's peer)", h.bridge.Name(), idx)
}

// Veth is the host's end of its veth pair on this machine ("" without
// Network).
func (h *Host) Veth() string { return h.veth }

// waitVethGone waits (bounded) until the kernel has removed the host's
// veth after its network namespace went away.
func (h *Host) waitVethGone() error {
	if h.veth == "" {
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for hasLink(h.veth) {
		if time.Now().After(deadline) {
			return fmt.Errorf("veth %s of %s still there 20s after the host stopped", h.veth, h.opts.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
