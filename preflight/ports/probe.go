package ports

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// Socket is one listening TCP socket or bound UDP socket.
type Socket struct {
	Protocol Protocol   `json:"protocol"`
	Addr     netip.Addr `json:"addr"`
	Port     int        `json:"port"`
	Inode    uint64     `json:"inode"`
	// UID owns the socket (as the kernel reports it).
	UID int `json:"uid"`
	// PID, Process (/proc/<pid>/comm) and Exe (/proc/<pid>/exe, without the
	// " (deleted)" the kernel adds once the file was replaced) name the owner
	// when it could be found (0/"" otherwise). Conflicts fills them in.
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
	Exe     string `json:"exe,omitempty"`
}

// String describes the socket for a person:
// "10250/tcp is in use by python3 (pid 4121) on 0.0.0.0".
func (s Socket) String() string {
	who := "an unknown process"
	switch {
	case s.PID > 0 && s.Process != "":
		who = s.Process + " (pid " + strconv.Itoa(s.PID) + ")"
	case s.PID > 0:
		who = "pid " + strconv.Itoa(s.PID)
	}
	addr := s.Addr.String()
	if s.Addr.Is6() {
		addr = "[" + addr + "]"
	}
	return fmt.Sprintf("%d/%s is in use by %s on %s", s.Port, s.Protocol, who, addr)
}

// SocketTable is a snapshot of the host's listening sockets. Build it with
// ReadSocketTable, or fill Sockets directly (tests; owners are then only
// resolved when ProcDir is set).
type SocketTable struct {
	// Sockets are sorted by protocol, port and address.
	Sockets []Socket
	// ProcDir is the /proc whose <pid>/fd entries name socket owners; empty
	// means owners are not looked up.
	ProcDir string
	// Source says where the sockets were read: SourceNetlink, or the
	// directory holding the tcp, tcp6, udp and udp6 files.
	Source string

	mu     sync.Mutex
	owners ownerCache
}

// TCP socket state LISTEN and the state the kernel reports for an
// unconnected UDP socket (TCP_CLOSE).
const (
	stateListen   = 0x0A
	stateUDPBound = 0x07
)

// ReadSocketTable reads the socket tables that procDir/net shows, once, and
// keeps TCP sockets in LISTEN and UDP sockets that are bound (unconnected,
// local port not 0). Owners are looked up later, below procDir, only for
// sockets that Conflicts returns.
//
// When procDir is the live procfs and the calling thread is in the network
// namespace procDir/net shows, the kernel is asked over NETLINK_SOCK_DIAG
// for exactly those sockets (ReadSocketsNetlink): the same data as
// procDir/net/{tcp,tcp6,udp,udp6}, without the kernel walking its whole
// established-connection hash for each of the tcp files (milliseconds per
// file on a large machine). Otherwise, or when netlink fails, the four files
// are parsed (ReadSockets). Table.Source says which way was taken.
func ReadSocketTable(procDir string) (*SocketTable, error) {
	if t, err := readSocketTableNetlink(procDir); err == nil && t != nil {
		return t, nil
	}
	return ReadSockets(filepath.Join(procDir, "net"), procDir)
}

// ReadSockets parses netDir/{tcp,tcp6,udp,udp6} (e.g. /proc/net, a fake tree,
// or /proc/<pid>/task/<tid>/net for another network namespace) and looks
// owners up below procDir. tcp6 and udp6 may be missing (IPv6 disabled); tcp
// and udp may not.
func ReadSockets(netDir, procDir string) (*SocketTable, error) {
	t := &SocketTable{ProcDir: procDir, Source: netDir}
	for _, f := range []struct {
		name     string
		proto    Protocol
		v6       bool
		optional bool
	}{
		{"tcp", TCP, false, false},
		{"tcp6", TCP, true, true},
		{"udp", UDP, false, false},
		{"udp6", UDP, true, true},
	} {
		path := filepath.Join(netDir, f.name)
		data, err := os.ReadFile(path)
		if err != nil {
			if f.optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read socket table: %w", err)
		}
		t.Sockets, err = parseNetFile(data, f.proto, f.v6, t.Sockets)
		if err != nil {
			return nil, fmt.Errorf("parse socket table %s: %w", path, err)
		}
	}
	slices.SortFunc(t.Sockets, compareSockets)
	return t, nil
}

