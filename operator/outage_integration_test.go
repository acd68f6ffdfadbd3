//go:build integration

package operator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/cluster"
)

// A K3s restart takes its API server away for a while. The operator, leader
// election on, keeps running through a 60 s outage and reconciles again
// afterwards.
func TestOperatorSurvivesAnAPIServerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the API server is down for a minute")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	own := cluster.StartControlPlane(ctx, t)
	cfg := own.RESTConfig()
	require.NoError(t, installChartCRDs(ctx, cfg))
	scheme, err := NewScheme()
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)

	mgr, err := NewManager(cfg, Options{MetricsAddr: "0", ProbeAddr: "0", DefaultImage: "tpctl.test/sink:1",
		LeaderElection: true, LeaderElectionNamespace: "default", Name: "-outage"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	select {
	case <-mgr.Elected():
	case err := <-done:
		t.Fatalf("operator stopped before it was elected: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("operator was never elected")
	}

	require.NoError(t, c.Create(ctx, &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core", Namespace: "default"},
		Spec: v1alpha1.CoreInstanceSpec{HealthCheck: v1alpha1.HealthCheckSpec{Enabled: ptr.To(false)}}}))
	serviceOf := func(name string, port int32, within time.Duration) *v1alpha1.Pipeline {
		p := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: v1alpha1.PipelineSpec{Instance: "core", AutoDetectPorts: ptr.To(false),
				Ports: []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolTCP, Port: port}}}}
		require.NoError(t, c.Create(ctx, p))
		require.EventuallyWithT(t, func(col *assert.CollectT) {
			require.NoError(col, c.Get(ctx, key("default", name), &corev1.Service{}))
		}, within, 100*time.Millisecond, "Service of pipeline %s", name)
		return p
	}
	serviceOf("before", 7001, time.Minute)

	const outage = 60 * time.Second
	own.StopAPIServer()
	t.Logf("API server stopped for %v", outage)
	select {
	case err := <-done:
		t.Fatalf("operator exited during the outage: %v", err)
	case <-time.After(outage):
	}
	startCtx, startCancel := context.WithTimeout(ctx, 2*time.Minute)
	defer startCancel()
	require.NoError(t, own.StartAPIServer(startCtx))
	t.Log("API server back")

	// The informers' watches come back with client-go's reconnect backoff
	// (up to about a minute after a long outage): what matters is that the
	// operator is still there and works again, not how fast.
	serviceOf("after", 7002, 3*time.Minute)
	select {
	case err := <-done:
		t.Fatalf("operator exited after the outage: %v", err)
	default:
	}
	cancel()
	require.NoError(t, <-done)
}
