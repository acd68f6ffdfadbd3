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
// Labels select the operator's objects on the API server (the cache's
// label selectors); once cached, only a Service's LabelManagedBy and
// LabelCore are read (whether its frontends are the instance's own, see
// LoadBalancerFrontends), so the other kinds keep none and Services only
// those two: a handful of labels per object of thousands of pipelines.
//
// What stays, by kind:
//   - Deployment, StatefulSet: metadata without labels, spec.replicas and
//     status (readiness; owner references decide control);
//   - DaemonSet: metadata without labels and status;
//   - HorizontalPodAutoscaler: metadata without labels (owner references
//     decide control);
//   - ConfigMap: metadata without labels (its resourceVersion tells an edit);
//   - Service: metadata with the two labels above, spec.type, spec.ports
//     and status (frontends of LoadBalancer Services, node ports kept
//     across applies, whether a load balancer gave an address);
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
		o.Annotations, o.Labels = nil, nil
		o.Spec = appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}
	case *appsv1.StatefulSet:
		o.Annotations, o.Labels = nil, nil
		o.Spec = appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}
	case *appsv1.DaemonSet:
		o.Annotations, o.Labels = nil, nil
		o.Spec = appsv1.DaemonSetSpec{}
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.Annotations, o.Labels = nil, nil
		o.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{}
		o.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
	case *corev1.ConfigMap:
		o.Annotations, o.Labels = nil, nil
		o.Data, o.BinaryData = nil, nil
	case *corev1.Service:
		o.Annotations = nil
		o.Labels = serviceLabels(o.Labels)
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

// serviceLabels keeps the labels of a cached Service that are read:
// LabelManagedBy and LabelCore (nil when it has neither). The managed-by
// value is the constant when it is tpctl's, not a copy per Service.
func serviceLabels(in map[string]string) map[string]string {
	by, hasBy := in[LabelManagedBy]
	core, hasCore := in[LabelCore]
	if !hasBy && !hasCore {
		return nil
	}
	if len(in) == btoi(hasBy)+btoi(hasCore) {
		return in // already trimmed
	}
	out := make(map[string]string, 2)
	if hasBy {
		if by == ManagedBy {
			by = ManagedBy
		}
		out[LabelManagedBy] = by
	}
	if hasCore {
		out[LabelCore] = core
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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
