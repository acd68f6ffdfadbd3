package pipeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// MinPort and MaxPort bound every port number, backend and frontend alike.
const (
	MinPort = 1
	MaxPort = 65535
)

// Port is a protocol and a port number, such as TCP 5170.
type Port struct {
	Protocol v1alpha1.Protocol
	Number   int32
}

// TCP returns the TCP port n.
func TCP(n int32) Port { return Port{Protocol: v1alpha1.ProtocolTCP, Number: n} }

// UDP returns the UDP port n.
func UDP(n int32) Port { return Port{Protocol: v1alpha1.ProtocolUDP, Number: n} }

// String renders the port as the CLI writes it: "tcp/5170".
func (p Port) String() string {
	return strings.ToLower(string(p.Protocol)) + "/" + strconv.Itoa(int(p.Number))
}

// Less orders ports by protocol (TCP before UDP), then number.
func (p Port) Less(q Port) bool {
	if p.Protocol != q.Protocol {
		return p.Protocol < q.Protocol
	}
	return p.Number < q.Number
}

// Hold says who holds a reserved port, for the messages that explain a
// skipped number, and since when.
type Hold struct {
	// By names the holder: "the K3s node", "Traefik (packaged component)",
	// "LoadBalancer Service kube-system/traefik". Empty when unknown.
	By string
	// Since is when the holder took the port, compared with a claim's age at
	// one-second resolution. The zero time means always: older than every
	// claim (the node's own ports). A holder newer than a claim's kept
	// frontend does not take it away: older components never move.
	Since time.Time
}

// PortSet is a set of ports, each with who holds it. The zero value is not
// usable; use NewPortSet.
type PortSet map[Port]Hold

// NewPortSet returns a set holding ports, held since always by nobody named.
func NewPortSet(ports ...Port) PortSet {
	s := make(PortSet, len(ports))
	for _, p := range ports {
		s[p] = Hold{}
	}
	return s
}

// Add puts p in the set (a port already in it keeps its holder).
func (s PortSet) Add(p Port) {
	if _, ok := s[p]; !ok {
		s[p] = Hold{}
	}
}

// Hold puts p in the set held by h. When p is in the set already, the older
// holder stays (the zero time is the oldest); on a tie the first named one.
func (s PortSet) Hold(p Port, h Hold) {
	old, ok := s[p]
	switch {
	case !ok || h.olderThan(old):
		s[p] = h
	case old.By == "" && !old.olderThan(h):
		old.By = h.By
		s[p] = old
	}
}

// olderThan compares ages at one-second resolution; the zero time is the
// oldest.
func (h Hold) olderThan(o Hold) bool {
	if h.Since.IsZero() || o.Since.IsZero() {
		return h.Since.IsZero() && !o.Since.IsZero()
	}
	return h.Since.Unix() < o.Since.Unix()
}

// newerThan reports whether the holder took the port after t (at
// one-second resolution); a holder since always is never newer.
func (h Hold) newerThan(t time.Time) bool {
	return !h.Since.IsZero() && h.Since.Unix() > t.Unix()
}

// Merge adds every port of o (see Hold) and returns s.
func (s PortSet) Merge(o PortSet) PortSet {
	for p, h := range o {
		s.Hold(p, h)
	}
	return s
}

// Has reports whether p is in the set.
func (s PortSet) Has(p Port) bool { _, ok := s[p]; return ok }

