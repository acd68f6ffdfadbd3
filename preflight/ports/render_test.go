package ports

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), string(got))
}

func TestWriteCatalogGolden(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteCatalog(&buf, builtin(t)))
	golden(t, "catalog.golden", buf.Bytes())
}

func TestWriteCatalogColumns(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteCatalog(&buf, []Table{{Name: "t", Rows: []Row{
		{Port: 51820, EndPort: 51821, Protocol: UDP, Binding: BindHost, Component: "wg", Purpose: "tunnels", Condition: "vpn"},
		{Port: 80, Protocol: TCP, Binding: BindLocalhost, Component: "web", Purpose: "pages"},
	}}}))
	assert.Equal(t, ""+
		"TABLE  PORT         PROTO  BINDING    COMPONENT  CONDITION  PURPOSE\n"+
		"t      51820-51821  udp    host       wg         vpn        tunnels\n"+
		"t      80           tcp    localhost  web        always     pages\n", buf.String())
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteCatalogReportsWriteErrors(t *testing.T) {
	err := WriteCatalog(failWriter{}, builtin(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "write port catalog: disk full")
}
