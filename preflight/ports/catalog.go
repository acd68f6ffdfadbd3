// Package ports holds the port catalog (one embedded YAML file per documented
// table) and the probe that reads the kernel's socket tables.
//
// The catalog is data: every table under tables/ is parsed strictly (Parse),
// selected by table name and condition (Select), and compared against a
// snapshot of the host's listening sockets (ReadSocketTable, Conflicts).
package ports

import (
	"fmt"
	"strconv"
	"strings"
)

// Protocol is "tcp" or "udp".
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Valid reports whether p is a protocol the catalog knows.
func (p Protocol) Valid() bool { return p == TCP || p == UDP }

// Binding says where a row's listener binds.
type Binding string

const (
	// BindHost: all interfaces; any listener on the port, on any address, clashes.
	BindHost Binding = "host"
	// BindLocalhost: loopback only; a listener on loopback or a wildcard clashes.
	BindLocalhost Binding = "localhost"
)

// Valid reports whether b is a binding the catalog knows.
func (b Binding) Valid() bool { return b == BindHost || b == BindLocalhost }

// MinPort and MaxPort bound every port number in the catalog.
const (
	MinPort = 1
	MaxPort = 65535
)

// Row is one line of a port table.
type Row struct {
	// Port is the single port, or the first of a range.
	Port int `json:"port"`
	// EndPort is the last port of a range; 0 for a single port.
	EndPort   int      `json:"endPort,omitempty"`
	Protocol  Protocol `json:"protocol"`
	Component string   `json:"component"`
	Binding   Binding  `json:"binding"`
	// Condition is empty when the row always applies, otherwise a condition
	// key (e.g. "cni=cilium", "datastore=k8s-dqlite", "es-metrics") that the
	// selection must enable for the row to apply. See README.md for the
	// vocabulary.
	Condition string `json:"condition,omitempty"`
	Purpose   string `json:"purpose"`
	Source    string `json:"source"`
	// Table names the table the row came from. Parse fills it in; it is not
	// a field of the YAML schema (so it is not encoded either, and an encoded
	// table reads back unchanged). Rows merged by Select carry the names of
	// every contributing table, joined with ", ".
	Table string `json:"-"`
}

// Last returns the last port the row covers (Port for a single port).
func (r Row) Last() int {
	if r.EndPort == 0 {
		return r.Port
	}
	return r.EndPort
}

// Covers reports whether port lies within the row's port or range.
func (r Row) Covers(port int) bool { return port >= r.Port && port <= r.Last() }

// PortString renders the port or range: "6443", "51820-51821".
func (r Row) PortString() string {
	if r.EndPort == 0 {
		return strconv.Itoa(r.Port)
	}
	return strconv.Itoa(r.Port) + "-" + strconv.Itoa(r.EndPort)
}

// Key identifies the row's port(s) and protocol: "6443-TCP",
// "51820-51821-UDP". Preflight results are named "Port-" + Key, which is
// also their ignore key.
func (r Row) Key() string {
	return r.PortString() + "-" + strings.ToUpper(string(r.Protocol))
}

// Spec renders the row in the form ParsePortSpec reads: "6443/tcp".
func (r Row) Spec() string { return FormatPortSpec(r.Protocol, r.Port, r.EndPort) }

// Table is one documented port table.
type Table struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Source      string `json:"source"`
	Rows        []Row  `json:"rows"`
}

// validateRow checks one row's values and returns one error message per
// problem, each prefixed with the field it is about.
func validateRow(r Row) []fieldError {
	var errs []fieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field: field, msg: fmt.Sprintf(format, args...)})
	}
	if r.Port < MinPort || r.Port > MaxPort {
		add("port", "%d is out of range %d-%d", r.Port, MinPort, MaxPort)
	}
	if r.EndPort != 0 {
		switch {
		case r.EndPort < MinPort || r.EndPort > MaxPort:
			add("endPort", "%d is out of range %d-%d", r.EndPort, MinPort, MaxPort)
		case r.EndPort < r.Port:
			add("endPort", "%d is below port %d (a range runs from port up to endPort)", r.EndPort, r.Port)
		}
	}
	if !r.Protocol.Valid() {
		add("protocol", "unknown protocol %q (want tcp or udp)", r.Protocol)
	}
	if !r.Binding.Valid() {
		add("binding", "unknown binding %q (want host or localhost)", r.Binding)
	}
	if msg := checkLine(r.Component); msg != "" {
		add("component", "%s", msg)
	}
	if msg := checkLine(r.Purpose); msg != "" {
		add("purpose", "%s", msg)
	}
	if r.Condition != "" && !validCondition(r.Condition) {
		add("condition", "%q is not a condition key (want lower-case words joined by '-', optionally key=value, e.g. \"es-metrics\" or \"cni=cilium\")", r.Condition)
	}
	return errs
}

type fieldError struct{ field, msg string }

// checkLine returns a problem description when s is not a non-empty single line.
func checkLine(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "must not be empty"
	case strings.ContainsAny(s, "\r\n"):
		return "must be a single line"
	}
	return ""
}

// validName reports whether s is a table name: lower-case letters, digits and
// '-', starting with a letter or digit.
func validName(s string) bool { return isWord(s, false) }

// validCondition reports whether s is "word" or "word=word", where a word is
// lower-case letters, digits, '-' and (after '=') '.'.
func validCondition(s string) bool {
	key, value, hasValue := strings.Cut(s, "=")
	if !isWord(key, false) {
		return false
	}
	return !hasValue || isWord(value, true)
}

func isWord(s string, allowDot bool) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || (allowDot && c == '.')) && i > 0:
		default:
			return false
		}
	}
	return true
}
