package installer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/internal/clusternode"
)

// The node list of `tpctl status` and the terminal UI's nodes page say
// Ready, and why not, in the words of the installer's waits.
func TestClusterNodesSayReadyAsTheWaitsDo(t *testing.T) {
	assert.Equal(t, RoleAgent, clusternode.RoleAgent, "a node without role labels is an agent, as join records it")
	for _, c := range []struct {
		conds []corev1.NodeCondition
		ready bool
		why   string
	}{
		{nil, false, "no Ready condition yet"},
		{[]corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}}, true, "Ready"},
		{[]corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "cni plugin not initialized"}},
			false, "KubeletNotReady: cni plugin not initialized"},
		{[]corev1.NodeCondition{{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}},
			false, "NodeStatusUnknown: Kubelet stopped posting node status."},
	} {
		n := corev1.Node{}
		n.Name, n.Status.Conditions = "n", c.conds
		ready, why := NodeReady(&n)
		assert.Equal(t, c.ready, ready)
		assert.Equal(t, c.why, why)
		got := ClusterNodes([]corev1.Node{n})[0]
		assert.Equal(t, ready, got.Ready)
		if !ready {
			assert.Equal(t, why, got.Reason)
		} else {
			assert.Empty(t, got.Reason, "a Ready node shows no reason")
		}
	}
}
