//go:build integration

package operator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/cluster"
)

// An operator limited to the namespaces of its core instances leaves every
// other namespace alone, yet still sees the LoadBalancer Services there.
func TestOperatorWatchesOnlyItsNamespaces(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	own := cluster.StartControlPlane(ctx, t)
	cfg := own.RESTConfig()
	require.NoError(t, installChartCRDs(ctx, cfg))
	scheme, err := NewScheme()
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	for _, ns := range []string{"watched", "other"} {
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		require.NoError(t, c.Create(ctx, &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core", Namespace: ns},
			Spec: v1alpha1.CoreInstanceSpec{HealthCheck: v1alpha1.HealthCheckSpec{Enabled: ptr.To(false)}}}))
	}
	// A LoadBalancer Service outside the watched namespace holds tcp/7100.
	require.NoError(t, c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: "other"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 7100}}}}))

	mgr, err := NewManager(cfg, Options{MetricsAddr: "0", ProbeAddr: "0", DefaultImage: "tpctl.test/sink:1",
		Namespaces: []string{"watched"}, Name: "-namespaced"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()

	for _, ns := range []string{"watched", "other"} {
		require.NoError(t, c.Create(ctx, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
			Spec: v1alpha1.PipelineSpec{Instance: "core", AutoDetectPorts: ptr.To(false),
				Ports: []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolTCP, Port: 7100}}}}))
	}
	require.EventuallyWithT(t, func(col *assert.CollectT) {
		svc := &corev1.Service{}
		require.NoError(col, c.Get(ctx, key("watched", "p"), svc))
		require.Len(col, svc.Spec.Ports, 1)
		assert.Equal(col, int32(7101), svc.Spec.Ports[0].Port, "tcp/7100 is held by the LoadBalancer Service in another namespace")
	}, time.Minute, 100*time.Millisecond)

	// Nothing happens in the namespace the operator does not watch.
	time.Sleep(2 * time.Second)
	p := &v1alpha1.Pipeline{}
	require.NoError(t, c.Get(ctx, key("other", "p"), p))
	assert.Nil(t, meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned))
	assert.Error(t, c.Get(ctx, key("other", "p"), &corev1.Service{}))
	cancel()
	require.NoError(t, <-done)
}
