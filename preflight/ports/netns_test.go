package ports

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Addresses the test adds to the namespace's loopback device.
const (
	nsAddr4 = "10.77.0.1"
	nsAddr6 = "fd00:77::1"
)

// netnsThread is an OS thread that lives in a network namespace the test
// created. Work that must happen inside the namespace (opening sockets) runs
// on it through do; the socket tables of the namespace are read from
// /proc/<pid>/task/<tid>/net, which shows the thread's namespace (unlike
// /proc/self/net, which follows the thread-group leader).
type netnsThread struct {
	tid  int
	work chan func()
}

func (n *netnsThread) do(fn func()) {
	done := make(chan struct{})
	n.work <- func() { defer close(done); fn() }
	<-done
}

func (n *netnsThread) netDir() string {
	return fmt.Sprintf("/proc/%d/task/%d/net", os.Getpid(), n.tid)
}

// newNetns creates a named network namespace with lo up and the test
// addresses on it, and a thread inside it. Both go away in t.Cleanup.
func newNetns(t *testing.T) *netnsThread {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace with ip netns")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip tool (iproute2) to create a network namespace")
	}
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		t.Skip("needs IPv6 in the kernel: the test listens on IPv6 addresses")
	}
	name := fmt.Sprintf("tpctl-ports-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ipTool, args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("netns", "add", name)
	t.Cleanup(func() {
		out, err := exec.Command(ipTool, "netns", "del", name).CombinedOutput()
		assert.NoError(t, err, "ip netns del %s: %s", name, out)
	})
	ip("-n", name, "link", "set", "lo", "up")
	ip("-n", name, "addr", "add", nsAddr4+"/32", "dev", "lo")
	ip("-n", name, "-6", "addr", "add", nsAddr6+"/128", "dev", "lo", "nodad")

	n := &netnsThread{work: make(chan func())}
	ready := make(chan error, 1)
	go n.run(filepath.Join("/run/netns", name), ready)
	require.NoError(t, <-ready)
	t.Cleanup(func() { close(n.work) })
	return n
}

// run locks a thread that is not the thread-group leader, moves it into the
// namespace at nsPath and runs work on it until n.work is closed. The thread
// never unlocks: when run returns, the runtime ends the thread instead of
// reusing it outside the host namespace.
func (n *netnsThread) run(nsPath string, ready chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// This is the leader, whose namespace /proc/self/net (and so
		// /proc/net) shows for the whole process: it must not move. Hold it
		// while another goroutine gets a thread of its own, then let it go.
		inner := make(chan error, 1)
		go n.run(nsPath, inner)
		err := <-inner
		runtime.UnlockOSThread()
		ready <- err
		return
	}
	f, err := os.Open(nsPath)
	if err != nil {
		ready <- fmt.Errorf("open namespace: %w", err)
		return
	}
	err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	f.Close()
	if err != nil {
		ready <- fmt.Errorf("setns %s: %w", nsPath, err)
		return
	}
	n.tid = unix.Gettid()
	ready <- nil
	for fn := range n.work {
		fn()
	}
}

