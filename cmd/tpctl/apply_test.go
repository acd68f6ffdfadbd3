package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

func applyDepsOf(m *managetest.Memory) applyDeps {
	return applyDeps{connect: func(_, namespace string) (applyClient, error) {
		if namespace != "" && namespace != m.Namespace() {
			return managetest.NewMemory(namespace), nil
		}
		return m, nil
	}}
}

func mgmtApply(t *testing.T, m *managetest.Memory, stdin string, args ...string) mgmtResult {
	t.Helper()
	return mgmtRun(t, newApplyCmdWith(applyDepsOf(m)), stdin, args...)
}

const applyFile = `apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: syslog, namespace: tp}
spec:
  instance: core
  autoDetectPorts: false
  ports: [{protocol: UDP, port: 5140}]
---
apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: fwd}
spec:
  autoDetectPorts: false
  ports: [{protocol: TCP, port: 24224}]
`

func TestApplyCommand(t *testing.T) {
	m := mgmtCluster(t)
	path := mgmtFile(t, "p.yaml", applyFile)

	r := mgmtApply(t, m, "", "-f", path, "--dry-run")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "pipeline/syslog created (dry run)\n--- cluster/tp/syslog\n+++ file/tp/syslog\n")
	assert.Nil(t, m.Pipeline("syslog"))

	r = mgmtApply(t, m, "", "-f", path)
	require.NoError(t, r.err, r.errOut)
	assert.Equal(t, "pipeline/syslog created\npipeline/fwd created\n", r.out)

	// Again from stdin, for machines: unchanged.
	r = mgmtApply(t, m, applyFile, "-f", "-", "-o", "json")
	require.NoError(t, r.err, r.errOut)
	var out struct {
		Namespace string `json:"namespace"`
		DryRun    bool   `json:"dryRun"`
		Results   []struct {
			Document int    `json:"document"`
			Name     string `json:"name"`
			Action   string `json:"action"`
			Diff     string `json:"diff"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &out), r.out)
	assert.Equal(t, "tp", out.Namespace)
	require.Len(t, out.Results, 2)
	assert.Equal(t, 2, out.Results[1].Document)
	assert.Equal(t, "unchanged", out.Results[0].Action)
	assert.Equal(t, "unchanged", out.Results[1].Action)

	// A change: the dry run shows the diff; then --wait waits for the ports.
	changed := strings.Replace(applyFile, "port: 24224}]", "port: 24224}]\n  serviceType: ClusterIP", 1)
	r = mgmtApply(t, m, changed, "-f", "-", "--dry-run")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "pipeline/syslog unchanged\npipeline/fwd updated (dry run)\n")
	assert.Contains(t, r.out, "+  serviceType: ClusterIP\n")
	assert.Empty(t, m.Pipeline("fwd").Spec.ServiceType)
	r = mgmtApply(t, m, changed, "-f", "-", "--wait=ports")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "pipeline/fwd updated\n")
	assert.Contains(t, r.out, "tcp/24224")
	assert.Contains(t, r.errOut, "waiting for ports of 2 pipeline(s)")
	assert.Equal(t, v1alpha1.ServiceTypeClusterIP, m.Pipeline("fwd").Spec.ServiceType)
}

func TestApplyCommandRefusesBadInput(t *testing.T) {
	m := mgmtCluster(t)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no file", "", nil, "-f is required"},
		{"missing file", "", []string{"-f", "/nonexistent/p.yaml"}, "read /nonexistent/p.yaml"},
		{"namespace mismatch", applyFile, []string{"-f", "-", "-n", "prod"}, `document 1 (pipeline "syslog"): it names namespace "tp" but -n is "prod"`},
		{"unknown kind", applyFile + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", []string{"-f", "-"}, `document 3 (pipeline "s"): kind "Secret"`},
		{"duplicate", applyFile + "---\n" + applyFile[:strings.Index(applyFile, "---")], []string{"-f", "-"}, `document 3 (pipeline "syslog"): pipeline "syslog" is also document 1`},
		{"invalid", strings.Replace(applyFile, "port: 24224", "port: 70000", 1), []string{"-f", "-"}, `document 2 (pipeline "fwd"): invalid pipeline`},
		{"wait and dry run", applyFile, []string{"-f", "-", "--wait", "--dry-run"}, "do not go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mgmtApply(t, m, tc.stdin, tc.args...)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), tc.want)
			assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), "a problem in the input is a usage error")
			assert.Nil(t, m.Pipeline("syslog"), "nothing was changed")
			assert.Nil(t, m.Pipeline("fwd"), "nothing was changed")
		})
	}
	// A refusal by the cluster is not a usage error.
	m.Fail(managetest.OpApply, &manage.InvalidError{Kind: "Pipeline", Name: "syslog", Problems: []string{"refused"}})
	r := mgmtApply(t, m, applyFile, "-f", "-")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "nothing was changed")
	assert.Equal(t, cli.ExitError, cli.ExitCode(r.err))
}
