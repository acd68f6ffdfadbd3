//go:build integration

package operator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// readyReason waits until the pipeline's Ready condition has the reason and
// returns its message.
func readyReason(t *testing.T, ns, name, reason string) string {
	t.Helper()
	var msg string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		p := &v1alpha1.Pipeline{}
		require.NoError(c, kc.Get(context.Background(), key(ns, name), p))
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		require.NotNil(c, ready, "Ready condition")
		assert.Equal(c, metav1.ConditionFalse, ready.Status)
		assert.Equal(c, reason, ready.Reason)
		msg = ready.Message
	}, waitFor, 50*time.Millisecond, "pipeline %s/%s never reported %s", ns, name, reason)
	return msg
}

// untouched asserts that obj still has the given resourceVersion, no owner
// and no field managed by the operator.
func untouched(t *testing.T, obj client.Object, resourceVersion string) {
	t.Helper()
	require.NoError(t, kc.Get(context.Background(), client.ObjectKeyFromObject(obj), obj))
	assert.Equal(t, resourceVersion, obj.GetResourceVersion(), "%T %s was changed", obj, obj.GetName())
	assert.Empty(t, obj.GetOwnerReferences(), "%T %s got an owner", obj, obj.GetName())
	for _, mf := range obj.GetManagedFields() {
		assert.NotEqual(t, FieldManager, mf.Manager, "%T %s has fields managed by the operator", obj, obj.GetName())
	}
}

func TestForeignObjectsAreNeverTakenOver(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)

	victim := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "victim", Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg-config", Namespace: ns},
		Data: map[string]string{"keep": "me"}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "sts-headless", Namespace: ns},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "x", Protocol: corev1.ProtocolTCP, Port: 9}}}}
	// A Deployment that carries the operator's labels (so it is in the
	// operator's cache) but is not controlled by the pipeline.
	labelled := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "dep", Namespace: ns,
		Labels: map[string]string{LabelManagedBy: ManagedBy}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}}}
	for _, obj := range []client.Object{victim, cm, headless, labelled} {
		require.NoError(t, kc.Create(ctx, obj))
	}

	vp := newPipeline(ns, "victim", tcpPort(8080))
	vp.Spec.ServiceType = v1alpha1.ServiceTypeClusterIP
	cp := newPipeline(ns, "cfg", tcpPort(8081))
	sp := newPipeline(ns, "sts", tcpPort(8082))
	sp.Spec.Workload = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadStatefulSet, Replicas: ptr.To[int32](1)}
	dp := newPipeline(ns, "dep", tcpPort(8083))
	for _, p := range []*v1alpha1.Pipeline{vp, cp, sp, dp} {
		require.NoError(t, kc.Create(ctx, p))
	}

	assert.Equal(t, fmt.Sprintf("Service %s/victim exists and is not managed by pipeline victim", ns),
		readyReason(t, ns, "victim", v1alpha1.ReasonNameTaken))
	assert.Equal(t, fmt.Sprintf("ConfigMap %s/cfg-config exists and is not managed by pipeline cfg", ns),
		readyReason(t, ns, "cfg", v1alpha1.ReasonNameTaken))
	assert.Equal(t, fmt.Sprintf("Service %s/sts-headless exists and is not managed by pipeline sts", ns),
		readyReason(t, ns, "sts", v1alpha1.ReasonNameTaken))
	assert.Equal(t, fmt.Sprintf("Deployment %s/dep exists and is not managed by pipeline dep", ns),
		readyReason(t, ns, "dep", v1alpha1.ReasonNameTaken))

	untouched(t, victim, victim.ResourceVersion)
	require.Len(t, victim.Spec.Ports, 1, "no port was added to the foreign Service")
	untouched(t, cm, cm.ResourceVersion)
	untouched(t, headless, headless.ResourceVersion)
	untouched(t, labelled, labelled.ResourceVersion)
	// Nothing else of these pipelines was created either.
	for _, k := range []struct {
		obj  client.Object
		name string
	}{
		{&corev1.ConfigMap{}, "victim-config"}, {&appsv1.Deployment{}, "victim"},
		{&appsv1.Deployment{}, "cfg"}, {&corev1.Service{}, "cfg"},
		{&appsv1.StatefulSet{}, "sts"}, {&corev1.Service{}, "sts"},
		{&corev1.ConfigMap{}, "dep-config"}, {&corev1.Service{}, "dep"},
	} {
		err := kc.Get(ctx, key(ns, k.name), k.obj)
		assert.True(t, apierrors.IsNotFound(err), "%T %s was created: %v", k.obj, k.name, err)
	}
	// Deleting the pipeline leaves the Service: it never became its owner.
	require.NoError(t, kc.Delete(ctx, vp))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(kc.Get(ctx, key(ns, "victim"), &v1alpha1.Pipeline{}))
	}, waitFor, 50*time.Millisecond)
	untouched(t, victim, victim.ResourceVersion)
}

// A pipeline named kubernetes in namespace default must not touch the API
// server's own Service.
func TestPipelineNamedKubernetesLeavesTheAPIServiceAlone(t *testing.T) {
	ctx := context.Background()
	api := &corev1.Service{}
	require.Eventually(t, func() bool { return kc.Get(ctx, key("default", "kubernetes"), api) == nil },
		waitFor, 100*time.Millisecond, "the API server's Service default/kubernetes")
	rv := api.ResourceVersion

	inst := &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "own", Namespace: "default"},
		Spec: v1alpha1.CoreInstanceSpec{HealthCheck: v1alpha1.HealthCheckSpec{Enabled: ptr.To(false)}}}
	require.NoError(t, kc.Create(ctx, inst))
	p := newPipeline("default", "kubernetes", tcpPort(443))
	p.Spec.Instance = "own"
	require.NoError(t, kc.Create(ctx, p))
	t.Cleanup(func() {
		_ = kc.Delete(context.Background(), p)
		_ = kc.Delete(context.Background(), inst)
	})

	assert.Equal(t, "Service default/kubernetes exists and is not managed by pipeline kubernetes",
		readyReason(t, "default", "kubernetes", v1alpha1.ReasonNameTaken))
	untouched(t, api, rv)
	assert.True(t, apierrors.IsNotFound(kc.Get(ctx, key("default", "kubernetes"), &appsv1.Deployment{})))
}
