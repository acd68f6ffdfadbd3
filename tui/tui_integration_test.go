//go:build integration

package tui

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/testenv"
)

// Keystrokes against a real API server with the operator running: the seed's
// reassignment example (a holds tcp/2200; b, created from the form, gets
// frontend 2201) shows on screen and in the objects.
func TestTUICreatesAPipelineOnTheCluster(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	ports := []v1alpha1.PipelinePort{tcp(2200)}
	_, err := env.Client.CreatePipeline(ctx, manage.NewPipeline(env.Namespace, "a", "", manage.PipelineChange{
		Ports: &ports, ServiceType: ptr.To(v1alpha1.ServiceTypeClusterIP)}), nil, manage.WriteOptions{})
	require.NoError(t, err)
	_, err = env.Client.WaitPipeline(ctx, "a", manage.WaitPorts, 100*time.Millisecond)
	require.NoError(t, err)

	tm := start(t, env.Client, options())
	waitFor(t, tm, "core-health (hc)", "tcp/2200")
	send(tm, "n")
	// The instances may load after the list: the form takes them when they come.
	waitFor(t, tm, "Create a pipeline in namespace "+env.Namespace, "Instance      < core >")
	send(tm, typeText("b")...)
	send(tm, "ctrl+n")
	send(tm, typeText("tcp/2200")...)
	send(tm, "ctrl+s")
	waitFor(t, tm, "pipeline b created")
	waitFor(t, tm, "2201 (moved)") // the operator's assignment arrives through the watch
	send(tm, "esc")
	waitFor(t, tm, "tcp/2201->2200")

	svc := &corev1.Service{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "b"}, svc))
		require.Len(c, svc.Spec.Ports, 1)
		assert.Equal(c, int32(2201), svc.Spec.Ports[0].Port)
		assert.Equal(c, int32(2200), svc.Spec.Ports[0].TargetPort.IntVal)
	}, 30*time.Second, 100*time.Millisecond)
	p, err := env.Client.GetPipeline(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, []v1alpha1.PipelinePort{tcp(2200)}, p.Spec.Ports)
	assert.Empty(t, p.Spec.ServiceType, "left to the instance default")

	s := screen(t, tm)
	assert.Contains(t, s, "tcp/2201->2200")
	assert.Contains(t, s, "namespace "+env.Namespace+" · live")
}
