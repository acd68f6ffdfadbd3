//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/testenv"
	"github.com/tpctl/tpctl/operator"
)

// On the real API server with the operator: secrets given to create land in
// a Secret owned by the pipeline and reach the pod template as envFrom; a
// change rolls the pods (the template's revision annotation changes); no
// value appears in any command's output, in the Pipeline or in events.
func TestPipelineSecretsAgainstTheOperator(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	get := func(name string, obj client.Object) error {
		return env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, obj)
	}
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	sentinel := "sntl-" + hex.EncodeToString(b)
	sentinel2 := sentinel + "-second"
	var outputs []string
	run := func(args ...string) mgmtResult {
		t.Helper()
		r := tpctl(t, env, args...)
		outputs = append(outputs, r.out, r.errOut)
		if r.err != nil {
			outputs = append(outputs, r.err.Error())
		}
		return r
	}

	t.Setenv("FROM_ENV", sentinel+"-env")
	file := mgmtFile(t, "sec.env", "FILE_KEY=\""+sentinel+"-file\"\n")
	r := run("pipeline", "create", "--name", "sec", "--port", "tcp/2400", "--service-type", "ClusterIP",
		"--secret", "TOKEN="+sentinel, "--secret", "FROM_ENV", "--secrets-file", file, "--wait=ports", "--timeout", "30s")
	require.NoError(t, r.err, r.errOut)

	p := &v1alpha1.Pipeline{}
	require.NoError(t, get("sec", p))
	rev1 := p.Labels[v1alpha1.LabelSecretsRevision]
	require.NotEmpty(t, rev1)
	s := &corev1.Secret{}
	require.NoError(t, get("sec-secrets", s))
	assert.Equal(t, map[string][]byte{"TOKEN": []byte(sentinel), "FROM_ENV": []byte(sentinel + "-env"), "FILE_KEY": []byte(sentinel + "-file")}, s.Data)
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, p.UID, s.OwnerReferences[0].UID, "owned by the pipeline: collected with it")
	assert.Equal(t, v1alpha1.KindPipeline, s.OwnerReferences[0].Kind)
	assert.Equal(t, "sec", s.Labels[v1alpha1.LabelPipeline])

	template := func(c *assert.CollectT) corev1.PodTemplateSpec {
		d := &appsv1.Deployment{}
		if !assert.NoError(c, get("sec", d)) {
			return corev1.PodTemplateSpec{}
		}
		return d.Spec.Template
	}
	eventually(t, "the pod template takes the Secret and its revision", func(c *assert.CollectT) {
		tpl := template(c)
		assert.Equal(c, rev1, tpl.Annotations[operator.AnnotationSecretsRevision])
		// The Deployment may not exist yet: no container to look into.
		if !assert.Len(c, tpl.Spec.Containers, 1) {
			return
		}
		var names []string
		for _, f := range tpl.Spec.Containers[0].EnvFrom {
			if f.SecretRef != nil {
				names = append(names, f.SecretRef.Name)
			}
		}
		assert.Equal(c, []string{"sec-secrets"}, names)
	})

	for _, args := range [][]string{
		{"pipeline", "get", "sec"}, {"pipeline", "get", "sec", "-o", "yaml"}, {"pipeline", "get", "sec", "-o", "json"},
		{"pipeline", "list"}, {"pipeline", "list", "-o", "yaml"}, {"pipeline", "export"}, {"pipeline", "secret", "list", "sec"},
	} {
		r := run(args...)
		require.NoError(t, r.err, "%v: %s", args, r.errOut)
	}
	r = run("pipeline", "secret", "list", "sec", "-o", "json")
	require.NoError(t, r.err)
	var keys []manage.SecretKey
	require.NoError(t, json.Unmarshal([]byte(r.out), &keys))
	assert.Equal(t, []manage.SecretKey{{Name: "FILE_KEY", Size: len(sentinel) + 5}, {Name: "FROM_ENV", Size: len(sentinel) + 4},
		{Name: "TOKEN", Size: len(sentinel)}}, keys)

	// A change rolls the pods; the same value again does not.
	r = run("pipeline", "secret", "set", "sec", "TOKEN="+sentinel2)
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, get("sec", p))
	rev2 := p.Labels[v1alpha1.LabelSecretsRevision]
	assert.NotEqual(t, rev1, rev2)
	eventually(t, "the pod template takes the new revision", func(c *assert.CollectT) {
		assert.Equal(c, rev2, template(c).Annotations[operator.AnnotationSecretsRevision])
	})
	r = run("pipeline", "secret", "set", "sec", "TOKEN="+sentinel2)
	require.NoError(t, r.err)
	require.NoError(t, get("sec", p))
	assert.Equal(t, rev2, p.Labels[v1alpha1.LabelSecretsRevision])

	r = run("pipeline", "secret", "unset", "sec", "FROM_ENV", "--dry-run")
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, get("sec-secrets", s))
	assert.Len(t, s.Data, 3, "a dry run stores nothing")
	r = run("pipeline", "secret", "unset", "sec", "FROM_ENV")
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, get("sec-secrets", s))
	assert.NotContains(t, s.Data, "FROM_ENV")
	r = run("pipeline", "secret", "unset", "sec", "NOPE")
	assert.EqualError(t, r.err, `pipeline "sec" has no secret NOPE; existing: FILE_KEY, TOKEN`)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))

	// Nothing shows a value: outputs, the Pipeline, events.
	for _, o := range outputs {
		assert.NotContains(t, o, sentinel)
	}
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), sentinel)
	var evs corev1.EventList
	require.NoError(t, env.Raw.List(ctx, &evs, client.InNamespace(env.Namespace)))
	var evs2 eventsv1.EventList
	require.NoError(t, env.Raw.List(ctx, &evs2, client.InNamespace(env.Namespace)))
	assert.NotEmpty(t, len(evs.Items)+len(evs2.Items), "the operator recorded events to search")
	for _, list := range []any{evs, evs2} {
		raw, err := json.Marshal(list)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), sentinel)
	}

	// Export leaves the secrets out (and says so); applying the export
	// keeps the pipeline's secrets and its revision.
	r = run("pipeline", "export", "sec")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.errOut, `pipeline "sec" has secrets that are not exported: FILE_KEY, TOKEN`)
	require.Contains(t, r.out, "metadata:\n")
	exported := mgmtFile(t, "sec.yaml", strings.Replace(r.out, "metadata:\n", "metadata:\n  labels:\n    team: a\n", 1))
	require.NoError(t, get("sec", p))
	rev3 := p.Labels[v1alpha1.LabelSecretsRevision]
	assert.NotEqual(t, rev2, rev3, "unset rolled the pods")
	r = run("apply", "-f", exported)
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, get("sec", p))
	assert.Equal(t, "a", p.Labels["team"], "apply wrote the pipeline")
	assert.Equal(t, rev3, p.Labels[v1alpha1.LabelSecretsRevision], "apply leaves tpctl's label alone")
	for _, o := range outputs {
		assert.NotContains(t, o, sentinel)
	}

	// A pipeline created again under the same name, before the old Secret
	// is collected, takes it over without its values.
	r = run("pipeline", "delete", "sec", "--yes")
	require.NoError(t, r.err, r.errOut)
	eventually(t, "the pipeline is gone", func(c *assert.CollectT) {
		assert.Error(c, get("sec", &v1alpha1.Pipeline{}))
	})
	r = run("pipeline", "create", "--name", "sec", "--port", "tcp/2400", "--service-type", "ClusterIP", "--secret", "OTHER=x")
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, get("sec", p))
	require.NoError(t, get("sec-secrets", s))
	assert.Equal(t, map[string][]byte{"OTHER": []byte("x")}, s.Data)
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, p.UID, s.OwnerReferences[0].UID)
}
