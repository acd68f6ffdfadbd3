package launcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

func lbService(name string, uid types.UID, ports ...int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tp", UID: uid},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.50", ClusterIPs: []string{"10.43.0.50"},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}},
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Protocol: corev1.ProtocolTCP, Port: p, TargetPort: intstr.FromInt32(p), NodePort: 30000 + p})
	}
	return s
}

// The DaemonSet is K3s's: name, labels, one container per port holding
// hostPort = port, forwarding to the cluster IPs; the forwarding sysctl.
func TestSvcLBDaemonSetIsK3ss(t *testing.T) {
	svc := lbService("health-check", "0f3c2a91-aaaa-bbbb-cccc-000000000000", 2020, 2021)
	svc.Spec.Ports[1].Protocol = corev1.ProtocolUDP
	ds := svcLBDaemonSet(svc, ServiceLBImage)
	assert.Equal(t, "svclb-health-check-0f3c2a91", ds.Name)
	assert.Equal(t, "kube-system", ds.Namespace)
	assert.Equal(t, "health-check", ds.Labels[svcNameLabel])
	assert.Equal(t, "tp", ds.Spec.Template.Labels[svcNamespaceLabel])
	assert.Equal(t, "system-node-critical", ds.Spec.Template.Spec.PriorityClassName)
	assert.Equal(t, []corev1.Sysctl{{Name: "net.ipv4.ip_forward", Value: "1"}}, ds.Spec.Template.Spec.SecurityContext.Sysctls)
	require.Len(t, ds.Spec.Template.Spec.Containers, 2)
	c := ds.Spec.Template.Spec.Containers[1]
	assert.Equal(t, "lb-udp-2021", c.Name)
	assert.Equal(t, []corev1.ContainerPort{{Name: "lb-udp-2021", ContainerPort: 2021, HostPort: 2021, Protocol: corev1.ProtocolUDP}}, c.Ports)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "DEST_IPS", Value: "10.43.0.50"})
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "DEST_PORT", Value: "2021"})
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "SRC_RANGES", Value: "0.0.0.0/0"})

	// externalTrafficPolicy Local goes to the node port on the host.
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	c = svcLBDaemonSet(svc, ServiceLBImage).Spec.Template.Spec.Containers[0]
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "DEST_PORT", Value: "32020"})

	long := lbService(strings.Repeat("a", 47)+"-b-c", "12345678-x")
	assert.Equal(t, "svclb-"+strings.Repeat("a", 47)+"-12345678", SvcLBName(long))
}

func TestLBIngressListsNodesOfReadyPods(t *testing.T) {
	node := func(name string, addrs ...corev1.NodeAddress) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
	}
	pod := func(nodeName string, ready bool) *corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return &corev1.Pod{Spec: corev1.PodSpec{NodeName: nodeName}, Status: corev1.PodStatus{PodIP: "10.42.0.9",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
	}
	nodes := map[string]*corev1.Node{
		"a": node("a", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.99.0.2"}, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "a"}),
		"b": node("b", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.99.0.1"}),
	}
	assert.Equal(t, []corev1.LoadBalancerIngress{{IP: "10.99.0.1"}, {IP: "10.99.0.2"}},
		lbIngress([]*corev1.Pod{pod("a", true), pod("b", true)}, nodes))
	assert.Empty(t, lbIngress([]*corev1.Pod{pod("a", false), {Status: corev1.PodStatus{PodIP: "x"}}}, nodes), "a Pending pod has no node")
	nodes["c"] = node("c", corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.5"})
	assert.Equal(t, []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}, lbIngress([]*corev1.Pod{pod("a", true), pod("c", true)}, nodes))
}

// The controller against a fake API: a LoadBalancer Service gets its
// DaemonSet and finalizer, its ingress once a svclb pod is Ready, and
// loses all three when it becomes a ClusterIP Service.
func TestServiceLBController(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := lbService("web", "abcdef12-0000", 8080)
	cs := fake.NewClientset(svc, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.1"}}}})
	lb := &serviceLB{cs: cs, image: ServiceLBImage, logf: t.Logf}
	done := make(chan error, 1)
	go func() { done <- lb.run(ctx) }()

	var ds *appsv1.DaemonSet
	require.Eventually(t, func() bool {
		var err error
		ds, err = cs.AppsV1().DaemonSets("kube-system").Get(ctx, "svclb-web-abcdef12", metav1.GetOptions{})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	_, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx, "svclb", metav1.GetOptions{})
	require.NoError(t, err)
	s, err := cs.CoreV1().Services("tp").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, s.Finalizers, lbCleanupFinalizer)
	assert.Empty(t, s.Status.LoadBalancer.Ingress, "no Ready svclb pod yet")

	_, err = cs.CoreV1().Pods("kube-system").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ds.Name + "-x", Namespace: "kube-system", Labels: ds.Spec.Template.Labels},
		Spec:       corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{PodIP: "10.42.0.7",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := cs.CoreV1().Services("tp").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(s.Status.LoadBalancer.Ingress) == 1 && s.Status.LoadBalancer.Ingress[0].IP == "10.99.0.1"
	}, 10*time.Second, 50*time.Millisecond)

	s, err = cs.CoreV1().Services("tp").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	s.Spec.Type = corev1.ServiceTypeClusterIP
	_, err = cs.CoreV1().Services("tp").Update(ctx, s, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, ds.Name, metav1.GetOptions{})
		s, serr := cs.CoreV1().Services("tp").Get(ctx, "web", metav1.GetOptions{})
		return err != nil && serr == nil && len(s.Status.LoadBalancer.Ingress) == 0 && len(s.Finalizers) == 0
	}, 10*time.Second, 50*time.Millisecond)
	cancel()
	assert.NoError(t, <-done)
}
