// Package ports holds the port catalog (one embedded YAML file per documented
// table) and the probe that reads the kernel's socket tables.
package ports

// Protocol is "tcp" or "udp".
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Binding says where a row's listener binds.
type Binding string

const (
	// BindHost: all interfaces; any listener on the port, on any address, clashes.
	BindHost Binding = "host"
	// BindLocalhost: loopback only; a listener on loopback or a wildcard clashes.
	BindLocalhost Binding = "localhost"
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
	// key (e.g. "cni=cilium", "datastore=k8s-dqlite", "metrics") that the
	// selection must enable for the row to apply.
	Condition string `json:"condition,omitempty"`
	Purpose   string `json:"purpose"`
	Source    string `json:"source"`
}

// Table is one documented port table.
type Table struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Source      string `json:"source"`
	Rows        []Row  `json:"rows"`
}
