//go:build integration

package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/testenv"
)

// The storage and autoscaling flags reach the stored pipeline, show in
// pipeline get and -o json, dry runs store nothing, and the API server's
// refusals come back with their reasons.
func TestStorageAndAutoscalingFlags(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	get := func(name string, obj client.Object) error {
		return env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, obj)
	}

	r := tpctl(t, env, "pipeline", "create", "--name", "dry", "--port", "tcp/9100", "--workload", "statefulset",
		"--storage-size", "5Gi", "--dry-run", "-o", "json")
	require.NoError(t, r.err, r.errOut)
	var dry v1alpha1.Pipeline
	require.NoError(t, json.Unmarshal([]byte(r.out), &dry), r.out)
	require.NotNil(t, dry.Spec.Workload.Storage)
	assert.Equal(t, "5Gi", dry.Spec.Workload.Storage.Size.String())
	assert.Error(t, get("dry", &v1alpha1.Pipeline{}), "a dry run stores nothing")

	r = tpctl(t, env, "pipeline", "create", "--name", "buf", "--port", "tcp/9101", "--service-type", "ClusterIP",
		"--workload", "statefulset", "--storage-size", "2Gi", "--storage-class", "local-path", "--storage-when-scaled", "delete")
	require.NoError(t, r.err, r.errOut)
	r = tpctl(t, env, "pipeline", "get", "buf")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "2Gi per pod (local-path) at /fluent-bit/storage; claims: retain when deleted, delete when scaled down")

	r = tpctl(t, env, "pipeline", "update", "buf", "--storage-size", "3Gi")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "cannot be added, changed or removed")
	r = tpctl(t, env, "pipeline", "update", "buf", "--storage-when-deleted", "delete", "-o", "json")
	require.NoError(t, r.err, r.errOut)
	var got v1alpha1.Pipeline
	require.NoError(t, json.Unmarshal([]byte(r.out), &got), r.out)
	assert.Equal(t, v1alpha1.RetentionDelete, got.Spec.Workload.Storage.WhenDeleted)
	assert.Equal(t, "2Gi", got.Spec.Workload.Storage.Size.String(), "an update keeps what it was not given")

	r = tpctl(t, env, "pipeline", "create", "--name", "web", "--port", "tcp/9102", "--service-type", "ClusterIP",
		"--cpu", "100m", "--min-replicas", "2", "--max-replicas", "4")
	require.NoError(t, r.err, r.errOut)
	r = tpctl(t, env, "pipeline", "get", "web")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "Deployment (autoscaled)")
	assert.Contains(t, r.out, "2 to 4 replicas at 80% of the cpu request")
	eventually(t, "the autoscaler", func(c *assert.CollectT) {
		hpa := &autoscalingv2.HorizontalPodAutoscaler{}
		require.NoError(c, get("web", hpa))
		assert.Equal(c, int32(4), hpa.Spec.MaxReplicas)
	})
	r = tpctl(t, env, "pipeline", "update", "web", "--no-autoscaling", "--dry-run", "-o", "json")
	require.NoError(t, r.err, r.errOut)
	require.NoError(t, get("web", &got))
	assert.NotNil(t, got.Spec.Workload.Autoscaling, "a dry run changes nothing")

	r = tpctl(t, env, "pipeline", "create", "--name", "nocpu", "--port", "tcp/9103", "--max-replicas", "3")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "autoscaling needs a cpu request (--cpu")
}
