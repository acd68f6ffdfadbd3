//go:build integration

package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/testenv"
)

func TestExportToAnotherNamespaceAndApply(t *testing.T) {
	ctx := context.Background()
	src := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	dst := testenv.StartEnvOn(ctx, t, src.Kubeconfig, src.REST, testenv.EnvOptions{})

	r := tpctl(t, src, "pipeline", "create", "--name", "fwd", "--port", "tcp/5170", "--service-type", "ClusterIP", "--no-auto-ports", "--wait=ports")
	require.NoError(t, r.err, r.errOut)
	r = tpctl(t, src, "pipeline", "export")
	require.NoError(t, r.err, r.errOut)
	exported := r.out
	assert.Contains(t, exported, "namespace: "+src.Namespace)
	assert.NotContains(t, exported, "resourceVersion")
	assert.NotContains(t, exported, "status:")

	// The file names the source namespace: -n of another one is refused.
	path := mgmtFile(t, "p.yaml", exported)
	r = tpctl(t, dst, "apply", "-f", path)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), `document 1 (pipeline "fwd"): it names namespace "`+src.Namespace+`"`)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))

	// Moved to the other namespace: a dry run, then the apply, then again.
	path = mgmtFile(t, "moved.yaml", strings.ReplaceAll(exported, "namespace: "+src.Namespace, "namespace: "+dst.Namespace))
	apply := func(args ...string) mgmtResult {
		return mgmtRun(t, newRootCmd(), "", append([]string{"apply", "-f", path, "--kubeconfig", dst.Kubeconfig}, args...)...)
	}
	r = apply("--dry-run")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "pipeline/fwd created (dry run)\n")
	_, err := dst.Client.GetPipeline(ctx, "fwd")
	var nf *manage.NotFoundError
	require.ErrorAs(t, err, &nf, "a dry run stores nothing")

	r = apply("--wait=ports", "--timeout", "30s")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "pipeline/fwd created\n")
	assert.Contains(t, r.out, "tcp/5170")
	r = apply()
	require.NoError(t, r.err, r.errOut)
	assert.Equal(t, "pipeline/fwd unchanged\n", r.out)

	a, err := src.Client.GetPipeline(ctx, "fwd")
	require.NoError(t, err)
	b, err := dst.Client.GetPipeline(ctx, "fwd")
	require.NoError(t, err)
	assert.Equal(t, a.Spec, b.Spec)

	// The CRD's CEL rule answers through the dry run, naming the document;
	// the exit code is 1 (the cluster refused), and nothing changed.
	bad := mgmtFile(t, "bad.yaml", strings.Replace(mustRead(t, path), "resources: {}", "resources: {limits: {memory: 65Gi}}", 1))
	r = mgmtRun(t, newRootCmd(), "", "apply", "-f", bad, "--kubeconfig", dst.Kubeconfig)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), `document 1 (pipeline "fwd")`)
	assert.Contains(t, r.err.Error(), "memory at most 64Gi")
	assert.Contains(t, r.err.Error(), "nothing was changed")
	assert.Equal(t, cli.ExitError, cli.ExitCode(r.err))
	after, err := dst.Client.GetPipeline(ctx, "fwd")
	require.NoError(t, err)
	assert.Equal(t, b.Generation, after.Generation)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}
