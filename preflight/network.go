package preflight

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// route is one kernel route.
type route struct {
	Iface  string
	Prefix netip.Prefix
}

// parseIPv4Routes reads /proc/net/route: destination and mask are
// little-endian hex words.
func parseIPv4Routes(b []byte) ([]route, error) {
	var out []route
	sc := bufio.NewScanner(bytes.NewReader(b))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("route %q: bad destination or mask", sc.Text())
		}
		var d, m [4]byte
		binary.LittleEndian.PutUint32(d[:], uint32(dst))
		binary.LittleEndian.PutUint32(m[:], uint32(mask))
		bits := 0
		for _, x := range m {
			for ; x&0x80 != 0; x <<= 1 {
				bits++
			}
		}
		out = append(out, route{Iface: f[0], Prefix: netip.PrefixFrom(netip.AddrFrom4(d), bits).Masked()})
	}
	return out, sc.Err()
}

// parseIPv6Routes reads /proc/net/ipv6_route: destination (32 hex digits),
// prefix length (hex), …, interface name last.
func parseIPv6Routes(b []byte) ([]route, error) {
	var out []route
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		raw, err := hex.DecodeString(f[0])
		if err != nil || len(raw) != 16 {
			return nil, fmt.Errorf("ipv6 route %q: bad destination", sc.Text())
		}
		bits, err := strconv.ParseUint(f[1], 16, 8)
		if err != nil || bits > 128 {
			return nil, fmt.Errorf("ipv6 route %q: bad prefix length", sc.Text())
		}
		out = append(out, route{Iface: f[len(f)-1], Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte(raw)), int(bits)).Masked()})
	}
	return out, sc.Err()
}

// k3sInterfaces are created by K3s's CNIs; their routes and addresses are
// K3s's own when tpctl installed it.
func k3sInterface(name string) bool {
	return name == "cni0" || name == "kube-ipvs0" || strings.HasPrefix(name, "flannel") || strings.HasPrefix(name, "cilium_")
}

// cidrCheck is "CIDR-<which>": the pod or service range must not overlap an
// address or a route of the host, or pods could not reach that network.
func cidrCheck(which, flag string, cidrs, avoid []netip.Prefix) Check {
	name := "CIDR-" + which
	return checkFunc{name: name, run: func(_ context.Context, h *Host, r Result) Result {
		ii, _ := h.installInfo()
		own := func(iface string) bool { return ii != nil && ii.ByTpctl && k3sInterface(iface) }
		var clashes, unread []string
		taken := append([]netip.Prefix(nil), avoid...)
		if addrs, err := h.InterfaceAddrs(); err != nil {
			unread = append(unread, err.Error())
		} else {
			for _, a := range addrs {
				if !own(a.Iface) {
					taken = append(taken, a.Prefix.Masked())
				}
				for _, c := range cidrs {
					if !own(a.Iface) && c.Contains(a.Prefix.Addr()) {
						clashes = append(clashes, fmt.Sprintf("address %s on %s", a.Prefix, a.Iface))
					}
				}
			}
		}
		for _, src := range []struct {
			path  string
			parse func([]byte) ([]route, error)
		}{{"/proc/net/route", parseIPv4Routes}, {"/proc/net/ipv6_route", parseIPv6Routes}} {
			b, err := h.ReadFile(src.path)
			if err != nil {
				if !isNotExist(err) || src.path == "/proc/net/route" {
					unread = append(unread, err.Error())
				}
				continue
			}
			routes, err := src.parse(b)
			if err != nil {
				unread = append(unread, fmt.Sprintf("parse %s: %s", src.path, err))
				continue
			}
			for _, rt := range routes {
				if rt.Prefix.Bits() == 0 || rt.Iface == "lo" || own(rt.Iface) || !rt.Prefix.Addr().IsGlobalUnicast() {
					continue
				}
				taken = append(taken, rt.Prefix)
				for _, c := range cidrs {
					if c.Overlaps(rt.Prefix) {
						clashes = append(clashes, fmt.Sprintf("route %s via %s", rt.Prefix, rt.Iface))
					}
				}
			}
		}
		list := joinPrefixes(cidrs)
		if len(clashes) > 0 {
			sort.Strings(clashes)
			return r.fail(fmt.Sprintf("%s range %s overlaps %s", which, list, strings.Join(dedupe(clashes), ", ")),
				fmt.Sprintf("choose a free range with %s (e.g. %s) or move the host network", flag, suggestRange(taken)))
		}
		if len(unread) > 0 {
			return r.warn(fmt.Sprintf("%s range %s: cannot read all host addresses and routes: %s", which, list, strings.Join(unread, "; ")),
				"compare the range by hand with ip addr and ip route")
		}
		return r.pass(fmt.Sprintf("%s range %s does not overlap host addresses or routes", which, list))
	}}
}

