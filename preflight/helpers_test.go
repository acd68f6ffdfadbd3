package preflight

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight/ports"
)

const gib = 1 << 30

// del marks a file an edit removes.
const del = "\x00delete"

// fakeHost copies testdata/hosts/<tree> into a temporary directory, applies
// edits (path → content, or del), and returns a Host over it whose function
// fields describe a healthy machine. Tests change the fields they study.
func fakeHost(t testing.TB, tree string, edits map[string]string) *Host {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS(filepath.Join("testdata", "hosts", tree))))
	for p, content := range edits {
		full := filepath.Join(root, p)
		if content == del {
			require.NoError(t, os.RemoveAll(full))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	h := NewHost(root)
	h.GOOS, h.GOARCH = "linux", "amd64"
	h.UID = func() int { return 0 }
	h.LookupEnv = func(string) (string, bool) { return "", false }
	h.NumCPU = func() int { return 4 }
	h.Statfs = func(string) (DiskSpace, error) { return DiskSpace{Total: 100 * gib, Free: 60 * gib}, nil }
	h.ClockSynced = func() (bool, error) { return true, nil }
	h.NFTables = func() ([]string, error) { return nil, nil }
	h.InterfaceAddrs = func() ([]IfaceAddr, error) {
		return []IfaceAddr{
			{Iface: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8")},
			{Iface: "eth0", Prefix: netip.MustParsePrefix("192.168.1.10/24")},
		}, nil
	}
	h.WithSocketReader(func() (*ports.SocketTable, error) { return &ports.SocketTable{}, nil })
	return h
}

// runOne runs a check and returns its only result.
func runOne(t *testing.T, c Check, h *Host) Result {
	t.Helper()
	rs := c.Run(context.Background(), h)
	require.Len(t, rs, 1, "results: %+v", rs)
	return rs[0]
}

// byName indexes results by name.
func byName(t *testing.T, rs []Result) map[string]Result {
	t.Helper()
	m := make(map[string]Result, len(rs))
	for _, r := range rs {
		_, dup := m[r.Name]
		require.False(t, dup, "duplicate result name %s", r.Name)
		m[r.Name] = r
	}
	return m
}

var errBoom = errors.New("boom")
