//go:build integration

package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/testenv"
)

// A proxy password given to tpctl ends up in one place only, the proxy
// Secret; every output and every other object is searched for it.
func TestProxyCredentialsStayInTheSecret(t *testing.T) {
	const sentinel = "Sentinel-Pw-7f3a9"
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: env.Namespace, Name: name} }
	var outputs []string
	run := func(args ...string) mgmtResult {
		r := tpctl(t, env, args...)
		outputs = append(outputs, r.out, r.errOut)
		if r.err != nil {
			outputs = append(outputs, r.err.Error())
		}
		return r
	}
	r := run("pipeline", "create", "--name", "a", "--port", "tcp/5170", "--wait=ports")
	require.NoError(t, r.err, r.errOut)

	withCreds := "http://bob:" + sentinel + "@proxy.test:3128"
	r = run("instance", "update", "--http-proxy", withCreds, "--dry-run", "-o", "yaml")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "proxySecretRef")
	assert.True(t, apierrors.IsNotFound(env.Raw.Get(ctx, key("core-proxy"), &corev1.Secret{})), "dry run stores no Secret")

	r = run("instance", "update", "--http-proxy", withCreds, "--https-proxy", withCreds, "--no-proxy", "localhost,.svc")
	require.NoError(t, r.err, r.errOut)
	sec := &corev1.Secret{}
	require.NoError(t, env.Raw.Get(ctx, key("core-proxy"), sec))
	assert.Equal(t, withCreds, string(sec.Data[v1alpha1.ProxySecretKeyHTTP]))
	assert.Equal(t, withCreds, string(sec.Data[v1alpha1.ProxySecretKeyHTTPS]))

	inst := &v1alpha1.CoreInstance{}
	require.NoError(t, env.Raw.Get(ctx, key("core"), inst))
	require.NotNil(t, inst.Spec.ProxySecretRef)
	assert.Equal(t, "core-proxy", inst.Spec.ProxySecretRef.Name)
	assert.Empty(t, inst.Spec.HTTPProxy)

	dep := &appsv1.Deployment{}
	eventually(t, "the pods read the proxies from the Secret", func(c *assert.CollectT) {
		require.NoError(c, env.Raw.Get(ctx, key("a"), dep))
		found := false
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "HTTPS_PROXY" {
				found = true
				assert.Empty(c, e.Value)
				if assert.NotNil(c, e.ValueFrom) && assert.NotNil(c, e.ValueFrom.SecretKeyRef) {
					assert.Equal(c, "core-proxy", e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
		assert.True(c, found, "HTTPS_PROXY is set")
	})

	for _, args := range [][]string{
		{"instance", "get"}, {"instance", "get", "-o", "json"}, {"instance", "get", "-o", "yaml"},
		{"instance", "list"}, {"instance", "list", "-o", "json"},
		{"pipeline", "get", "a", "-o", "yaml"},
	} {
		r := run(args...)
		require.NoError(t, r.err, "%v: %s", args, r.errOut)
	}
	// Refused values are not repeated with their credentials.
	r = run("instance", "update", "--https-proxy", "ftp://bob:"+sentinel+"@proxy.test:21")
	require.Error(t, r.err)

	for i, out := range outputs {
		assert.NotContains(t, out, sentinel, "output %d", i)
	}
	var objects []any
	objects = append(objects, inst, dep)
	var evs eventsv1.EventList
	require.NoError(t, env.Raw.List(ctx, &evs, client.InNamespace(env.Namespace)))
	objects = append(objects, &evs)
	var pipelines v1alpha1.PipelineList
	require.NoError(t, env.Raw.List(ctx, &pipelines, client.InNamespace(env.Namespace)))
	objects = append(objects, &pipelines)
	var cms corev1.ConfigMapList
	require.NoError(t, env.Raw.List(ctx, &cms, client.InNamespace(env.Namespace)))
	objects = append(objects, &cms)
	for _, obj := range objects {
		data, err := json.Marshal(obj)
		require.NoError(t, err)
		assert.NotContains(t, string(data), sentinel, "%T", obj)
	}

	// A proxy without credentials goes back into the spec; the Secret goes.
	r = run("instance", "update", "--http-proxy", "http://proxy.test:3128", "--https-proxy", "")
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, env.Raw.Get(ctx, key("core"), inst))
	assert.Nil(t, inst.Spec.ProxySecretRef)
	assert.Equal(t, "http://proxy.test:3128", inst.Spec.HTTPProxy)
	assert.True(t, apierrors.IsNotFound(env.Raw.Get(ctx, key("core-proxy"), &corev1.Secret{})))
}