// listenV4MappedLoopback opens a TCP listener on an IPv6 socket bound to
// ::ffff:127.0.0.1, which the kernel shows in tcp6 as a v4-mapped address.
func listenV4MappedLoopback(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("clear IPV6_V6ONLY: %w", err)
	}
	sa := &unix.SockaddrInet6{Port: port, Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

type listener struct{ network, addr string }

// openListeners opens the stream and packet listeners, a v4-mapped loopback
// listener on 10256, an established TCP pair and a connected UDP socket (the
// last two are not listeners and must stay out of the table). It appends a
// closer for each socket.
func openListeners(streams, packets []listener, closers *[]func() error) error {
	for _, l := range streams {
		ln, err := net.Listen(l.network, l.addr)
		if err != nil {
			return fmt.Errorf("listen %s %s: %w", l.network, l.addr, err)
		}
		*closers = append(*closers, ln.Close)
	}
	for _, l := range packets {
		pc, err := net.ListenPacket(l.network, l.addr)
		if err != nil {
			return fmt.Errorf("listen %s %s: %w", l.network, l.addr, err)
		}
		*closers = append(*closers, pc.Close)
	}
	fd, err := listenV4MappedLoopback(10256)
	if err != nil {
		return err
	}
	*closers = append(*closers, func() error { return unix.Close(fd) })
	c, err := net.Dial("tcp4", "127.0.0.1:10010")
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	*closers = append(*closers, c.Close)
	u, err := net.Dial("udp4", nsAddr4+":5353")
	if err != nil {
		return fmt.Errorf("dial udp: %w", err)
	}
	*closers = append(*closers, u.Close)
	return nil
}

func TestConflictsInNetworkNamespace(t *testing.T) {
	ns := newNetns(t)

	streams := []listener{
		{"tcp4", "0.0.0.0:6443"},            // IPv4 wildcard
		{"tcp6", "[::]:10250"},              // IPv6 wildcard (v6 only)
		{"tcp4", "127.0.0.1:10248"},         // IPv4 loopback
		{"tcp6", "[::1]:10249"},             // IPv6 loopback
		{"tcp4", nsAddr4 + ":2020"},         // IPv4 specific
		{"tcp6", "[" + nsAddr6 + "]:10259"}, // IPv6 specific
		{"tcp4", "127.0.0.1:10010"},         // for the established pair below
		{"tcp6", "[" + nsAddr6 + "]:5170"},  // TCP twin of a UDP port
		{"tcp4", "127.0.0.2:10257"},         // elsewhere in 127/8
	}
	packets := []listener{
		{"udp4", "0.0.0.0:8472"},
		{"udp6", "[::1]:5653"},
		{"udp4", nsAddr4 + ":5353"},
		{"udp6", "[" + nsAddr6 + "]:5171"},
	}
	var closers []func() error
	t.Cleanup(func() {
		for _, c := range closers {
			assert.NoError(t, c())
		}
	})
	// Sockets are opened on the namespace's thread; errors come back to the
	// test goroutine (FailNow must not run on another goroutine).
	var openErr error
	ns.do(func() { openErr = openListeners(streams, packets, &closers) })
	require.NoError(t, openErr)

	st, err := ReadSockets(ns.netDir(), "/proc")
	require.NoError(t, err)
	var seen []string
	for _, s := range st.Sockets {
		seen = append(seen, fmt.Sprintf("%s %s", s.Protocol, netip.AddrPortFrom(s.Addr, uint16(s.Port))))
	}
	assert.ElementsMatch(t, []string{
		"tcp 0.0.0.0:6443", "tcp [::]:10250", "tcp 127.0.0.1:10248", "tcp [::1]:10249",
		"tcp 10.77.0.1:2020", "tcp [fd00:77::1]:10259", "tcp 127.0.0.1:10010",
		"tcp [fd00:77::1]:5170", "tcp 127.0.0.2:10257",
		"tcp [::ffff:127.0.0.1]:10256",
		"udp 0.0.0.0:8472", "udp [::1]:5653", "udp 10.77.0.1:5353", "udp [fd00:77::1]:5171",
	}, seen, "exactly the namespace's listeners: no established or connected sockets")

	host := func(p Protocol, port, end int) Row {
		return Row{Port: port, EndPort: end, Protocol: p, Binding: BindHost}
	}
	local := func(p Protocol, port, end int) Row {
		return Row{Port: port, EndPort: end, Protocol: p, Binding: BindLocalhost}
	}
	cases := []struct {
		name string
		row  Row
		want []string
	}{
		{"v4 wildcard vs host row", host(TCP, 6443, 0), []string{"0.0.0.0:6443"}},
		{"v4 wildcard vs localhost row", local(TCP, 6443, 0), []string{"0.0.0.0:6443"}},
		{"v6 wildcard vs localhost row", local(TCP, 10250, 0), []string{"[::]:10250"}},
		{"v4 loopback vs localhost row", local(TCP, 10248, 0), []string{"127.0.0.1:10248"}},
		{"other 127/8 address vs localhost row", local(TCP, 10257, 0), []string{"127.0.0.2:10257"}},
		{"v6 loopback vs localhost row", local(TCP, 10249, 0), []string{"[::1]:10249"}},
		{"v4-mapped loopback vs localhost row", local(TCP, 10256, 0), []string{"[::ffff:127.0.0.1]:10256"}},
		{"v4 specific vs host row", host(TCP, 2020, 0), []string{"10.77.0.1:2020"}},
		{"v4 specific vs localhost row", local(TCP, 2020, 0), nil},
		{"v6 specific vs host row", host(TCP, 10259, 0), []string{"[fd00:77::1]:10259"}},
		{"v6 specific vs localhost row", local(TCP, 10259, 0), nil},
		{"UDP wildcard vs UDP row", host(UDP, 8472, 0), []string{"0.0.0.0:8472"}},
		{"UDP busy, TCP free", host(TCP, 8472, 0), nil},
		{"TCP busy, UDP free", host(UDP, 5170, 0), nil},
		{"UDP v6 specific vs TCP row", host(TCP, 5171, 0), nil},
		{"UDP v6 loopback vs localhost row", local(UDP, 5653, 0), []string{"[::1]:5653"}},
		{"UDP v4 specific vs localhost row", local(UDP, 5353, 0), nil},
		{"UDP v4 specific vs host row", host(UDP, 5353, 0), []string{"10.77.0.1:5353"}},
		{"range vs host row", host(TCP, 10248, 10259), []string{"127.0.0.1:10248", "[::1]:10249", "[::]:10250", "[::ffff:127.0.0.1]:10256", "127.0.0.2:10257", "[fd00:77::1]:10259"}},
		{"free port", host(TCP, 9999, 0), nil},
	}
	comm, err := os.ReadFile("/proc/self/comm")
	require.NoError(t, err)
	process := strings.TrimSpace(string(comm))
	exe, err := os.Readlink("/proc/self/exe")
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range st.Conflicts(tc.row) {
				got = append(got, netip.AddrPortFrom(s.Addr, uint16(s.Port)).String())
				assert.Equal(t, os.Getpid(), s.PID, "owner of %s", s)
				assert.Equal(t, process, s.Process)
				assert.Equal(t, exe, s.Exe)
			}
			assert.Equal(t, tc.want, got)
		})
	}

	api := st.Conflicts(host(TCP, 6443, 0))
	require.Len(t, api, 1)
	assert.Equal(t, fmt.Sprintf("6443/tcp is in use by %s (pid %d) on 0.0.0.0", process, os.Getpid()), api[0].String())
	dns := st.Conflicts(local(UDP, 5653, 0))
	require.Len(t, dns, 1)
	assert.Equal(t, fmt.Sprintf("5653/udp is in use by %s (pid %d) on [::1]", process, os.Getpid()), dns[0].String())

	// Netlink, asked from the namespace's thread, sees the same sockets as
	// the namespace's /proc files.
	var viaNetlink, fromLeaderView *SocketTable
	var netlinkErr, leaderErr error
	ns.do(func() {
		viaNetlink, netlinkErr = ReadSocketsNetlink("/proc")
		fromLeaderView, leaderErr = ReadSocketTable("/proc")
	})
	require.NoError(t, netlinkErr)
	files, err := ReadSockets(ns.netDir(), "/proc")
	require.NoError(t, err)
	assert.Equal(t, files.Sockets, viaNetlink.Sockets)
	assert.Equal(t, SourceNetlink, viaNetlink.Source)
	// /proc/net shows the leader's namespace, not this thread's: netlink
	// would answer for the wrong namespace, so the files are read.
	require.NoError(t, leaderErr)
	assert.Equal(t, "/proc/net", fromLeaderView.Source)

	// The host's own table does not see the namespace's sockets.
	hostTable, err := ReadSocketTable("/proc")
	require.NoError(t, err)
	for _, s := range hostTable.Sockets {
		assert.NotEqual(t, netip.MustParseAddr(nsAddr4), s.Addr, "namespace socket leaked into the host table: %s", s)
	}
}
