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
	for _, conds := range [][]corev1.NodeCondition{
		nil,
		{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}},
		{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "cni plugin not initialized"}},
		{{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}},
	} {
		n := corev1.Node{}
		n.Name, n.Status.Conditions = "n", conds
		ready, why := NodeReady(&n)
		got := ClusterNodes([]corev1.Node{n})[0]
		assert.Equal(t, ready, got.Ready)
		if !ready {
			assert.Equal(t, why, got.Reason)
		} else {
			assert.Empty(t, got.Reason)
		}
	}
}
