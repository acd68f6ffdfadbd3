package preflight

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/tpctl/tpctl/preflight/ports"
)

// Host is the seam through which every check reads the machine. Production
// code uses NewHost("/"); tests build one over a fake tree (NewHost(dir)) and
// replace the function fields. Checks never write through it.
//
// Files are read below Root: /proc/sys/kernel/osrelease, /proc/config.gz,
// /boot/config-<release>, /proc/modules, /lib/modules/<release>/…,
// /proc/self/mountinfo, /proc/self/cgroup, /proc/cgroups,
// /sys/fs/cgroup/…, /proc/meminfo, /proc/swaps, /proc/self/status,
// /proc/1/comm, /proc/<pid>/comm, /proc/net/route, /proc/net/ipv6_route,
// /proc/net/ip_tables_names, /sys/fs/selinux/enforce,
// /sys/module/apparmor/parameters/enabled, /etc/ufw/ufw.conf,
// /etc/firewalld, /run/systemd/timesync/synchronized, /etc/resolv.conf,
// /run/systemd/resolve/resolv.conf, /proc/sys/kernel/hostname, and the paths
// of existing installs (/usr/local/bin/k3s, /etc/rancher/k3s, …).
type Host struct {
	// Root is the directory that stands for "/".
	Root string
	// GOOS and GOARCH of the host.
	GOOS, GOARCH string
	// UID returns the effective user id.
	UID func() int
	// LookupEnv reads the environment (proxy variables).
	LookupEnv func(string) (string, bool)
	// NumCPU returns the number of CPUs this process may run on.
	NumCPU func() int
	// Statfs returns the size and free space of the file system holding
	// path (a path already below Root).
	Statfs func(path string) (DiskSpace, error)
	// ClockSynced asks the kernel whether the system clock is synchronised
	// (adjtimex in read-only mode).
	ClockSynced func() (bool, error)
	// NFTables lists the nftables tables as "family name" (e.g.
	// "inet filter"). The default asks the kernel over netlink (a read-only
	// dump; it needs CAP_NET_ADMIN).
	NFTables func() ([]string, error)
	// InterfaceAddrs lists the host's interface addresses.
	InterfaceAddrs func() ([]IfaceAddr, error)

	// readSockets reads the socket tables; Sockets() caches its result so
	// the kernel tables are read once per run, not once per row.
	readSockets func() (*ports.SocketTable, error)
	once        sync.Once
	sockets     *ports.SocketTable
	socketsErr  error

	// Facts read by several checks are read once per Host.
	kconfig  lazy[kernelConfig]
	modules  lazy[moduleInfo]
	modDeps  lazy[map[string]bool]
	cgroups  lazy[*cgroupInfo]
	procs    lazy[[]process]
	install  lazy[*installInfo]
	capBound lazy[uint64]

	// listeners are the foreign host listeners the port check found.
	listeners []HostListener
}

// DiskSpace is what Statfs reports, in bytes.
type DiskSpace struct {
	Total uint64
	// Free is the space available to new files (statfs f_bavail).
	Free uint64
}

// IfaceAddr is one address of one network interface.
type IfaceAddr struct {
	Iface  string
	Prefix netip.Prefix
}

// NewHost returns a Host reading the machine below root ("/" in production).
func NewHost(root string) *Host {
	return &Host{
		Root:           root,
		GOOS:           runtime.GOOS,
		GOARCH:         runtime.GOARCH,
		UID:            os.Geteuid,
		LookupEnv:      os.LookupEnv,
		NumCPU:         runtime.NumCPU,
		Statfs:         statfs,
		ClockSynced:    clockSynced,
		NFTables:       listNFTables,
		InterfaceAddrs: interfaceAddrs,
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

// ReadFile reads an absolute host path below Root.
func (h *Host) ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(h.Path(p))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// readTrim reads a small file and trims white space.
func (h *Host) readTrim(p string) (string, error) {
	b, err := h.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Exists reports whether an absolute host path exists below Root.
func (h *Host) Exists(p string) bool {
	_, err := os.Lstat(h.Path(p))
	return err == nil
}

// KernelRelease reads /proc/sys/kernel/osrelease.
func (h *Host) KernelRelease() (string, error) {
	return h.readTrim("/proc/sys/kernel/osrelease")
}

// lazy computes a value once.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (l *lazy[T]) get(f func() (T, error)) (T, error) {
	l.once.Do(func() { l.v, l.err = f() })
	return l.v, l.err
}

func statfs(path string) (DiskSpace, error) {
	total, free, err := statfsPath(path)
	return DiskSpace{Total: total, Free: free}, err
}

func interfaceAddrs() ([]IfaceAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []IfaceAddr
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			out = append(out, IfaceAddr{Iface: ifi.Name, Prefix: netip.PrefixFrom(ip.Unmap(), ones)})
		}
	}
	return out, nil
}

// isNotExist reports whether err says a file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
