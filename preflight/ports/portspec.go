package ports

import (
	"fmt"
	"strconv"
	"strings"
)

// ParsePortSpec reads a port or range with an optional protocol, as users type
// it on the command line: "6443/tcp", "tcp/6443", "51820-51821/udp", "5170"
// (TCP when no protocol is given). Protocol names are case-insensitive. It
// returns the protocol, the first port and the last port of a range (0 for a
// single port; a range whose ends are equal reads as a single port).
func ParsePortSpec(s string) (Protocol, int, int, error) {
	spec := strings.TrimSpace(s)
	if spec == "" {
		return "", 0, 0, fmt.Errorf("port spec %q: empty (want PORT[/tcp|udp], e.g. 6443/tcp)", s)
	}
	proto := TCP
	ports := spec
	if a, b, ok := strings.Cut(spec, "/"); ok {
		switch {
		case isProtocolName(a):
			proto, ports = Protocol(strings.ToLower(a)), b
		case isProtocolName(b):
			proto, ports = Protocol(strings.ToLower(b)), a
		default:
			return "", 0, 0, fmt.Errorf("port spec %q: no protocol tcp or udp on either side of '/'", s)
		}
	}
	first, last, isRange := strings.Cut(ports, "-")
	start, err := parsePortNumber(first)
	if err != nil {
		return "", 0, 0, fmt.Errorf("port spec %q: %w", s, err)
	}
	if !isRange {
		return proto, start, 0, nil
	}
	end, err := parsePortNumber(last)
	if err != nil {
		return "", 0, 0, fmt.Errorf("port spec %q: range end: %w", s, err)
	}
	switch {
	case end < start:
		return "", 0, 0, fmt.Errorf("port spec %q: range ends at %d, below its start %d", s, end, start)
	case end == start:
		return proto, start, 0, nil
	}
	return proto, start, end, nil
}

// FormatPortSpec renders a port or range the way ParsePortSpec reads it:
// "6443/tcp", "51820-51821/udp".
func FormatPortSpec(p Protocol, port, end int) string {
	if end == 0 || end == port {
		return strconv.Itoa(port) + "/" + string(p)
	}
	return strconv.Itoa(port) + "-" + strconv.Itoa(end) + "/" + string(p)
}

func isProtocolName(s string) bool {
	return strings.EqualFold(s, string(TCP)) || strings.EqualFold(s, string(UDP))
}

// parsePortNumber reads decimal digits only (no sign, no spaces) in 1-65535.
func parsePortNumber(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a port number (want digits)", s)
		}
	}
	trimmed := strings.TrimLeft(s, "0")
	if len(trimmed) > 5 {
		return 0, fmt.Errorf("%s is out of range %d-%d", s, MinPort, MaxPort)
	}
	n, _ := strconv.Atoi("0" + trimmed) // digits only, at most 5 of them: cannot fail
	if n < MinPort || n > MaxPort {
		return 0, fmt.Errorf("%s is out of range %d-%d", s, MinPort, MaxPort)
	}
	return n, nil
}
