package operator

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
