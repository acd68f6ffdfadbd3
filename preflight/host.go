package preflight

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/tpctl/tpctl/preflight/ports"
)

// Host is the seam through which every check reads the machine. Production
// code uses NewHost("/"); tests build one over a fake tree and stub the
// function fields.
type Host struct {
	// Root is the directory that stands for "/": /proc, /sys, /etc and /boot
	// are read below it.
	Root string
	// GOOS and GOARCH of the host.
	GOOS, GOARCH string
	// UID returns the effective user id.
	UID func() int
	// LookupEnv reads the environment (proxy variables).
	LookupEnv func(string) (string, bool)

	// readSockets reads the socket tables; Sockets() caches its result so
	// the kernel tables are read once per run, not once per row.
	readSockets func() (*ports.SocketTable, error)
	once        sync.Once
	sockets     *ports.SocketTable
	socketsErr  error
}

// NewHost returns a Host reading the real machine below root ("/").
func NewHost(root string) *Host {
	return &Host{
		Root:      root,
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		UID:       os.Geteuid,
		LookupEnv: os.LookupEnv,
		readSockets: func() (*ports.SocketTable, error) {
			return ports.ReadSocketTable(filepath.Join(root, "proc"))
		},
	}
}

// WithSocketReader replaces how the socket tables are read (tests).
func (h *Host) WithSocketReader(f func() (*ports.SocketTable, error)) *Host {
	h.readSockets = f
	return h
}

// Path joins p (an absolute host path) below Root.
func (h *Host) Path(p string) string { return filepath.Join(h.Root, p) }

// Sockets returns the host's socket tables, read once.
func (h *Host) Sockets() (*ports.SocketTable, error) {
	h.once.Do(func() {
		if h.readSockets == nil {
			h.sockets = &ports.SocketTable{}
			return
		}
		h.sockets, h.socketsErr = h.readSockets()
	})
	return h.sockets, h.socketsErr
}
