package clusternode

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func node(name string, labels map[string]string, cond *corev1.NodeCondition, addrs ...corev1.NodeAddress) corev1.Node {
	n := corev1.Node{}
	n.Name, n.Labels = name, labels
	if cond != nil {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, *cond}
	}
	n.Status.Addresses = addrs
	return n
}

func TestDescribeAll(t *testing.T) {
	notReady := &corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "container runtime network not ready"}
	ready := &corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	unknown := &corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}
	got := DescribeAll([]corev1.Node{
		node("c-agent", map[string]string{"kubernetes.io/hostname": "c-agent", "node-role.kubernetes.io/": "true"}, unknown,
			corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.7"}, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.13"}),
		node("b-agent", nil, notReady, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b-agent"},
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.12"}, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::12"}),
		node("a-server", map[string]string{"node-role.kubernetes.io/master": "true", "node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true"}, ready,
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.10"}),
		node("d-new", nil, nil),
	})
	// An external address is not the internal one; an empty role label is no role.
	assert.Equal(t, []Node{
		{Name: "a-server", Roles: []string{"control-plane", "etcd", "master"}, Ready: true, InternalIP: "10.0.0.10"},
		{Name: "b-agent", Roles: []string{RoleAgent}, Reason: "KubeletNotReady: container runtime network not ready", InternalIP: "10.0.0.12"},
		{Name: "c-agent", Roles: []string{RoleAgent}, Reason: "NodeStatusUnknown: Kubelet stopped posting node status.", InternalIP: "10.0.0.13"},
		{Name: "d-new", Roles: []string{RoleAgent}, Reason: "no Ready condition yet"},
	}, got)
	assert.Empty(t, DescribeAll(nil))
}
