package operator

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestLoadBalancerCondition(t *testing.T) {
	ready := ReadyCondition(v1alpha1.WorkloadDeployment, 1, 1, true, true)
	if ready.Status != metav1.ConditionTrue {
		t.Fatalf("precondition: pods ready gives %+v", ready)
	}
	svc := func(typ corev1.ServiceType, ingress ...corev1.LoadBalancerIngress) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "tp", Name: "logs"}}
		s.Spec.Type = typ
		s.Status.LoadBalancer.Ingress = ingress
		return s
	}

	got := LoadBalancerCondition(ready, svc(corev1.ServiceTypeLoadBalancer))
	if got.Status != metav1.ConditionFalse || got.Reason != v1alpha1.ReasonLoadBalancerPending {
		t.Errorf("LoadBalancer without ingress: got %s/%s, want False/%s", got.Status, got.Reason, v1alpha1.ReasonLoadBalancerPending)
	}
	for _, want := range []string{"1/1 pod(s) ready", "tp/logs", "no load balancer", "servicelb"} {
		if !strings.Contains(got.Message, want) {
			t.Errorf("message %q lacks %q", got.Message, want)
		}
	}

	for name, s := range map[string]*corev1.Service{
		"ingress IP":       svc(corev1.ServiceTypeLoadBalancer, corev1.LoadBalancerIngress{IP: "192.0.2.10"}),
		"ingress hostname": svc(corev1.ServiceTypeLoadBalancer, corev1.LoadBalancerIngress{Hostname: "lb.example"}),
		"NodePort":         svc(corev1.ServiceTypeNodePort),
		"ClusterIP":        svc(corev1.ServiceTypeClusterIP),
		"no Service":       nil,
	} {
		if got := LoadBalancerCondition(ready, s); got != ready {
			t.Errorf("%s: condition changed to %+v", name, got)
		}
	}

	// Pods not ready: their reason stays, the load balancer is not the news.
	progressing := ReadyCondition(v1alpha1.WorkloadDeployment, 0, 1, false, true)
	if got := LoadBalancerCondition(progressing, svc(corev1.ServiceTypeLoadBalancer)); got != progressing {
		t.Errorf("pods not ready: condition changed to %+v", got)
	}
}
