//go:build integration

package operator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// No load balancer controller runs against this API server: a LoadBalancer
// pipeline whose pods are ready stays Ready=False until its Service gets an
// ingress address, and becomes Ready when one is written.
func TestLoadBalancerWithoutIngressIsNotReady(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	p := newPipeline(ns, "lb", tcpPort(24224))
	p.Spec.ServiceType = v1alpha1.ServiceTypeLoadBalancer
	require.NoError(t, kc.Create(ctx, p))
	assigned(t, ns, "lb")

	// No controller-manager either: report the Deployment's pod as ready.
	dep := &appsv1.Deployment{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "lb"), dep))
	}, waitFor, 50*time.Millisecond)
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1,
		ReadyReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
	require.NoError(t, kc.Status().Update(ctx, dep))

	readyIs := func(status metav1.ConditionStatus, reason string) *metav1.Condition {
		t.Helper()
		var got *metav1.Condition
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			p := &v1alpha1.Pipeline{}
			require.NoError(c, kc.Get(ctx, key(ns, "lb"), p))
			got = meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
			require.NotNil(c, got)
			assert.Equal(c, status, got.Status)
			assert.Equal(c, reason, got.Reason)
		}, waitFor, 50*time.Millisecond)
		return got
	}
	c := readyIs(metav1.ConditionFalse, v1alpha1.ReasonLoadBalancerPending)
	assert.True(t, strings.Contains(c.Message, ns+"/lb"), c.Message)
	assert.True(t, strings.Contains(c.Message, "no load balancer"), c.Message)

	svc := getService(t, ns, "lb")
	require.Equal(t, corev1.ServiceTypeLoadBalancer, svc.Spec.Type)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	require.NoError(t, kc.Status().Update(ctx, svc))
	readyIs(metav1.ConditionTrue, v1alpha1.ReasonAvailable)
}