// suggestRange returns the first 10.x.0.0/16 (x from 52) that overlaps
// nothing taken.
func suggestRange(taken []netip.Prefix) string {
	for x := 52; x < 256; x++ {
		c := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(x), 0, 0}), 16)
		free := true
		for _, t := range taken {
			if t.Overlaps(c) {
				free = false
				break
			}
		}
		if free {
			return c.String()
		}
	}
	return "a private /16 not used on this network"
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// parseCIDRs parses a comma-separated list (dual stack: "v4,v6").
func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("parse CIDR %q: %w", part, err)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("CIDR %q has host bits set (did you mean %s?)", part, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

// resolvNameservers returns the nameserver addresses of a resolv.conf.
func resolvNameservers(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// onlyLoopback reports whether every nameserver is a loopback address.
func onlyLoopback(ns []string) bool {
	if len(ns) == 0 {
		return false
	}
	for _, n := range ns {
		a, err := netip.ParseAddr(strings.SplitN(n, "%", 2)[0])
		if err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

// SystemdResolvConf is the upstream resolver list of systemd-resolved.
const SystemdResolvConf = "/run/systemd/resolve/resolv.conf"

// k3sNameserver matches a nameserver line as K3s reads it.
var k3sNameserver = regexp.MustCompile(`^nameserver\s+([^\s]*)`)

// resolvConfProblem says why K3s would not give pods a resolv.conf, or ""
// when it would. K3s (pkg/agent/config, isValidResolvConf) takes a file
// only when it names at least one nameserver and every nameserver is a
// global unicast address; otherwise it tries the next file, and after
// /etc/resolv.conf and systemd-resolved's it writes its own with
// nameserver 8.8.8.8.
func resolvConfProblem(b []byte, err error) string {
	if err != nil {
		if isNotExist(err) {
			return "missing"
		}
		return "unreadable: " + err.Error()
	}
	var found bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := k3sNameserver.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ip := net.ParseIP(m[1])
		switch {
		case ip == nil:
			return fmt.Sprintf("nameserver %q is not an IP address", m[1])
		case ip.IsLoopback():
			return fmt.Sprintf("loopback nameserver %s", m[1])
		case !ip.IsGlobalUnicast():
			return fmt.Sprintf("nameserver %s is not a global unicast address", m[1])
		}
		found = true
	}
	if sc.Err() != nil {
		return "unreadable: " + sc.Err().Error()
	}
	if !found {
		return "no nameserver"
	}
	return ""
}

// upstreamResolvConf returns the resolv.conf the kubelet should give pods
// when K3s cannot use /etc/resolv.conf but systemd-resolved's list is
// usable (K3s makes the same choice), or "".
func (h *Host) upstreamResolvConf() string {
	if b, err := h.ReadFile("/etc/resolv.conf"); resolvConfProblem(b, err) == "" {
		return ""
	}
	if up, err := h.ReadFile(SystemdResolvConf); resolvConfProblem(up, err) == "" {
		return SystemdResolvConf
	}
	return ""
}

// resolvConfCheck is "ResolvConf". CoreDNS forwards to the resolvers of
// the node's resolv.conf as K3s picks it (see resolvConfProblem); a
// loopback resolver seen from a pod is the pod itself.
func resolvConfCheck() Check {
	return checkFunc{name: "ResolvConf", run: func(_ context.Context, h *Host, r Result) Result {
		b, err := h.ReadFile("/etc/resolv.conf")
		etc := resolvConfProblem(b, err)
		if etc == "" {
			return r.pass("nameservers " + strings.Join(resolvNameservers(b), ", "))
		}
		ns := resolvNameservers(b)
		if up := h.upstreamResolvConf(); up != "" {
			return r.warn(fmt.Sprintf("/etc/resolv.conf is not usable by K3s (%s): CoreDNS would forward to itself and loop; "+
				"K3s and tpctl install (--kubelet-arg=resolv-conf=%s) give pods systemd-resolved's list instead", etc, up),
				"nothing to do for tpctl install; for another setup point the kubelet's resolv-conf at "+up)
		}
		up, uerr := h.ReadFile(SystemdResolvConf)
		msg := fmt.Sprintf("neither /etc/resolv.conf (%s) nor %s (%s) is usable: K3s gives pods nameserver 8.8.8.8, "+
			"which a network without Internet DNS cannot reach, and pods resolve no local names", etc, SystemdResolvConf, resolvConfProblem(up, uerr))
		if onlyLoopback(ns) {
			return r.warn(msg, "write a resolv.conf with the real upstream servers (e.g. /etc/k3s-resolv.conf) and pass it to the kubelet: --kubelet-arg=resolv-conf=/etc/k3s-resolv.conf")
		}
		return r.warn(msg, "list the network's DNS servers in /etc/resolv.conf, or write them to a file and pass --kubelet-arg=resolv-conf=FILE")
	}}
}

// defaultRoutes lists the interfaces of the default routes as K3s's node
// address choice reads them (k8s.io/apimachinery's ChooseHostInterface):
// IPv4 routes to 0.0.0.0, IPv6 routes to :: with a gateway.
func defaultRoutes(v4, v6 []byte) []string {
	var out []string
	for _, line := range strings.Split(string(v4), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] != "Iface" && f[1] == "00000000" {
			out = append(out, f[0]+" (IPv4)")
		}
	}
	zero := strings.Repeat("0", 32)
	for _, line := range strings.Split(string(v6), "\n") {
		f := strings.Fields(line)
		if len(f) >= 10 && f[0] == zero && f[4] != zero {
			out = append(out, f[9]+" (IPv6)")
		}
	}
	return out
}

// defaultRouteCheck is "DefaultRoute": without nodeIP, K3s takes the node
// address from the interface of a default route and does not start
// without one.
func defaultRouteCheck(nodeIP string) Check {
	return checkFunc{name: "DefaultRoute", run: func(_ context.Context, h *Host, r Result) Result {
		if nodeIP != "" {
			return r.pass(fmt.Sprintf("node address %s is set (nodeIP): K3s needs no default route to choose one", nodeIP))
		}
		v4, err := h.ReadFile("/proc/net/route")
		if err != nil {
			return r.warn(fmt.Sprintf("cannot read the routes: %s", err), "check ip route shows a default route, or set nodeIP (--node-ip)")
		}
		v6, err := h.ReadFile("/proc/net/ipv6_route")
		if err != nil && !isNotExist(err) {
			return r.warn(fmt.Sprintf("cannot read the IPv6 routes: %s", err), "check ip -6 route shows a default route, or set nodeIP (--node-ip)")
		}
		if via := defaultRoutes(v4, v6); len(via) > 0 {
			return r.pass("default route via " + strings.Join(dedupe(via), ", ") + "; K3s takes the node address from it")
		}
		return r.fail("no default route (/proc/net/route, /proc/net/ipv6_route) and no nodeIP: K3s chooses the node address from the default route's interface and would not start",
			"set the node address: tpctl install --node-ip ADDRESS (nodeIP), or add a default route (ip route add default via GATEWAY)")
	}}
}

// K3sConfigDropIns is the directory whose *.yaml files K3s merges over
// /etc/rancher/k3s/config.yaml.
const K3sConfigDropIns = "/etc/rancher/k3s/config.yaml.d"

// dropInCheck is "K3sConfigDropIns".
func dropInCheck() Check {
	return checkFunc{name: "K3sConfigDropIns", run: func(_ context.Context, h *Host, r Result) Result {
		ents, err := os.ReadDir(h.Path(K3sConfigDropIns))
		if isNotExist(err) {
			return r.pass("no " + K3sConfigDropIns)
		}
		what := "it is empty now; files added later"
		if err != nil {
			what = "it cannot be read (" + err.Error() + "); its files"
		} else if len(ents) > 0 {
			names := make([]string, 0, len(ents))
			for _, e := range ents {
				names = append(names, e.Name())
			}
			what = "it holds " + strings.Join(names, ", ") + "; these"
		}
		return r.warn(fmt.Sprintf("%s exists: K3s merges the *.yaml files there over the config.yaml tpctl writes, so %s override tpctl's keys", K3sConfigDropIns, what),
			"move those settings into the tpctl install configuration and remove "+K3sConfigDropIns+", or make sure its files set none of tpctl's keys")
	}}
}

const (
	nlmsgError = 2
	nlmsgDone  = 3
	nlmsgHdr   = 16
)

// nftFamilies names the nftables address families.
var nftFamilies = map[byte]string{1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}

// parseNFTableDump reads one datagram of NFT_MSG_NEWTABLE answers to a
// table dump; done is true once the NLMSG_DONE message was seen.
func parseNFTableDump(b []byte) (tables []string, done bool, err error) {
	for len(b) >= nlmsgHdr {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		typ := binary.NativeEndian.Uint16(b[4:])
		if l < nlmsgHdr || l > len(b) {
			return nil, false, fmt.Errorf("netlink message length %d out of range", l)
		}
		payload := b[nlmsgHdr:l]
		switch typ {
		case nlmsgDone:
			return tables, true, nil
		case nlmsgError:
			if len(payload) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(payload)); code != 0 {
					return nil, false, fmt.Errorf("nftables dump: errno %d", -code)
				}
			}
		default:
			if len(payload) >= 4 {
				fam := nftFamilies[payload[0]]
				if fam == "" {
					fam = fmt.Sprintf("family%d", payload[0])
				}
				if name := nlaString(payload[4:], 1); name != "" {
					tables = append(tables, fam+" "+name)
				}
			}
		}
		adv := (l + 3) &^ 3
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return tables, false, nil
}

// nlaString returns the string attribute of type want from a list of
// netlink attributes.
func nlaString(b []byte, want uint16) string {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		if l < 4 || l > len(b) {
			return ""
		}
		if typ == want {
			return strings.TrimRight(string(b[4:l]), "\x00")
		}
		adv := (l + 3) &^ 3
		if adv > len(b) {
			return ""
		}
		b = b[adv:]
	}
	return ""
}
