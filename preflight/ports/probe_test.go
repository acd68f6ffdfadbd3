package ports

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fixtureNet = "testdata/proc/net"

// requireLittleEndian skips on big-endian hosts: the fixtures hold addresses
// as a little-endian kernel prints them.
func requireLittleEndian(t testing.TB) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("needs a little-endian host: the /proc/net fixtures were written by one")
	}
}

func sock(proto Protocol, addr string, port int, inode uint64, uid int) Socket {
	return Socket{Protocol: proto, Addr: netip.MustParseAddr(addr), Port: port, Inode: inode, UID: uid}
}

func TestReadSocketsFixtures(t *testing.T) {
	requireLittleEndian(t)
	st, err := ReadSockets(fixtureNet, "")
	require.NoError(t, err)
	assert.Equal(t, []Socket{
		sock(TCP, "192.168.1.10", 2020, 1003, 1000),
		sock(TCP, "0.0.0.0", 6443, 1001, 0),
		sock(TCP, "127.0.0.1", 10248, 1002, 0),
		sock(TCP, "::1", 10249, 2002, 0),
		sock(TCP, "::", 10250, 2001, 0),
		sock(TCP, "::ffff:127.0.0.1", 10256, 2003, 997),
		sock(TCP, "fd00::1", 10259, 2004, 0),
		sock(UDP, "127.0.0.53", 53, 3002, 991),
		sock(UDP, "::", 5353, 4001, 104),
		sock(UDP, "::1", 5653, 4002, 0),
		sock(UDP, "0.0.0.0", 8472, 3001, 0),
	}, st.Sockets, "only TCP LISTEN and bound unconnected UDP, sorted by protocol and port")
}

