package manage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func service(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.96.0.20", Ports: ports}}
}

func svcPort(proto corev1.Protocol, port, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Protocol: proto, Port: port, NodePort: nodePort}
}

func node(addrs ...corev1.NodeAddress) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestComputeEndpointsPerServiceType(t *testing.T) {
	nodes := []corev1.Node{node(corev1.NodeAddress{Type: corev1.NodeHostName, Address: "edge"},
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.0.2.10"})}

	p := assigned("b", v1alpha1.ServiceTypeClusterIP, true, tcp(2200), udp(5140))
	eps := ComputeEndpoints(p, service("b", corev1.ServiceTypeClusterIP, svcPort("TCP", 2201, 0), svcPort("UDP", 5140, 0)), nodes)
	require.Len(t, eps, 2)
	assert.Equal(t, Endpoint{Protocol: v1alpha1.ProtocolTCP, Frontend: 2201, Backend: 2200, Reassigned: true,
		ServiceType: v1alpha1.ServiceTypeClusterIP, Address: "10.96.0.20:2201", DNS: "b.tp.svc:2201", Scope: ScopeCluster,
		Source: "ports[0]"}, eps[0])
	assert.Equal(t, "10.96.0.20:5140", eps[1].Address)

	p = assigned("n", v1alpha1.ServiceTypeNodePort, false, tcp(30100), tcp(5170))
	eps = ComputeEndpoints(p, service("n", corev1.ServiceTypeNodePort, svcPort("TCP", 30100, 30100), svcPort("TCP", 5170, 31999)), nodes)
	assert.Equal(t, "192.0.2.10:30100", eps[0].Address, "the internal IP beats the host name")
	assert.Equal(t, ScopeNode, eps[0].Scope)
	assert.Empty(t, eps[0].Note)
	assert.Equal(t, "192.0.2.10:31999", eps[1].Address)
	assert.Equal(t, int32(31999), eps[1].NodePort)
	assert.Contains(t, eps[1].Note, "node port differs from the frontend")

	p = assigned("l", v1alpha1.ServiceTypeLoadBalancer, false, tcp(24224))
	lb := service("l", corev1.ServiceTypeLoadBalancer, svcPort("TCP", 24224, 32000))
	eps = ComputeEndpoints(p, lb, nodes)
	assert.Equal(t, "192.0.2.10:32000", eps[0].Address, "no load balancer address yet: the node port")
	assert.Equal(t, "load balancer address pending; using the node port", eps[0].Note)
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}}
	eps = ComputeEndpoints(p, lb, nodes)
	assert.Equal(t, "198.51.100.7:24224", eps[0].Address)
	assert.Equal(t, ScopeExternal, eps[0].Scope)

	eps = ComputeEndpoints(p, lb, []corev1.Node{node(corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.1"},
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"})})
	assert.Equal(t, "198.51.100.7:24224", eps[0].Address)
	assert.Equal(t, "203.0.113.1", NodeAddress([]corev1.Node{node(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
		corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.1"})}), "the external IP is preferred")
}

func TestComputeEndpointsWithoutAddress(t *testing.T) {
	p := assigned("a", v1alpha1.ServiceTypeNodePort, false, tcp(80), tcp(81))
	p.Status.Ports[1].Frontend = 0
	eps := ComputeEndpoints(p, nil, nil)
	assert.Equal(t, "Service not created yet", eps[0].Note)
	assert.Contains(t, eps[1].Note, "no frontend")
	assert.Empty(t, eps[0].Address)

	eps = ComputeEndpoints(p, service("a", corev1.ServiceTypeNodePort, svcPort("TCP", 80, 30080)), nil)
	assert.Equal(t, "node port 30080; no node address known", eps[0].Note)
	eps = ComputeEndpoints(p, service("a", corev1.ServiceTypeNodePort), nil)
	assert.Equal(t, "not in the Service yet", eps[0].Note)
}

func TestEndpointsReadsServiceAndNodes(t *testing.T) {
	n := node(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.99.0.1"})
	c, _ := fakeClient(t, nil, assigned("a", v1alpha1.ServiceTypeNodePort, false, tcp(30500)),
		service("a", corev1.ServiceTypeNodePort, svcPort("TCP", 30500, 30500)), &n)
	eps, err := c.Endpoints(context.Background(), "a")
	require.NoError(t, err)
	require.Len(t, eps, 1)
	assert.Equal(t, "10.99.0.1:30500", eps[0].Address)

	_, err = c.Endpoints(context.Background(), "nope")
	var nf *NotFoundError
	assert.ErrorAs(t, err, &nf)
}
