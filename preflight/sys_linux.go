//go:build linux

package preflight

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"
)

// staUnsync is the adjtimex status bit saying the clock is not synchronised.
const staUnsync = 0x0040

// timeError is the adjtimex return state for an unsynchronised clock.
const timeError = 5

// clockSynced asks the kernel through adjtimex with no mode bits set, which
// only reads the clock state.
func clockSynced() (bool, error) {
	var tx syscall.Timex // Modes == 0: read only
	state, err := syscall.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("adjtimex: %w", err)
	}
	return state != timeError && tx.Status&staUnsync == 0, nil
}

const (
	netlinkNetfilter = 12 // NETLINK_NETFILTER
	nfnlSubsysNFT    = 10 // NFNL_SUBSYS_NFTABLES
	nftMsgGetTable   = 1  // NFT_MSG_GETTABLE
	nlmFRequest      = 0x1
	nlmFDump         = 0x300
)

// listNFTables dumps the nftables tables over netlink. It sends one GET
// request (a read); the kernel answers with one message per table.
func listNFTables() ([]string, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, netlinkNetfilter)
	if err != nil {
		return nil, fmt.Errorf("open netfilter netlink socket: %w", err)
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval(int64(time.Second))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("set netlink receive timeout: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	req := make([]byte, syscall.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], nfnlSubsysNFT<<8|nftMsgGetTable)
	binary.NativeEndian.PutUint16(req[6:], nlmFRequest|nlmFDump)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence
	// nfgenmsg: family AF_UNSPEC (all), version 0, resource id 0.
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send nftables table dump request: %w", err)
	}
	var tables []string
	buf := make([]byte, 1<<16)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("receive nftables tables: %w", err)
		}
		got, done, err := parseNFTableDump(buf[:n])
		if err != nil {
			return nil, err
		}
		tables = append(tables, got...)
		if done {
			return tables, nil
		}
	}
}

func statfsPath(path string) (total, free uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize) //nolint:gosec // block sizes are positive
	return st.Blocks * bs, st.Bavail * bs, nil
}

// readSmall reads up to len(buf) bytes of a small file (a /proc/<pid>/comm)
// with plain system calls: open, read, close.
func readSmall(path string, buf []byte) (int, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer syscall.Close(fd)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return n, nil
}