func TestConflictsFixtures(t *testing.T) {
	requireLittleEndian(t)
	st, err := ReadSockets(fixtureNet, "")
	require.NoError(t, err)
	host := func(p Protocol, port, end int) Row {
		return Row{Port: port, EndPort: end, Protocol: p, Binding: BindHost}
	}
	local := func(p Protocol, port, end int) Row {
		return Row{Port: port, EndPort: end, Protocol: p, Binding: BindLocalhost}
	}
	cases := []struct {
		name string
		row  Row
		want []string // "addr port"
	}{
		{"v4 wildcard, host row", host(TCP, 6443, 0), []string{"0.0.0.0 6443"}},
		{"v4 wildcard, localhost row", local(TCP, 6443, 0), []string{"0.0.0.0 6443"}},
		{"same port over UDP is free", host(UDP, 6443, 0), nil},
		{"UDP port busy", host(UDP, 8472, 0), []string{"0.0.0.0 8472"}},
		{"UDP busy does not make TCP busy", host(TCP, 8472, 0), nil},
		{"v4 loopback, localhost row (established peer ignored)", local(TCP, 10248, 0), []string{"127.0.0.1 10248"}},
		{"v6 wildcard, localhost row", local(TCP, 10250, 0), []string{":: 10250"}},
		{"v6 loopback, localhost row", local(TCP, 10249, 0), []string{"::1 10249"}},
		{"v4-mapped loopback, localhost row", local(TCP, 10256, 0), []string{"::ffff:127.0.0.1 10256"}},
		{"v6 specific address, host row", host(TCP, 10259, 0), []string{"fd00::1 10259"}},
		{"v6 specific address, localhost row", local(TCP, 10259, 0), nil},
		{"v4 specific address, host row", host(TCP, 2020, 0), []string{"192.168.1.10 2020"}},
		{"v4 specific address, localhost row", local(TCP, 2020, 0), nil},
		{"127/8 loopback over UDP", local(UDP, 53, 0), []string{"127.0.0.53 53"}},
		{"v6 wildcard UDP", local(UDP, 5353, 0), []string{":: 5353"}},
		{"TIME_WAIT is not a listener", host(TCP, 10257, 0), nil},
		{"range, host row", host(TCP, 10248, 10259), []string{"127.0.0.1 10248", "::1 10249", ":: 10250", "::ffff:127.0.0.1 10256", "fd00::1 10259"}},
		{"range, localhost row", local(TCP, 10248, 10259), []string{"127.0.0.1 10248", "::1 10249", ":: 10250", "::ffff:127.0.0.1 10256"}},
		{"free port", host(TCP, 9999, 0), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range st.Conflicts(tc.row) {
				got = append(got, s.Addr.String()+" "+strconv.Itoa(s.Port))
				assert.Zero(t, s.PID, "no proc dir, no owner")
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestConflictsOnNilAndHandBuiltTables(t *testing.T) {
	var nilTable *SocketTable
	assert.Nil(t, nilTable.Conflicts(Row{Port: 1, Protocol: TCP}))

	st := &SocketTable{Sockets: []Socket{{Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, PID: 7, Process: "nginx"}}}
	got := st.Conflicts(Row{Port: 80, Protocol: TCP, Binding: BindHost})
	require.Len(t, got, 1)
	assert.Equal(t, "80/tcp is in use by nginx (pid 7) on 10.0.0.1", got[0].String())
}

func TestSocketString(t *testing.T) {
	cases := []struct {
		s    Socket
		want string
	}{
		{Socket{Protocol: TCP, Addr: netip.MustParseAddr("0.0.0.0"), Port: 10250, PID: 4121, Process: "python3"}, "10250/tcp is in use by python3 (pid 4121) on 0.0.0.0"},
		{Socket{Protocol: UDP, Addr: netip.MustParseAddr("::1"), Port: 5653, PID: 12, Process: "kuma-cp"}, "5653/udp is in use by kuma-cp (pid 12) on [::1]"},
		{Socket{Protocol: TCP, Addr: netip.MustParseAddr("::ffff:127.0.0.1"), Port: 10256}, "10256/tcp is in use by an unknown process on [::ffff:127.0.0.1]"},
		{Socket{Protocol: TCP, Addr: netip.MustParseAddr("::"), Port: 80, PID: 300}, "80/tcp is in use by pid 300 on [::]"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.s.String())
	}
}

func TestReadSocketsMissingFiles(t *testing.T) {
	requireLittleEndian(t)
	dir := t.TempDir()
	for _, f := range []string{"tcp", "udp"} {
		data, err := os.ReadFile(filepath.Join(fixtureNet, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
	}
	st, err := ReadSockets(dir, "")
	require.NoError(t, err, "tcp6 and udp6 are missing when IPv6 is off")
	assert.Len(t, st.Sockets, 5)

	require.NoError(t, os.Remove(filepath.Join(dir, "udp")))
	_, err = ReadSockets(dir, "")
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "read socket table: open "+filepath.Join(dir, "udp"))

	_, err = ReadSocketTable(filepath.Join(dir, "nope"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseNetFileErrors(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	line := func(local, state, uid, inode string) string {
		return "   0: " + local + " 00000000:0000 " + state + " 00000000:00000000 00:00000000 00000000 " + uid + " 0 " + inode + " 1\n"
	}
	cases := []struct {
		name, data string
		v6         bool
		want       string
	}{
		{"too few fields", header + "   0: 00000000:192B 00000000:0000 0A\n", false, "line 2: 4 fields, want at least 10"},
		{"bad state", header + line("00000000:192B", "ZZ", "0", "1"), false, `line 2: state "ZZ": strconv.ParseUint: parsing "ZZ": invalid syntax`},
		{"no colon", header + line("00000000192B", "0A", "0", "1"), false, `line 2: local address: "00000000192B" has no ':'`},
		{"bad port", header + line("00000000:XYZ", "0A", "0", "1"), false, `line 2: local address: port "XYZ": strconv.ParseUint: parsing "XYZ": invalid syntax`},
		{"short v4 address", header + line("000000:192B", "0A", "0", "1"), false, `line 2: local address: address "000000": 6 hex digits, want 8`},
		{"v4 address in v6 file", header + line("00000000:192B", "0A", "0", "1"), true, `line 2: local address: address "00000000": 8 hex digits, want 32`},
		{"bad hex", header + line("0000000G:192B", "0A", "0", "1"), false, `line 2: local address: address "0000000G": encoding/hex: invalid byte: U+0047 'G'`},
		{"bad uid", header + line("00000000:192B", "0A", "-1", "1"), false, `line 2: uid "-1": strconv.ParseUint: parsing "-1": invalid syntax`},
		{"bad inode", header + line("00000000:192B", "0A", "0", "x"), false, `line 2: inode "x": strconv.ParseUint: parsing "x": invalid syntax`},
	}
	for _, tc := range cases {
		_, err := parseNetFile([]byte(tc.data), TCP, tc.v6, nil)
		require.Error(t, err, tc.name)
		assert.Equal(t, tc.want, err.Error(), tc.name)
	}
	got, err := parseNetFile([]byte(header+"\n\n"), TCP, false, nil)
	require.NoError(t, err, "blank lines are skipped")
	assert.Empty(t, got)
}

// FuzzParseNetFile checks that the socket table parser never panics and only
// returns sockets of the asked protocol and address family.
func FuzzParseNetFile(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		data, err := os.ReadFile(filepath.Join(fixtureNet, name))
		require.NoError(f, err)
		f.Add(data, name == "tcp6" || name == "udp6", name[0] == 'u')
	}
	f.Fuzz(func(t *testing.T, data []byte, v6, udp bool) {
		proto := TCP
		if udp {
			proto = UDP
		}
		socks, err := parseNetFile(data, proto, v6, nil)
		if err != nil {
			return
		}
		for _, s := range socks {
			require.Equal(t, proto, s.Protocol)
			require.Equal(t, v6, s.Addr.Is6())
			require.True(t, s.Port >= 0 && s.Port <= MaxPort)
			if udp {
				require.NotZero(t, s.Port)
			}
		}
	})
}

// fakeProc builds a /proc-like tree: pid directories with fd symlinks, comm
// and exe.
type fakeProc struct {
	t   *testing.T
	dir string
}

func (p fakeProc) pid(pid string, comm, exe string, links ...string) {
	fd := filepath.Join(p.dir, pid, "fd")
	require.NoError(p.t, os.MkdirAll(fd, 0o755))
	for i, l := range links {
		require.NoError(p.t, os.Symlink(l, filepath.Join(fd, strconv.Itoa(i))))
	}
	if comm != "" {
		require.NoError(p.t, os.WriteFile(filepath.Join(p.dir, pid, "comm"), []byte(comm+"\n"), 0o644))
	}
	if exe != "" {
		require.NoError(p.t, os.Symlink(exe, filepath.Join(p.dir, pid, "exe")))
	}
}

func TestOwnerResolution(t *testing.T) {
	requireLittleEndian(t)
	p := fakeProc{t, t.TempDir()}
	p.pid("100", "k3s-server", "/usr/local/bin/k3s", "/dev/null", "socket:[1001]", "socket:[2001]", "socket:[999]")
	p.pid("150", "bash", "/usr/bin/bash", "/dev/pts/0", "pipe:[77]", "anon_inode:[eventfd]")
	p.pid("200", "python3", "/usr/bin/python3.12 (deleted)", "socket:[3001]", "socket:[1001]")
	p.pid("300", "", "", "socket:[2002]")
	require.NoError(t, os.MkdirAll(filepath.Join(p.dir, "self", "fd"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(p.dir, "sys"), 0o755))

	st, err := ReadSockets(fixtureNet, p.dir)
	require.NoError(t, err)
	assert.Zero(t, st.Sockets[1].PID, "owners are not looked up before a conflict asks for them")
	assert.False(t, st.owners.started, "no scan before the first conflict")

	api := st.Conflicts(Row{Port: 6443, Protocol: TCP, Binding: BindHost})
	require.Len(t, api, 1)
	assert.Equal(t, 100, api[0].PID)
	assert.Equal(t, "k3s-server", api[0].Process)
	assert.Equal(t, "/usr/local/bin/k3s", api[0].Exe)
	assert.Equal(t, "6443/tcp is in use by k3s-server (pid 100) on 0.0.0.0", api[0].String())
	assert.Equal(t, []string{"150", "200", "300"}, st.owners.pending, "the scan stops once the wanted socket is found")
	assert.Zero(t, st.Sockets[1].PID, "the table's own sockets stay unresolved; results carry owners")

	kubelet := st.Conflicts(Row{Port: 10250, Protocol: TCP, Binding: BindLocalhost})
	require.Len(t, kubelet, 1)
	assert.Equal(t, "10250/tcp is in use by k3s-server (pid 100) on [::]", kubelet[0].String(), "found while scanning pid 100")
	assert.Equal(t, []string{"150", "200", "300"}, st.owners.pending, "answered from the cache")

	vxlan := st.Conflicts(Row{Port: 8472, Protocol: UDP, Binding: BindHost})
	require.Len(t, vxlan, 1)
	assert.Equal(t, "8472/udp is in use by python3 (pid 200) on 0.0.0.0", vxlan[0].String())
	assert.Equal(t, "/usr/bin/python3.12", vxlan[0].Exe, "the path of a replaced binary, without \" (deleted)\"")
	assert.Equal(t, []string{"300"}, st.owners.pending, "the scan resumed where it stopped")

	metrics := st.Conflicts(Row{Port: 10249, Protocol: TCP, Binding: BindLocalhost})
	require.Len(t, metrics, 1)
	assert.Equal(t, "10249/tcp is in use by pid 300 on [::1]", metrics[0].String(), "no comm: the pid alone")
	assert.Empty(t, st.owners.pending)

	health := st.Conflicts(Row{Port: 10248, Protocol: TCP, Binding: BindLocalhost})
	require.Len(t, health, 1)
	assert.Equal(t, "10248/tcp is in use by an unknown process on 127.0.0.1", health[0].String())

	// Everything found is cached: the tree is no longer needed.
	require.NoError(t, os.RemoveAll(p.dir))
	again := st.Conflicts(Row{Port: 6443, EndPort: 10250, Protocol: TCP, Binding: BindHost})
	var got []string
	for _, s := range again {
		got = append(got, s.String())
	}
	assert.Equal(t, []string{
		"6443/tcp is in use by k3s-server (pid 100) on 0.0.0.0",
		"10248/tcp is in use by an unknown process on 127.0.0.1",
		"10249/tcp is in use by pid 300 on [::1]",
		"10250/tcp is in use by k3s-server (pid 100) on [::]",
	}, got)
}

func TestOwnerResolutionWithoutProcDir(t *testing.T) {
	requireLittleEndian(t)
	st, err := ReadSockets(fixtureNet, filepath.Join(t.TempDir(), "absent"))
	require.NoError(t, err)
	got := st.Conflicts(Row{Port: 6443, Protocol: TCP, Binding: BindHost})
	require.Len(t, got, 1)
	assert.Equal(t, "6443/tcp is in use by an unknown process on 0.0.0.0", got[0].String())
}

func TestSocketInode(t *testing.T) {
	for in, want := range map[string]uint64{"socket:[1]": 1, "socket:[18446744073709551615]": 1<<64 - 1} {
		n, ok := socketInode([]byte(in))
		assert.True(t, ok, in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{"socket:[]", "socket:[x]", "pipe:[12]", "socket:[12", "/dev/null", "socket:[18446744073709551616]"} {
		_, ok := socketInode([]byte(in))
		assert.False(t, ok, in)
	}
}

func TestReadSocketTableSource(t *testing.T) {
	requireLittleEndian(t)
	fake := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(fake, "net"), os.DirFS(fixtureNet)))
	st, err := ReadSocketTable(fake)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(fake, "net"), st.Source, "a fake tree is read from its files")
	assert.Len(t, st.Sockets, 11)

	if _, err := ReadSocketsNetlink("/proc"); err != nil {
		t.Skipf("needs NETLINK_SOCK_DIAG (tcp_diag, udp_diag): %v", err)
	}
	live, err := ReadSocketTable("/proc")
	require.NoError(t, err)
	assert.Equal(t, SourceNetlink, live.Source, "the live /proc is asked over netlink")
}

func TestParseDiagMsg(t *testing.T) {
	msg := make([]byte, sizeofDiagMsg)
	msg[0] = 10 // AF_INET6
	binary.BigEndian.PutUint16(msg[4:], 10250)
	copy(msg[8:24], netip.MustParseAddr("::ffff:127.0.0.1").AsSlice())
	binary.NativeEndian.PutUint32(msg[64:], 997)
	binary.NativeEndian.PutUint32(msg[68:], 4242)
	s, ok := parseDiagMsg(msg, TCP)
	require.True(t, ok)
	assert.Equal(t, sock(TCP, "::ffff:127.0.0.1", 10250, 4242, 997), s)

	msg[0] = 2 // AF_INET
	copy(msg[8:12], []byte{10, 0, 0, 5})
	s, ok = parseDiagMsg(msg, UDP)
	require.True(t, ok)
	assert.Equal(t, sock(UDP, "10.0.0.5", 10250, 4242, 997), s)

	binary.BigEndian.PutUint16(msg[4:], 0)
	_, ok = parseDiagMsg(msg, UDP)
	assert.False(t, ok, "UDP without a local port is not bound")
	_, ok = parseDiagMsg(msg[:sizeofDiagMsg-1], TCP)
	assert.False(t, ok, "short message")
	msg[0] = 1 // AF_UNIX
	_, ok = parseDiagMsg(msg, TCP)
	assert.False(t, ok, "unknown family")
}

func TestConflictsConcurrent(t *testing.T) {
	requireLittleEndian(t)
	p := fakeProc{t, t.TempDir()}
	p.pid("10", "a", "/bin/a", "socket:[1001]", "socket:[1002]")
	p.pid("20", "b", "/bin/b", "socket:[2001]", "socket:[3001]")
	st, err := ReadSockets(fixtureNet, p.dir)
	require.NoError(t, err)
	rows := []Row{
		{Port: 6443, Protocol: TCP, Binding: BindHost},
		{Port: 10248, Protocol: TCP, Binding: BindHost},
		{Port: 10250, Protocol: TCP, Binding: BindHost},
		{Port: 8472, Protocol: UDP, Binding: BindHost},
	}
	want := []string{"a", "a", "b", "b"}
	errs := make(chan string, 8*len(rows))
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i, r := range rows {
				got := st.Conflicts(r)
				if len(got) != 1 || got[0].Process != want[i] {
					errs <- fmt.Sprintf("%s: got %v", r.Spec(), got)
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	close(errs)
	var problems []string
	for e := range errs {
		problems = append(problems, e)
	}
	assert.Empty(t, problems)
}
