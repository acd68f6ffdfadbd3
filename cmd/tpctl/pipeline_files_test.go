package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
)

func TestPipelineFilesCreateGetUpdateRemove(t *testing.T) {
	m := mgmtCluster(t)
	cfg := mgmtFile(t, "parse.conf", "[SERVICE]\n    parsers_file /fluent-bit/etc/tpctl/parsers.conf\n[INPUT]\n    Name tcp\n    Port 5170\n")
	parsers := mgmtFile(t, "my-parsers.conf", "[PARSER]\n    Name json\n    Format json\n")
	lua := mgmtFile(t, "filter.lua", "return\n")

	r := mgmtPipeline(t, m, "create", "--name", "parse", "--config-file", cfg, "--file", "parsers.conf="+parsers, "--file", lua)
	require.NoError(t, r.err, r.errOut)
	assert.Equal(t, map[string]v1alpha1.FileContent{
		"parsers.conf": "[PARSER]\n    Name json\n    Format json\n",
		"filter.lua":   "return\n",
	}, m.Pipeline("parse").Spec.Files)

	r = mgmtPipeline(t, m, "get", "parse")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "Files (beside the configuration in /fluent-bit/etc/tpctl):")
	assert.Regexp(t, `filter\.lua\s+7 bytes\s+/fluent-bit/etc/tpctl/filter\.lua`, r.out)
	assert.Regexp(t, `parsers\.conf\s+39 bytes\s+/fluent-bit/etc/tpctl/parsers\.conf`, r.out)
	r = mgmtPipeline(t, m, "get", "parse", "-o", "yaml")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "  files:\n")

	// A dry run shows the change and stores nothing.
	before := m.Pipeline("parse")
	r = mgmtPipeline(t, m, "update", "parse", "--remove-file", "filter.lua", "--dry-run", "-o", "yaml")
	require.NoError(t, r.err, r.errOut)
	assert.NotContains(t, r.out, "filter.lua")
	assert.Contains(t, r.out, "parsers.conf")
	assert.Equal(t, before, m.Pipeline("parse"))

	// Update adds or replaces and keeps the rest.
	newParsers := mgmtFile(t, "p2.conf", "[PARSER]\n    Name logfmt\n")
	r = mgmtPipeline(t, m, "update", "parse", "--file", "parsers.conf="+newParsers, "--file", "extra.lua="+lua)
	require.NoError(t, r.err, r.errOut)
	files := m.Pipeline("parse").Spec.Files
	assert.Equal(t, v1alpha1.FileContent("[PARSER]\n    Name logfmt\n"), files["parsers.conf"])
	assert.Len(t, files, 3)
	assert.Equal(t, before.Spec.Config, m.Pipeline("parse").Spec.Config, "the configuration is kept")

	r = mgmtPipeline(t, m, "update", "parse", "--remove-file", "filter.lua", "--remove-file", "extra.lua")
	require.NoError(t, r.err, r.errOut)
	assert.Equal(t, []string{"parsers.conf"}, keys(m.Pipeline("parse").Spec.Files))

	// Removing a file the pipeline lacks is a usage error naming those it has.
	r = mgmtPipeline(t, m, "update", "parse", "--remove-file", "gone.lua")
	require.Error(t, r.err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.Contains(t, r.err.Error(), `pipeline "parse" has no file gone.lua; existing: parsers.conf`)
}

func keys(m map[string]v1alpha1.FileContent) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPipelineFileLimitsAreUsageErrors(t *testing.T) {
	m := mgmtCluster(t)
	big := mgmtFile(t, "big.pem", strings.Repeat("x", v1alpha1.MaxFileBytes+1))
	r := mgmtPipeline(t, m, "create", "--name", "ca", "--port", "tcp/5170", "--file", "ca.pem="+big)
	require.Error(t, r.err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.Contains(t, r.err.Error(), `file "ca.pem" (`+big+`): larger than 262144 bytes (256 KiB)`)
	assert.Nil(t, m.Pipeline("ca"))

	// Each file within its limit, together over the total.
	half := mgmtFile(t, "half", strings.Repeat("x", v1alpha1.MaxFileBytes))
	r = mgmtPipeline(t, m, "create", "--name", "ca", "--port", "tcp/5170", "--file", "a="+half, "--file", "b="+half)
	require.NoError(t, r.err, r.errOut)
	r = mgmtPipeline(t, m, "update", "ca", "--file", "c="+mgmtFile(t, "c", "x"))
	require.Error(t, r.err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.Contains(t, r.err.Error(), "files: 524289 bytes together, more than the 524288 (512 KiB) a pipeline's files may hold")

	for _, args := range [][]string{
		{"--file", "a/b=" + half},
		{"--file", "pipeline.conf=" + half},
		{"--file", "x=" + half, "--remove-file", "x"},
	} {
		r = mgmtPipeline(t, m, append([]string{"update", "ca"}, args...)...)
		require.Error(t, r.err, args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), args)
	}
	r = mgmtPipeline(t, m, "create", "--name", "x", "--port", "tcp/1", "--remove-file", "a")
	require.Error(t, r.err, "create has no --remove-file")
	assert.Len(t, m.Pipeline("ca").Spec.Files, 2)
}
