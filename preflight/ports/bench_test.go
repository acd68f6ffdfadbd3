package ports

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// cpuTime is the user+system CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	require.NoError(b, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric: on a busy shared machine wall time
// (ns/op) includes waiting for a core, CPU time does not.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkReadSocketTable reads this host's socket tables the way
// preflight does (over netlink where the live /proc allows it).
func BenchmarkReadSocketTable(b *testing.B) {
	st, err := ReadSocketTable("/proc")
	require.NoError(b, err)
	b.Logf("source %s, %d sockets", st.Source, len(st.Sockets))
	b.ReportAllocs()
	start := cpuTime(b)
	defer reportCPU(b, start)
	for b.Loop() {
		if _, err := ReadSocketTable("/proc"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSocketFiles parses /proc/net/{tcp,tcp6,udp,udp6}, for
// comparison: the kernel walks its established-connection hash for each
// tcp file.
func BenchmarkReadSocketFiles(b *testing.B) {
	b.ReportAllocs()
	start := cpuTime(b)
	defer reportCPU(b, start)
	for b.Loop() {
		if _, err := ReadSockets("/proc/net", "/proc"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuiltin parses the embedded tables.
func BenchmarkBuiltin(b *testing.B) {
	b.ReportAllocs()
	start := cpuTime(b)
	defer reportCPU(b, start)
	for b.Loop() {
		if _, err := Builtin(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConflicts checks every default row against this host's sockets,
// with a fresh owner cache each time (as one preflight run would).
func BenchmarkConflicts(b *testing.B) {
	all, err := Builtin()
	require.NoError(b, err)
	rows, err := Select(all, Selection{})
	require.NoError(b, err)
	st, err := ReadSocketTable("/proc")
	require.NoError(b, err)
	b.ReportAllocs()
	start := cpuTime(b)
	defer reportCPU(b, start)
	for b.Loop() {
		fresh := &SocketTable{Sockets: st.Sockets, ProcDir: st.ProcDir}
		for _, r := range rows {
			_ = fresh.Conflicts(r)
		}
	}
}

// BenchmarkOwnerScanWorstCase looks for the owner of a socket no process
// holds, so the whole of /proc/<pid>/fd is walked: the most a run can spend
// on owner resolution.
func BenchmarkOwnerScanWorstCase(b *testing.B) {
	sockets := []Socket{{Protocol: TCP, Addr: netip.IPv4Unspecified(), Port: 1, Inode: 1<<63 + 1}}
	b.ReportAllocs()
	start := cpuTime(b)
	defer reportCPU(b, start)
	for b.Loop() {
		st := &SocketTable{Sockets: sockets, ProcDir: "/proc"}
		if got := st.Conflicts(Row{Port: 1, Protocol: TCP, Binding: BindHost}); len(got) != 1 || got[0].PID != 0 {
			b.Fatalf("unexpected owner: %v", got)
		}
	}
}

// BenchmarkPortPreflight is the whole port part of a preflight run: parse
// the tables, select the default rows, read the socket tables once and check
// every row.
func BenchmarkPortPreflight(b *testing.B) {
	b.ReportAllocs()
	start := cpuTime(b)
	defer reportCPU(b, start)
	for b.Loop() {
		all, err := Builtin()
		if err != nil {
			b.Fatal(err)
		}
		rows, err := Select(all, Selection{})
		if err != nil {
			b.Fatal(err)
		}
		st, err := ReadSocketTable("/proc")
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			_ = st.Conflicts(r)
		}
	}
}
