package operator

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// asServed gives an object built by Objects what the API server adds and
// the cache would receive: a resourceVersion, managedFields and a status.
func asServed[T client.Object](t *testing.T, obj T) T {
	t.Helper()
	obj.SetResourceVersion("42")
	obj.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply}})
	obj.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: "{}", "other": "x"})
	return obj
}

func jsonSize(t *testing.T, obj any) int {
	t.Helper()
	data, err := json.Marshal(obj)
	require.NoError(t, err)
	return len(data)
}

func trim[T any](t *testing.T, obj T) T {
	t.Helper()
	out, err := TrimForCache(obj)
	require.NoError(t, err)
	return out.(T)
}

// TestTrimForCacheKeepsWhatReconcilesRead checks, per kind, that what the
// reconcilers read from the cache (control, resourceVersion, readiness,
// Service ports and type, load balancer address) survives the transform,
// and that the bulk (pod template, data, managedFields) does not.
func TestTrimForCacheKeepsWhatReconcilesRead(t *testing.T) {
	p := testPipeline(v1alpha1.WorkloadDeployment, v1alpha1.ServiceTypeLoadBalancer)
	objs := &Objects{Pipeline: p, Instance: testInstance(), DefaultImage: "img:1", NodePortRange: DefaultNodePortRange}

	t.Run("Deployment", func(t *testing.T) {
		d := asServed(t, typed[appsv1.Deployment](t, objs.Deployment()))
		d.Spec.Replicas = ptr.To[int32](3)
		d.Generation = 2
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, ReadyReplicas: 2, UpdatedReplicas: 3}
		before := jsonSize(t, d)
		r0, w0, s0 := WorkloadReadiness(d)
		got := trim(t, d)
		r1, w1, s1 := WorkloadReadiness(got)
		assert.Equal(t, []any{r0, w0, s0}, []any{r1, w1, s1}, "readiness")
		assert.True(t, metav1.IsControlledBy(got, p), "owner reference kept")
		assert.Equal(t, "42", got.ResourceVersion)
		assert.Nil(t, got.ManagedFields)
		assert.Empty(t, got.Spec.Template.Spec.Containers, "pod template dropped")
		assert.Nil(t, got.Labels)
		assert.Less(t, jsonSize(t, got)*3, before, "trimmed object is a fraction of the original")
	})
	t.Run("StatefulSet", func(t *testing.T) {
		s := asServed(t, typed[appsv1.StatefulSet](t, objs.StatefulSet()))
		s.Spec.Replicas = ptr.To[int32](2)
		s.Status = appsv1.StatefulSetStatus{ReadyReplicas: 2, UpdatedReplicas: 2}
		r0, w0, s0 := WorkloadReadiness(s)
		got := trim(t, s)
		r1, w1, s1 := WorkloadReadiness(got)
		assert.Equal(t, []any{r0, w0, s0}, []any{r1, w1, s1}, "readiness")
		assert.True(t, metav1.IsControlledBy(got, p))
		assert.Empty(t, got.Spec.Template.Spec.Containers)
	})
	t.Run("DaemonSet", func(t *testing.T) {
		d := asServed(t, typed[appsv1.DaemonSet](t, objs.DaemonSet()))
		d.Status = appsv1.DaemonSetStatus{NumberReady: 1, DesiredNumberScheduled: 1, UpdatedNumberScheduled: 1}
		r0, w0, s0 := WorkloadReadiness(d)
		got := trim(t, d)
		r1, w1, s1 := WorkloadReadiness(got)
		assert.Equal(t, []any{r0, w0, s0}, []any{r1, w1, s1}, "readiness")
		assert.True(t, metav1.IsControlledBy(got, p))
		assert.Empty(t, got.Spec.Template.Spec.Containers)
	})
	t.Run("ConfigMap", func(t *testing.T) {
		cm := asServed(t, typed[corev1.ConfigMap](t, objs.ConfigMap()))
		require.NotEmpty(t, cm.Data)
		got := trim(t, cm)
		assert.True(t, metav1.IsControlledBy(got, p))
		assert.Equal(t, "42", got.ResourceVersion)
		assert.Nil(t, got.Data)
		assert.Nil(t, got.Labels, "labels select the cache on the API server; nothing reads them once cached")
	})
	t.Run("Service", func(t *testing.T) {
		svc := asServed(t, typed[corev1.Service](t, objs.Service()))
		svc.Spec.Ports[0].NodePort = 31000
		svc.Spec.ClusterIP = "10.43.0.10"
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		inst := testInstance()
		inst.Namespace = "elsewhere" // its frontends count as another instance's
		wantFronts := LoadBalancerFrontends([]*corev1.Service{svc}, inst)
		ports := append([]corev1.ServicePort(nil), svc.Spec.Ports...)
		got := trim(t, svc)
		assert.Equal(t, corev1.ServiceTypeLoadBalancer, got.Spec.Type)
		assert.Equal(t, ports, got.Spec.Ports, "ports with their node ports")
		assert.Equal(t, svc.Status, got.Status, "load balancer address")
		assert.Equal(t, wantFronts, LoadBalancerFrontends([]*corev1.Service{got}, inst))
		assert.Equal(t, []string{"true"}, IndexLoadBalancer(got))
		assert.True(t, metav1.IsControlledBy(got, p))
		assert.Nil(t, got.Annotations)
		assert.Equal(t, map[string]string{LabelManagedBy: ManagedBy, LabelCore: p.Spec.Instance}, got.Labels,
			"only the labels LoadBalancerFrontends reads")
		// Its own instance still recognises it after the transform.
		own := testInstance()
		require.Len(t, LoadBalancerFrontends([]*corev1.Service{svc}, own), 0)
		assert.Len(t, LoadBalancerFrontends([]*corev1.Service{got}, own), 0)
		assert.Equal(t, got, trim(t, got.DeepCopy()), "idempotent")

		foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"app": "x"}}}
		assert.Nil(t, trim(t, foreign).Labels)
	})
	t.Run("Pipeline", func(t *testing.T) {
		pl := asServed(t, p.DeepCopy())
		pl.Annotations[v1alpha1.AnnotationHostListeners] = "tcp/22"
		want := pl.Spec.DeepCopy()
		got := trim(t, pl)
		assert.Equal(t, *want, got.Spec, "spec kept")
		assert.Equal(t, map[string]string{"other": "x", v1alpha1.AnnotationHostListeners: "tcp/22"}, got.Annotations,
			"only kubectl's last-applied copy is dropped")
		assert.Nil(t, got.ManagedFields)
		// Idempotent.
		again := trim(t, got.DeepCopy())
		assert.Equal(t, got, again)
	})
	t.Run("other", func(t *testing.T) {
		tomb := "not an object"
		out, err := TrimForCache(tomb)
		require.NoError(t, err)
		assert.Equal(t, tomb, out)
	})
}
