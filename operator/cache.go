package operator

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// TrimForCache is the transform of every object the operator caches: it
// keeps only what the reconcilers read, so that the cache costs little per
// pipeline (a cached Deployment without its pod template is a tenth of its
// size). Nothing the operator does reads managedFields or annotations of
// the objects it builds; they are all written by server-side apply from
// their full desired state, never by read-modify-write, so a trimmed cached
// copy is never written back.
//
// What stays, by kind:
//   - Deployment, StatefulSet: metadata, spec.replicas and status
//     (readiness; owner references decide control);
//   - DaemonSet: metadata and status;
//   - HorizontalPodAutoscaler: metadata (owner references decide control);
//   - ConfigMap: metadata (its resourceVersion tells an edit);
//   - Service: metadata, spec.type, spec.ports and status (frontends of
//     LoadBalancer Services, node ports kept across applies, whether a load
//     balancer gave an address);
//   - Pod (pipeline pods only): the pipeline label, node name, container
//     names and images, phase, the PodScheduled condition and the
//     container statuses' states, restart counts and readiness, with the
//     kubelet's messages bounded (see PodHealthCause);
//   - Pipeline, CoreInstance: everything but kubectl's last-applied
//     annotation (a second copy of the spec).
//
// It is idempotent and leaves anything else (a tombstone) unchanged.
func TrimForCache(in any) (any, error) {
	obj, ok := in.(client.Object)
	if !ok {
		return in, nil
	}
	if obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Annotations = nil
		o.Spec = appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}
	case *appsv1.StatefulSet:
		o.Annotations = nil
		o.Spec = appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}
	case *appsv1.DaemonSet:
		o.Annotations = nil
		o.Spec = appsv1.DaemonSetSpec{}
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.Annotations = nil
		o.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{}
		o.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
	case *corev1.ConfigMap:
		o.Annotations = nil
		o.Data, o.BinaryData = nil, nil
	case *corev1.Service:
		o.Annotations = nil
		o.Spec = corev1.ServiceSpec{Type: o.Spec.Type, Ports: o.Spec.Ports}
	case *corev1.Pod:
		trimPod(o)
	case *v1alpha1.Pipeline:
		dropAnnotation(o, corev1.LastAppliedConfigAnnotation)
	case *v1alpha1.CoreInstance:
		dropAnnotation(o, corev1.LastAppliedConfigAnnotation)
	}
	return obj, nil
}

func dropAnnotation(obj client.Object, key string) {
	a := obj.GetAnnotations()
	if _, ok := a[key]; !ok {
		return
	}
	delete(a, key)
	if len(a) == 0 {
		a = nil
	}
	obj.SetAnnotations(a)
}
