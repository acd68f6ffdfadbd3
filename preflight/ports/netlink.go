package ports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// SourceNetlink is SocketTable.Source for tables read over NETLINK_SOCK_DIAG.
const SourceNetlink = "netlink"

// Layout of struct inet_diag_req_v2 and struct inet_diag_msg
// (linux/inet_diag.h); both embed struct inet_diag_sockid (48 bytes).
const (
	sizeofDiagReq = 56
	sizeofDiagMsg = 72
)

// ReadSocketsNetlink asks the kernel over NETLINK_SOCK_DIAG for TCP sockets
// in LISTEN and unconnected UDP sockets, IPv4 and IPv6, in the network
// namespace of the calling thread. The kernel filters by state, so unlike
// /proc/net/tcp it does not walk the established-connection hash, whose size
// grows with the machine's memory. Owners are looked up below procDir. A
// missing IPv6 stack is not an error; any other failure is.
func ReadSocketsNetlink(procDir string) (*SocketTable, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	defer unix.Close(fd)
	return readDiag(fd, procDir)
}

// readSocketTableNetlink reads over netlink when that shows the same network
// namespace as procDir/net: procDir must be a live procfs whose
// thread-self/ns/net (the namespace a new socket is created in) is
// self/ns/net (the one procDir/net shows). It returns nil when that does
// not hold, and an error when netlink failed.
func readSocketTableNetlink(procDir string) (*SocketTable, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Stat(filepath.Join(procDir, "self", "ns", "net"))
	if err != nil {
		return nil, nil
	}
	thread, err := os.Stat(filepath.Join(procDir, "thread-self", "ns", "net"))
	if err != nil || !os.SameFile(self, thread) {
		return nil, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	defer unix.Close(fd)
	return readDiag(fd, procDir)
}

func readDiag(fd int, procDir string) (*SocketTable, error) {
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("set netlink receive timeout: %w", err)
	}
	t := &SocketTable{ProcDir: procDir, Source: SourceNetlink}
	buf := make([]byte, 32<<10)
	seq := uint32(0)
	for _, q := range []struct {
		proto  Protocol
		ipProt uint8
		family uint8
		states uint32
	}{
		{TCP, unix.IPPROTO_TCP, unix.AF_INET, 1 << stateListen},
		{TCP, unix.IPPROTO_TCP, unix.AF_INET6, 1 << stateListen},
		{UDP, unix.IPPROTO_UDP, unix.AF_INET, 1 << stateUDPBound},
		{UDP, unix.IPPROTO_UDP, unix.AF_INET6, 1 << stateUDPBound},
	} {
		seq++
		var err error
		t.Sockets, err = dumpDiag(fd, buf, seq, q.proto, q.ipProt, q.family, q.states, t.Sockets)
		if err != nil {
			if q.family == unix.AF_INET6 && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT)) {
				continue // no IPv6 in this kernel
			}
			return nil, fmt.Errorf("sock_diag dump of %s (family %d): %w", q.proto, q.family, err)
		}
	}
	slices.SortFunc(t.Sockets, compareSockets)
	return t, nil
}

// dumpDiag sends one inet_diag dump request and appends the sockets of the
// answer to dst.
func dumpDiag(fd int, buf []byte, seq uint32, proto Protocol, ipProt, family uint8, states uint32, dst []Socket) ([]Socket, error) {
	req := make([]byte, unix.SizeofNlMsghdr+sizeofDiagReq)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	body := req[unix.SizeofNlMsghdr:]
	body[0], body[1] = family, ipProt
	ne.PutUint32(body[4:], states)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return dst, fmt.Errorf("send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return dst, fmt.Errorf("receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return dst, fmt.Errorf("parse netlink answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return dst, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return dst, fmt.Errorf("short netlink error message")
				}
				if errno := int32(ne.Uint32(m.Data)); errno != 0 {
					return dst, unix.Errno(-errno)
				}
				return dst, nil
			case unix.SOCK_DIAG_BY_FAMILY:
				if s, ok := parseDiagMsg(m.Data, proto); ok {
					dst = append(dst, s)
				}
			}
		}
	}
}

// parseDiagMsg reads one struct inet_diag_msg. UDP sockets with local port 0
// (not bound) are skipped, as in the /proc/net reader.
func parseDiagMsg(b []byte, proto Protocol) (Socket, bool) {
	if len(b) < sizeofDiagMsg {
		return Socket{}, false
	}
	family := b[0]
	port := int(binary.BigEndian.Uint16(b[4:6]))
	var addr netip.Addr
	switch family {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return Socket{}, false
	}
	if proto == UDP && port == 0 {
		return Socket{}, false
	}
	ne := binary.NativeEndian
	return Socket{
		Protocol: proto, Addr: addr, Port: port,
		UID:   int(ne.Uint32(b[64:68])),
		Inode: uint64(ne.Uint32(b[68:72])),
	}, true
}