func compareSockets(a, b Socket) int {
	return cmp.Or(
		cmp.Compare(a.Protocol, b.Protocol),
		cmp.Compare(a.Port, b.Port),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Inode, b.Inode),
	)
}

// parseNetFile parses one /proc/net/{tcp,tcp6,udp,udp6} file and appends the
// listening (TCP) or bound (UDP) sockets to dst. The first line is the
// header. Columns: sl, local address:port, remote address:port, state,
// tx:rx queue, timer, retransmits, uid, timeout, inode, ...
func parseNetFile(data []byte, proto Protocol, v6 bool, dst []Socket) ([]Socket, error) {
	lineNo := 0
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		lineNo++
		if lineNo == 1 || len(bytes.TrimSpace(line)) == 0 {
			continue // header or trailing blank line
		}
		var fields [10][]byte
		n := 0
		for rest := line; n < len(fields); n++ {
			rest = bytes.TrimLeft(rest, " \t")
			if len(rest) == 0 {
				break
			}
			end := bytes.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			fields[n], rest = rest[:end], rest[end:]
		}
		if n < len(fields) {
			return dst, fmt.Errorf("line %d: %d fields, want at least %d", lineNo, n, len(fields))
		}
		state, err := strconv.ParseUint(string(fields[3]), 16, 8)
		if err != nil {
			return dst, fmt.Errorf("line %d: state %q: %w", lineNo, fields[3], err)
		}
		addr, port, err := parseHexAddrPort(fields[1], v6)
		if err != nil {
			return dst, fmt.Errorf("line %d: local address: %w", lineNo, err)
		}
		switch {
		case proto == TCP && state == stateListen:
		case proto == UDP && state == stateUDPBound && port != 0:
		default:
			continue
		}
		uid, err := strconv.ParseUint(string(fields[7]), 10, 32)
		if err != nil {
			return dst, fmt.Errorf("line %d: uid %q: %w", lineNo, fields[7], err)
		}
		inode, err := strconv.ParseUint(string(fields[9]), 10, 64)
		if err != nil {
			return dst, fmt.Errorf("line %d: inode %q: %w", lineNo, fields[9], err)
		}
		dst = append(dst, Socket{
			Protocol: proto, Addr: addr, Port: int(port),
			Inode: inode, UID: int(uid),
		})
	}
	return dst, nil
}

// parseHexAddrPort decodes "0100007F:1770" (IPv4) or 32 hex digits + ":PORT"
// (IPv6). The kernel prints each 32-bit word of the address as a number in
// host byte order, so the words are converted back with the native order.
func parseHexAddrPort(b []byte, v6 bool) (netip.Addr, uint16, error) {
	a, p, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("%q has no ':'", b)
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("port %q: %w", p, err)
	}
	want := 8
	if v6 {
		want = 32
	}
	if len(a) != want {
		return netip.Addr{}, 0, fmt.Errorf("address %q: %d hex digits, want %d", a, len(a), want)
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:want/2], a); err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: %w", a, err)
	}
	var out [16]byte
	for i := 0; i < want/2; i += 4 {
		binary.NativeEndian.PutUint32(out[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	if !v6 {
		return netip.AddrFrom4([4]byte(out[:4])), uint16(port), nil
	}
	return netip.AddrFrom16(out), uint16(port), nil
}

// Conflicts returns the sockets that clash with row r: same protocol (TCP and
// UDP are distinct), a port within the row's port or range, and an address
// the row's binding cares about. A host row clashes with a listener on any
// address; a localhost row with one on loopback (127.0.0.0/8, ::1,
// ::ffff:127.0.0.0/104) or on a wildcard (0.0.0.0, ::), since those also
// take the loopback port. The returned sockets carry their owner when it
// could be found (see resolveOwners).
func (t *SocketTable) Conflicts(r Row) []Socket {
	if t == nil {
		return nil
	}
	var out []Socket
	for _, s := range t.Sockets {
		if s.Protocol != r.Protocol || !r.Covers(s.Port) {
			continue
		}
		if r.Binding == BindLocalhost {
			a := s.Addr.Unmap()
			if !a.IsLoopback() && !a.IsUnspecified() {
				continue
			}
		}
		out = append(out, s)
	}
	if len(out) > 0 {
		t.resolveOwners(out)
	}
	return out
}
