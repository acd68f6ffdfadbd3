package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPipelineExportCommand(t *testing.T) {
	m := mgmtCluster(t)
	r := mgmtPipeline(t, m, "export")
	require.NoError(t, r.err)
	assert.Empty(t, r.out)
	assert.Contains(t, r.errOut, `namespace "tp" has no pipelines to export`)

	r = mgmtApply(t, m, applyFile, "-f", "-")
	require.NoError(t, r.err, r.errOut)
	r = mgmtPipeline(t, m, "export")
	require.NoError(t, r.err, r.errOut)
	assert.Equal(t, 2, strings.Count(r.out, "---\n"))
	assert.NotContains(t, r.out, "status")
	assert.NotContains(t, r.out, "resourceVersion")

	// What export wrote applies as unchanged.
	again := mgmtApply(t, m, r.out, "-f", "-")
	require.NoError(t, again.err, again.errOut)
	assert.Equal(t, "pipeline/fwd unchanged\npipeline/syslog unchanged\n", again.out)

	r = mgmtPipeline(t, m, "export", "syslog", "nope")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), `"nope"`)
	assert.Empty(t, r.out, "nothing is written on an error")
}
