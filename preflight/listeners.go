package preflight

import (
	"sort"
	"strconv"
	"strings"

	"github.com/tpctl/tpctl/preflight/ports"
)

// HostListener is a port a program other than K3s serves on this host's
// own addresses (loopback aside). With K3s's service load balancer a
// LoadBalancer frontend on that number would take its traffic, so the
// installer tells the operator never to give it out.
type HostListener struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	// Program is the owner's command name ("" when it cannot be seen).
	Program string `json:"program,omitempty"`
}

// String is "tcp/22".
func (l HostListener) String() string { return l.Protocol + "/" + strconv.Itoa(l.Port) }

// defaultEphemeralFrom is Linux's default start of the ephemeral port range.
const defaultEphemeralFrom = 32768

// ephemeralFrom is the first port of the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a listener there got its number at random
// and gets another after a restart, so it is no fixed service address.
func (h *Host) ephemeralFrom() int {
	s, err := h.readTrim("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeralFrom
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return defaultEphemeralFrom
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 || n > 65535 {
		return defaultEphemeralFrom
	}
	return n
}

// foreignListeners returns the TCP listeners and bound UDP sockets of tbl on
// non-loopback addresses that are not K3s's own (ours), on no port of rows
// (K3s's table: either K3s holds it, or the port check fails anyway), and
// below from (the ephemeral range), one entry per port, sorted.
func foreignListeners(tbl *ports.SocketTable, rows []ports.Row, ours func(ports.Socket) bool, from int) []HostListener {
	covered := map[string]bool{}
	for _, r := range rows {
		if r.Port <= 0 || r.Last()-r.Port > 65535 {
			continue
		}
		for n := r.Port; n <= r.Last(); n++ {
			covered[string(r.Protocol)+"/"+strconv.Itoa(n)] = true
		}
	}
	seen := map[string]bool{}
	var out []HostListener
	for _, proto := range []ports.Protocol{ports.TCP, ports.UDP} {
		if from <= 1 {
			continue
		}
		for _, s := range tbl.Conflicts(ports.Row{Port: 1, EndPort: from - 1, Protocol: proto, Binding: ports.BindHost}) {
			l := HostListener{Protocol: string(proto), Port: s.Port, Program: s.Process}
			key := l.String()
			if s.Addr.Unmap().IsLoopback() || covered[key] || seen[key] || ours(s) {
				continue
			}
			seen[key] = true
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol < out[j].Protocol
		}
		return out[i].Port < out[j].Port
	})
	return out
}
