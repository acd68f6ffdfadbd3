package manage

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/clusternode"
)

func testNode(name string, ready bool, ip string, roles ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	for _, r := range roles {
		n.Labels["node-role.kubernetes.io/"+r] = "true"
	}
	c := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if !ready {
		c = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}
	}
	n.Status.Conditions = []corev1.NodeCondition{c}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	return n
}

// testPod is a pod of namespace ns bound to node ("": not scheduled),
// of pipeline ("": no pipeline's).
func testPod(ns, name, pipeline, node string, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: phase}}
	if pipeline != "" {
		p.Labels = map[string]string{v1alpha1.LabelPipeline: pipeline}
	}
	return p
}

func TestDescribeNodesCountsPipelinePodsPerNode(t *testing.T) {
	server, agent := testNode("a-server", true, "10.0.0.10", "control-plane", "master"), testNode("b-agent", false, "10.0.0.12")
	terminating := testPod(testNS, "syslog-old", "syslog", "a-server", corev1.PodRunning)
	terminating.DeletionTimestamp = &metav1.Time{Time: t0}
	got := DescribeNodes([]corev1.Node{*agent, *server}, []corev1.Pod{
		// A DaemonSet pipeline: one pod on each node.
		*testPod(testNS, "syslog-a", "syslog", "a-server", corev1.PodRunning),
		*testPod(testNS, "syslog-b", "syslog", "b-agent", corev1.PodRunning),
		*testPod(testNS, "web-1", "web", "a-server", corev1.PodRunning),
		*testPod(testNS, "web-2", "web", "a-server", corev1.PodPending), // bound, pulling its image
		*testPod(testNS, "web-3", "web", "", corev1.PodPending),         // not scheduled
		*testPod(testNS, "web-4", "web", "c-gone", corev1.PodRunning),   // on a node that is gone
		*testPod(testNS, "job", "", "b-agent", corev1.PodRunning),       // no pipeline's
		*testPod(testNS, "done", "web", "b-agent", corev1.PodSucceeded),
		*testPod(testNS, "failed", "web", "b-agent", corev1.PodFailed),
		*terminating,
	})
	assert.Equal(t, NodeList{Nodes: []Node{
		{Node: clusternode.Node{Name: "a-server", Roles: []string{"control-plane", "master"}, Ready: true, InternalIP: "10.0.0.10"},
			Pods: 3, Pipelines: []string{"syslog", "web"}},
		{Node: clusternode.Node{Name: "b-agent", Roles: []string{"agent"}, Reason: "NodeStatusUnknown: Kubelet stopped posting node status.", InternalIP: "10.0.0.12"},
			Pods: 1, Pipelines: []string{"syslog"}},
	}, Unplaced: 2}, got)

	assert.Equal(t, NodeList{Nodes: []Node{}}, DescribeNodes(nil, []corev1.Pod{*testPod(testNS, "x", "", "", corev1.PodPending)}))
}

func TestListNodesCountsTheNamespacesPipelinePods(t *testing.T) {
	c, _ := fakeClient(t, nil,
		testNode("a-server", true, "10.0.0.10", "control-plane"), testNode("b-agent", true, "10.0.0.12"),
		testPod(testNS, "syslog-a", "syslog", "a-server", corev1.PodRunning),
		testPod(testNS, "syslog-b", "syslog", "b-agent", corev1.PodRunning),
		testPod("other", "syslog-a", "syslog", "a-server", corev1.PodRunning), // another namespace's pipeline
		testPod(testNS, "web", "", "a-server", corev1.PodRunning),
	)
	got, err := c.ListNodes(context.Background())
	require.NoError(t, err)
	require.NoError(t, got.PodsErr)
	require.Len(t, got.Nodes, 2)
	assert.Equal(t, []string{"a-server", "b-agent"}, []string{got.Nodes[0].Name, got.Nodes[1].Name})
	assert.Equal(t, []int{1, 1}, []int{got.Nodes[0].Pods, got.Nodes[1].Pods}, "the DaemonSet pipeline is on both nodes")
	assert.Equal(t, []string{"syslog"}, got.Nodes[1].Pipelines)
	assert.Equal(t, []string{"control-plane"}, got.Nodes[0].Roles)
	assert.True(t, got.Nodes[1].Ready)
	assert.Equal(t, "10.0.0.12", got.Nodes[1].InternalIP)
}

// forbidList refuses the lists of nodes (nodes true) or of the other
// kinds, as the API server refuses a user without the permission.
func forbidList(nodes bool, resource, msg string) *interceptor.Funcs {
	return &interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, isNodes := list.(*corev1.NodeList); isNodes == nodes {
			return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New(msg))
		}
		return c.List(ctx, list, opts...)
	}}
}

func TestListNodesWithoutPermission(t *testing.T) {
	c, _ := fakeClient(t, forbidList(true, "nodes",
		`User "dev" cannot list resource "nodes" in API group "" at the cluster scope`), testNode("a-server", true, "10.0.0.10"))
	got, err := c.ListNodes(context.Background())
	require.Error(t, err)
	assert.True(t, IsForbidden(err))
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "list the cluster's nodes", ae.Op)
	assert.Contains(t, err.Error(), `nodes is forbidden: User "dev" cannot list resource "nodes"`)
	assert.Empty(t, got.Nodes)
	assert.False(t, IsForbidden(nil))
}

func TestListNodesWithoutThePods(t *testing.T) {
	c, _ := fakeClient(t, forbidList(false, "pods",
		`User "dev" cannot list resource "pods" in API group "" in the namespace "tp"`),
		testNode("a-server", true, "10.0.0.10"), testPod(testNS, "syslog-a", "syslog", "a-server", corev1.PodRunning))
	got, err := c.ListNodes(context.Background())
	require.NoError(t, err, "the nodes are shown without the counts")
	require.Len(t, got.Nodes, 1)
	assert.Equal(t, "a-server", got.Nodes[0].Name)
	assert.Zero(t, got.Nodes[0].Pods)
	require.Error(t, got.PodsErr)
	assert.True(t, IsForbidden(got.PodsErr))
	assert.Contains(t, got.PodsErr.Error(), `list pipeline pods in namespace "tp"`)
}