// Sorted returns the ports in protocol, then number order.
func (s PortSet) Sorted() []Port {
	out := make([]Port, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// Key returns a spec port's (protocol, backend) key: the identity of a
// pipeline port, unique within a pipeline. An empty protocol is TCP.
func Key(p v1alpha1.PipelinePort) Port {
	proto := p.Protocol
	if proto == "" {
		proto = v1alpha1.ProtocolTCP
	}
	return Port{Protocol: proto, Number: p.Port}
}

// DuplicateBackend returns the indexes of the first entry whose key (see
// Key) an earlier entry already has, and of that earlier entry; ok is false
// when every key is unique.
func DuplicateBackend(ports []v1alpha1.PipelinePort) (first, second int, ok bool) {
	seen := make(map[Port]int, len(ports))
	for i, p := range ports {
		k := Key(p)
		if j, dup := seen[k]; dup {
			return j, i, true
		}
		seen[k] = i
	}
	return 0, 0, false
}

// DefaultPortName is the Service port name of an unnamed pipeline port:
// "tcp-5170". It is a valid IANA service name for every port, and the CRD
// reserves names of this form for the port they describe.
func DefaultPortName(p Port) string {
	return strings.ToLower(string(p.Protocol)) + "-" + strconv.Itoa(int(p.Number))
}

// ParseProtocol accepts "tcp" or "udp" in any letter case.
func ParseProtocol(s string) (v1alpha1.Protocol, error) {
	switch strings.ToUpper(s) {
	case "TCP":
		return v1alpha1.ProtocolTCP, nil
	case "UDP":
		return v1alpha1.ProtocolUDP, nil
	}
	return "", fmt.Errorf("protocol %q: want tcp or udp", s)
}

// ParsePortNumber parses a decimal port number in 1–65535.
func ParsePortNumber(s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < MinPort || n > MaxPort {
		return 0, fmt.Errorf("port %q: want a number from %d to %d", s, MinPort, MaxPort)
	}
	return int32(n), nil
}

// ParsePortFlag parses a port as given on the command line:
//
//	tcp/5170        TCP port 5170
//	5170/udp        UDP port 5170 (either order)
//	5170            TCP port 5170
//	syslog=udp/5140 UDP port 5140 named "syslog"
//
// Protocol names are case-insensitive. The name, if any, is checked like the
// CRD checks it.
func ParsePortFlag(s string) (v1alpha1.PipelinePort, error) {
	var out v1alpha1.PipelinePort
	spec := s
	if name, rest, ok := strings.Cut(s, "="); ok {
		if err := ValidatePortName(name); err != nil {
			return out, fmt.Errorf("port %q: %w", s, err)
		}
		out.Name, spec = name, rest
	}
	proto, num := "tcp", spec
	if a, b, ok := strings.Cut(spec, "/"); ok {
		if _, err := ParseProtocol(a); err == nil {
			proto, num = a, b
		} else {
			proto, num = b, a
		}
	}
	p, err := ParseProtocol(proto)
	if err != nil {
		return v1alpha1.PipelinePort{}, fmt.Errorf("port %q: %w", s, err)
	}
	if strings.TrimSpace(num) != num {
		return v1alpha1.PipelinePort{}, fmt.Errorf("port %q: unexpected space", s)
	}
	n, err := ParsePortNumber(num)
	if err != nil {
		return v1alpha1.PipelinePort{}, fmt.Errorf("port %q: %w", s, err)
	}
	out.Protocol, out.Port = p, n
	if out.Name != "" {
		if err := checkReservedName(out.Name, Port{Protocol: p, Number: n}); err != nil {
			return v1alpha1.PipelinePort{}, fmt.Errorf("port %q: %w", s, err)
		}
	}
	return out, nil
}

// FormatPortFlag renders p the way ParsePortFlag reads it.
func FormatPortFlag(p v1alpha1.PipelinePort) string {
	s := Key(p).String()
	if p.Name != "" {
		s = p.Name + "=" + s
	}
	return s
}

// HostListener is a port a program on the node listens on: with K3s's
// servicelb a LoadBalancer frontend on that number would take its traffic.
type HostListener struct {
	Port    Port
	Program string
}

// Bounds of a host-listener list (see FormatHostListeners).
const (
	MaxHostListeners    = 64
	maxHostProgramChars = 32
)

// FormatHostListeners renders listeners as "tcp/22=sshd,udp/5353=avahi-daemon"
// for the pipeline annotation v1alpha1.AnnotationHostListeners: sorted, one
// entry per port, at most MaxHostListeners (the lowest ports), program names
// cut to letters, digits, '.', '_' and '-' ("unknown" when none is left).
func FormatHostListeners(ls []HostListener) string {
	byPort := map[Port]string{}
	for _, l := range ls {
		if !l.Port.Protocol.Valid() || l.Port.Number < MinPort || l.Port.Number > MaxPort {
			continue
		}
		if _, dup := byPort[l.Port]; !dup {
			byPort[l.Port] = cleanProgram(l.Program)
		}
	}
	set := make(PortSet, len(byPort))
	for p := range byPort {
		set.Add(p)
	}
	ports := set.Sorted()
	if len(ports) > MaxHostListeners {
		ports = ports[:MaxHostListeners]
	}
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = p.String() + "=" + byPort[p]
	}
	return strings.Join(parts, ",")
}

func cleanProgram(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxHostProgramChars {
			break
		}
		if r < 0x80 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// ParseHostListeners reads what FormatHostListeners writes. It refuses more
// than MaxHostListeners entries and any entry it cannot read.
func ParseHostListeners(s string) ([]HostListener, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxHostListeners*(len("tcp/65535=")+maxHostProgramChars+1) {
		return nil, fmt.Errorf("host listeners: %d bytes is too long", len(s))
	}
	entries := strings.Split(s, ",")
	if len(entries) > MaxHostListeners {
		return nil, fmt.Errorf("host listeners: %d entries, at most %d", len(entries), MaxHostListeners)
	}
	out := make([]HostListener, 0, len(entries))
	for _, e := range entries {
		spec, prog, ok := strings.Cut(e, "=")
		if !ok || prog == "" || cleanProgram(prog) != prog {
			return nil, fmt.Errorf("host listener %q: want PROTOCOL/PORT=PROGRAM", e)
		}
		proto, num, ok := strings.Cut(spec, "/")
		if !ok {
			return nil, fmt.Errorf("host listener %q: want PROTOCOL/PORT=PROGRAM", e)
		}
		p, err := ParseProtocol(proto)
		if err != nil {
			return nil, fmt.Errorf("host listener %q: %w", e, err)
		}
		n, err := ParsePortNumber(num)
		if err != nil {
			return nil, fmt.Errorf("host listener %q: %w", e, err)
		}
		out = append(out, HostListener{Port: Port{Protocol: p, Number: n}, Program: prog})
	}
	return out, nil
}
