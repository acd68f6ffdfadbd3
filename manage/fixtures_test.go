package manage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

const testNS = "tp"

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func instance(name string) *v1alpha1.CoreInstance {
	return &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS}}
}

func tcp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
}
func udp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: n}
}

// assigned is a pipeline as the operator leaves it: ports assigned (b's
// first port moved up by one when reassigned is true), Ready.
func assigned(name string, svc v1alpha1.ServiceType, reassigned bool, ports ...v1alpha1.PipelinePort) *v1alpha1.Pipeline {
	p := &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, Generation: 1, CreationTimestamp: metav1.NewTime(t0)},
		Spec:       v1alpha1.PipelineSpec{Instance: "core", Ports: ports, ServiceType: svc, AutoDetectPorts: ptr.To(false)},
	}
	for i, sp := range ports {
		front := sp.Port
		if reassigned && i == 0 {
			front++
		}
		p.Status.Ports = append(p.Status.Ports, v1alpha1.PortStatus{Protocol: sp.Protocol, Frontend: front, Backend: sp.Port,
			Reassigned: front != sp.Port, Since: metav1.NewTime(t0), Source: "ports[" + string(rune('0'+i)) + "]"})
	}
	reason := v1alpha1.ReasonAssigned
	if reassigned {
		reason = v1alpha1.ReasonReassigned
	}
	p.Status.ServiceType = svc
	p.Status.ReadyReplicas = 1
	p.Status.ObservedGeneration = 1
	p.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.ConditionPortsAssigned, Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: 1,
			Message: "assigned", LastTransitionTime: metav1.NewTime(t0)},
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAvailable, ObservedGeneration: 1,
			Message: "1/1 pod(s) ready", LastTransitionTime: metav1.NewTime(t0)},
	}
	return p
}

// fakeClient returns a manage.Client over controller-runtime's fake client
// holding objs, with the status subresource and the event field indexes the
// real API server has.
func fakeClient(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) (*Client, client.WithWatch) {
	t.Helper()
	s, err := NewScheme()
	require.NoError(t, err)
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.Pipeline{}, &v1alpha1.CoreInstance{}).
		WithIndex(&corev1.Event{}, "involvedObject.kind", func(o client.Object) []string {
			return []string{o.(*corev1.Event).InvolvedObject.Kind}
		}).
		WithIndex(&corev1.Event{}, "involvedObject.name", func(o client.Object) []string {
			return []string{o.(*corev1.Event).InvolvedObject.Name}
		})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	return NewWithClient(c, testNS), c
}
