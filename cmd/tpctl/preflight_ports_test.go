package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight/ports"
)

func runPortsCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newPreflightPortsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	err := cmd.Execute()
	return out.String(), err
}

const myTable = `name: my-agent
source: agent manual
rows:
  - {port: 9100, protocol: tcp, component: node-exporter, binding: host, purpose: host metrics}
`

func TestPreflightPortsListsAllTables(t *testing.T) {
	out, err := runPortsCmd(t)
	require.NoError(t, err)
	all, err := ports.Builtin()
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, ports.WriteCatalog(&want, all))
	assert.Equal(t, want.String(), out)
}

func TestPreflightPortsSelectsTablesAndFormats(t *testing.T) {
	out, err := runPortsCmd(t, "--table", "kuma", "--table", "k3s", "-o", "json")
	require.NoError(t, err)
	var got []ports.Table
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got, 2)
	assert.Equal(t, "kuma", got[0].Name)
	assert.Equal(t, "k3s", got[1].Name)
	assert.Equal(t, 6443, got[1].Rows[0].Port)

	out, err = runPortsCmd(t, "--table", "telemetry-pipeline", "-o", "yaml")
	require.NoError(t, err)
	var fromYAML []ports.Table
	require.NoError(t, yaml.Unmarshal([]byte(out), &fromYAML))
	require.Len(t, fromYAML, 1)
	assert.Equal(t, 2020, fromYAML[0].Rows[0].Port)
}

func TestPreflightPortsFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "mine.yaml")
	require.NoError(t, os.WriteFile(good, []byte(myTable), 0o600))
	out, err := runPortsCmd(t, "--ports-file", good, "--table", "my-agent")
	require.NoError(t, err)
	assert.Equal(t, ""+
		"TABLE     PORT  PROTO  BINDING  COMPONENT      CONDITION  PURPOSE\n"+
		"my-agent  9100  tcp    host     node-exporter  always     host metrics\n", out)

	out, err = runPortsCmd(t, "--ports-file", good)
	require.NoError(t, err)
	assert.Contains(t, out, "my-agent  ")
	assert.Contains(t, out, "event-streams  ")
}

func TestPreflightPortsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: bad\nrows:\n  - {port: 0, protocol: tcp, component: c, binding: host, purpose: p}\n"), 0o600))
	clash := filepath.Join(dir, "clash.yaml")
	require.NoError(t, os.WriteFile(clash, []byte("name: kuma\nrows:\n  - {port: 1, protocol: tcp, component: c, binding: host, purpose: p}\n"), 0o600))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--ports-file", bad}, "--ports-file: " + bad + ":3: rows[0].port: 0 is out of range 1-65535"},
		{[]string{"--ports-file", filepath.Join(dir, "none.yaml")}, "--ports-file: read port table: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory"},
		{[]string{"--ports-file", clash}, "--ports-file: " + clash + `: table name "kuma" is already taken; give the table another name`},
		{[]string{"--table", "kumaa"}, `--table: unknown port table "kumaa" (known tables: k3s, kubernetes-cilium, telemetry-pipeline, kuma, event-streams)`},
		{[]string{"-o", "xml"}, `unknown output format "xml" (want one of: table, json, yaml)`},
		{[]string{"--nope"}, "unknown flag: --nope"},
		{[]string{"extra"}, `unknown command "extra" for "ports"`},
	}
	for _, tc := range cases {
		out, err := runPortsCmd(t, tc.args...)
		require.Error(t, err, tc.args)
		assert.Equal(t, tc.want, err.Error(), tc.args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(err), tc.args)
		assert.Empty(t, out, "nothing printed on a usage error")
	}
}
