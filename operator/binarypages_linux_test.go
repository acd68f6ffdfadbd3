package operator

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// exeRss sums the resident kB of this program's mappings of its own file:
// read-only ones and writable ones apart.
func exeRss(t *testing.T) (readOnly, writable int64) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var mine, ro bool
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			mine = len(fields) >= 6 && strings.Join(fields[5:], " ") == exe
			ro = len(fields[1]) == 4 && fields[1][1] == '-'
			continue
		}
		if mine && len(fields) >= 2 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			require.NoError(t, err)
			if ro {
				readOnly += kb
			} else {
				writable += kb
			}
		}
	}
	require.NoError(t, sc.Err())
	return readOnly, writable
}

// TestDropBinaryPages: the resident pages of the binary's code and
// read-only data go, its writable data stays, and the program keeps
// running (its code is mapped again as it runs).
func TestDropBinaryPages(t *testing.T) {
	ro, rw := exeRss(t)
	require.Positive(t, ro, "this test binary has resident code")
	advised := DropBinaryPages()
	assert.Positive(t, advised)
	ro2, rw2 := exeRss(t)
	assert.Less(t, ro2, ro, "read-only pages were given back")
	assert.Equal(t, rw, rw2, "writable mappings are not touched")
	// Still runs: code and data of other packages are mapped again.
	_, err := ParsePortRange("30000-32767")
	assert.NoError(t, err)
}

func TestReadOnlyMappingOf(t *testing.T) {
	exe := "/tpctl-operator"
	s, e, ok := readOnlyMappingOf("00400000-01a00000 r-xp 00000000 00:2f 12 /tpctl-operator", exe)
	require.True(t, ok)
	assert.Equal(t, uintptr(0x400000), s)
	assert.Equal(t, uintptr(0x1a00000), e)
	for _, line := range []string{
		"03000000-03100000 rw-p 02c00000 00:2f 12 /tpctl-operator", // data: writable
		"03000000-03100000 r--s 02c00000 00:2f 12 /tpctl-operator", // shared
		"7f000000-7f100000 r--p 00000000 00:00 0",                  // anonymous
		"00400000-01a00000 r-xp 00000000 00:2f 13 /usr/bin/other",  // another file
		"01a00000-00400000 r-xp 00000000 00:2f 12 /tpctl-operator", // empty range
		"garbage",
	} {
		_, _, ok := readOnlyMappingOf(line, exe)
		assert.False(t, ok, line)
	}
}

// TestDropKeepsPrivateCopiesOfReadOnlyMappings: a read-only mapping whose
// page was written before it was made read-only (as a position-independent
// binary's relocated data is) holds a private copy; dropping it would put
// the file's original bytes back. It is left alone, and its neighbours
// without copies are still dropped.
func TestDropKeepsPrivateCopiesOfReadOnlyMappings(t *testing.T) {
	page := os.Getpagesize()
	p := filepath.Join(t.TempDir(), "image")
	require.NoError(t, os.WriteFile(p, make([]byte, 2*page), 0o600))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	// Two separate mappings of the file: one relocated, one clean.
	reloc, err := unix.Mmap(int(f.Fd()), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	require.NoError(t, err)
	defer func() { _ = unix.Munmap(reloc) }()
	reloc[0] = 42
	require.NoError(t, unix.Mprotect(reloc, unix.PROT_READ))
	clean, err := unix.Mmap(int(f.Fd()), int64(page), page, unix.PROT_READ, unix.MAP_PRIVATE)
	require.NoError(t, err)
	defer func() { _ = unix.Munmap(clean) }()
	_ = clean[0]

	advised := dropReadOnlyPages(p)
	assert.Equal(t, byte(42), reloc[0], "the private copy in a read-only mapping was discarded")
	assert.Equal(t, int64(page), advised, "only the clean mapping is advised")
}

func TestCleanReadOnlyMappings(t *testing.T) {
	smaps := `00400000-00800000 r-xp 00000000 00:2f 12 /tpctl-operator
Size:               4096 kB
Rss:                1024 kB
Anonymous:             0 kB
00800000-00900000 r--p 00400000 00:2f 12 /tpctl-operator
Size:               1024 kB
Anonymous:             8 kB
00900000-00a00000 rw-p 00500000 00:2f 12 /tpctl-operator
Anonymous:            64 kB
00a00000-00b00000 r--p 00600000 00:2f 12 /tpctl-operator
Size:               1024 kB
7f000000-7f100000 r--p 00000000 00:00 0
Anonymous:             0 kB
`
	got := cleanReadOnlyMappings(strings.NewReader(smaps), "/tpctl-operator")
	// The code mapping only: the second holds private copies, the third is
	// writable, the fourth has no count, the last is not the binary.
	assert.Equal(t, [][2]uintptr{{0x400000, 0x800000}}, got)
}
