//go:build integration

package manage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/testenv"
)

func pipelineDoc(name, extra string) string {
	return "---\napiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: " + name +
		"\n  labels: {team: ops}\nspec:\n  instance: " + testenv.InstanceName +
		"\n  autoDetectPorts: false\n  ports: [{protocol: TCP, port: 5170}]\n" + extra
}

func TestApplyOnTheAPIServer(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	c := env.Client
	read := func(text string) []manage.Document {
		t.Helper()
		docs, err := manage.ReadDocuments(strings.NewReader(text))
		require.NoError(t, err)
		return docs
	}
	missing := func(name string) {
		t.Helper()
		_, err := c.GetPipeline(ctx, name)
		var nf *manage.NotFoundError
		require.ErrorAs(t, err, &nf, "pipeline %s should not exist", name)
	}

	// The CRD's CEL rule on resources (not checked by tpctl itself) is
	// caught by the server-side dry run, naming the document; the valid
	// document before it is not written either.
	overLimit := pipelineDoc("a", "") + pipelineDoc("b", "  resources: {limits: {cpu: \"65\"}}\n")
	_, err := manage.Apply(ctx, c, read(overLimit), manage.ApplyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `document 2 (pipeline "b")`)
	assert.Contains(t, err.Error(), "cpu may be at most 64")
	assert.Contains(t, err.Error(), "nothing was changed")
	var re *manage.RefusedError
	require.ErrorAs(t, err, &re)
	assert.False(t, re.InputOnly())
	missing("a")
	missing("b")

	// A dry run on an empty namespace stores nothing.
	file := pipelineDoc("a", "") + pipelineDoc("b", "  resources: {limits: {cpu: \"1\"}}\n")
	res, err := manage.Apply(ctx, c, read(file), manage.ApplyOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a created", "b created"}, actions(res))
	missing("a")

	res, err = manage.Apply(ctx, c, read(file), manage.ApplyOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"a created", "b created"}, actions(res))
	a1, err := c.GetPipeline(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "ops", a1.Labels["team"])
	assert.Equal(t, v1alpha1.WorkloadDeployment, a1.Spec.Workload.Kind, "the CRD's defaults apply")
	managers := map[string]metav1.ManagedFieldsOperationType{}
	for _, mf := range a1.ManagedFields {
		managers[mf.Manager] = mf.Operation
	}
	assert.Equal(t, metav1.ManagedFieldsOperationApply, managers[manage.FieldManager], "written by server-side apply as %s", manage.FieldManager)

	// Idempotent: the same file, and the file export writes, change nothing.
	for _, text := range []string{file, exportText(t, c)} {
		res, err = manage.Apply(ctx, c, read(text), manage.ApplyOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"a unchanged", "b unchanged"}, actions(res))
		again, err := c.GetPipeline(ctx, "a")
		require.NoError(t, err)
		// The operator writes the status, so the resourceVersion moves; the
		// spec and tpctl's own write do not.
		assert.Equal(t, a1.Generation, again.Generation)
		assert.Equal(t, a1.Spec, again.Spec)
		assert.Equal(t, applyEntry(a1), applyEntry(again))
	}

	// A change: the dry run shows the diff and stores nothing; then it is
	// applied.
	changed := strings.Replace(file, "port: 5170}]\n---", "port: 5170}]\n  serviceType: NodePort\n---", 1)
	res, err = manage.Apply(ctx, c, read(changed), manage.ApplyOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a updated", "b unchanged"}, actions(res))
	assert.Contains(t, res[0].Diff, "+  serviceType: NodePort\n")
	now, err := c.GetPipeline(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, a1.Generation, now.Generation)
	assert.Equal(t, a1.Spec, now.Spec)
	res, err = manage.Apply(ctx, c, read(changed), manage.ApplyOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"a updated", "b unchanged"}, actions(res))
	now, err = c.GetPipeline(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, now.Spec.ServiceType)

	// A field another tool changed is a conflict: refused, nothing changed,
	// unless forced.
	img := "example.org/other:1"
	_, err = c.UpdatePipeline(ctx, "b", manage.PipelineChange{Image: &img}, manage.WriteOptions{})
	require.NoError(t, err)
	withImage := strings.Replace(changed, "cpu: \"1\"}}\n", "cpu: \"1\"}}\n  image: example.org/mine:2\n", 1)
	_, err = manage.Apply(ctx, c, read(withImage), manage.ApplyOptions{})
	var ce *manage.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "--force-conflicts")
	b, err := c.GetPipeline(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, img, b.Spec.Image)
	res, err = manage.Apply(ctx, c, read(withImage), manage.ApplyOptions{Force: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a unchanged", "b updated"}, actions(res))
	b, err = c.GetPipeline(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "example.org/mine:2", b.Spec.Image)
}

// applyEntry is the managed-fields entry of tpctl's server-side applies.
func applyEntry(p *v1alpha1.Pipeline) metav1.ManagedFieldsEntry {
	for _, mf := range p.ManagedFields {
		if mf.Manager == manage.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return mf
		}
	}
	return metav1.ManagedFieldsEntry{}
}

func exportText(t *testing.T, a manage.API) string {
	t.Helper()
	return exportAll(t, a)
}
