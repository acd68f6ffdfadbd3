package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
)

func runPreflightCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newPreflightCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestPreflightUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-o", "yaml"},
		{"--cni", "calico"},
		{"--datastore", "mysql"},
		{"--cluster-cidr", "10.42.0.0/99"},
		{"--cluster-cidr", "10.0.0.0/8"},
		{"--table", "nope"},
		{"--ports-file", "/nonexistent.yaml"},
		{"--no-such-flag"},
		{"extra-arg"},
	} {
		_, _, err := runPreflightCmd(t, args...)
		require.Error(t, err, "%v", args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(err), "%v: %s", args, err)
	}
}

// The command runs the real checks on this host (reads only). With every
// failure ignored it must exit 0 and report them as ignored warnings.
func TestPreflightJSONOnThisHost(t *testing.T) {
	out, stderr, err := runPreflightCmd(t, "-o", "json", "--ignore-preflight-errors=all,Not-A-Check")
	require.NoError(t, err)
	var rep preflight.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, preflight.SchemaVersion, rep.Schema)
	assert.Zero(t, rep.Summary.Fail)
	assert.NotEmpty(t, rep.Results)
	assert.Contains(t, stderr, "--ignore-preflight-errors=not-a-check matches no check")

	var failing []string
	for _, r := range rep.Results {
		if r.Ignored {
			failing = append(failing, r.Name)
		}
	}
	if len(failing) == 0 {
		return // a host where everything passes exits 0 either way
	}
	_, _, err = runPreflightCmd(t, "-o", "json")
	require.Error(t, err)
	assert.Equal(t, cli.ExitPreflight, cli.ExitCode(err))

	// Ignoring exactly the failing names turns the exit code to 0.
	args := []string{"-o", "table"}
	for _, n := range failing {
		args = append(args, "--ignore-preflight-errors="+n)
	}
	out, _, err = runPreflightCmd(t, args...)
	require.NoError(t, err)
	assert.Contains(t, out, "(failure ignored)")
	assert.NotContains(t, out, "\x1b[", "no colour when not writing to a terminal")
}

func TestPreflightHelpDocumentsNamesAndExitCodes(t *testing.T) {
	out, _, err := runPreflightCmd(t, "--help")
	require.NoError(t, err)
	for _, s := range []string{"--ignore-preflight-errors", "Port-6443-TCP", "KernelConfig-CONFIG_VXLAN", "Exit codes:", "3  at least one check", "2  usage error", "ports"} {
		assert.Contains(t, out, s)
	}
}
