package managetest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

func create(t *testing.T, m *Memory, name string, ports ...v1alpha1.PipelinePort) *v1alpha1.Pipeline {
	t.Helper()
	p, err := m.CreatePipeline(context.Background(), manage.NewPipeline("tp", name, "core",
		manage.PipelineChange{Ports: &ports}), nil, manage.WriteOptions{})
	require.NoError(t, err)
	return p
}

func tcp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
}

func TestAssignAsOperatorFollowsTheOperatorsRules(t *testing.T) {
	m := NewMemory("tp")
	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core"}})
	m.Assign = m.AssignAsOperator(pipeline.PortSet{pipeline.TCP(2300): {By: "LoadBalancer Service other/web"}})

	a := create(t, m, "a", tcp(2200))
	assert.Equal(t, int32(2200), a.Status.Ports[0].Frontend)
	b := create(t, m, "b", tcp(2200))
	assert.Equal(t, int32(2201), b.Status.Ports[0].Frontend)
	assert.Equal(t, "tcp/2200 is held by pipeline a ports[0]; frontend 2201",
		meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ConditionPortsAssigned).Message)

	c := create(t, m, "c", tcp(2300), tcp(2020))
	assert.Equal(t, []int32{2301, 2021}, []int32{c.Status.Ports[0].Frontend, c.Status.Ports[1].Frontend},
		"reserved ports and the instance's health check are taken")
	assert.Contains(t, meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionPortsAssigned).Message,
		"tcp/2300 is taken by LoadBalancer Service other/web; frontend 2301")

	// Updating a keeps its unchanged entry where it is.
	a, err := m.UpdatePipeline(context.Background(), "a", manage.PipelineChange{Ports: &[]v1alpha1.PipelinePort{tcp(2200), tcp(2201)}}, manage.WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int32{2200, 2202}, []int32{a.Status.Ports[0].Frontend, a.Status.Ports[1].Frontend})

	// Numbers never wrap past 65535.
	create(t, m, "d", tcp(65535))
	e := create(t, m, "e", tcp(65535))
	cond := meta.FindStatusCondition(e.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, v1alpha1.ReasonPortsExhausted, cond.Reason)
	assert.Zero(t, e.Status.Ports[0].Frontend)
}

func TestListNodesCountsPipelinePodsAndFails(t *testing.T) {
	m := NewMemory("tp")
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a-server", Labels: map[string]string{"node-role.kubernetes.io/control-plane": "true"}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	m.SetNodes(n)
	m.SetPods(corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "syslog-x", Labels: map[string]string{v1alpha1.LabelPipeline: "syslog"}},
		Spec: corev1.PodSpec{NodeName: "a-server"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}})

	got, err := m.ListNodes(context.Background())
	require.NoError(t, err)
	require.Len(t, got.Nodes, 1)
	assert.Equal(t, []string{"control-plane"}, got.Nodes[0].Roles)
	assert.Equal(t, 1, got.Nodes[0].Pods)
	assert.Equal(t, []string{"syslog"}, got.Nodes[0].Pipelines)

	m.Fail(OpPods, errors.New("pods is forbidden"))
	got, err = m.ListNodes(context.Background())
	require.NoError(t, err)
	assert.EqualError(t, got.PodsErr, "pods is forbidden")
	assert.Zero(t, got.Nodes[0].Pods)

	m.Fail(OpNodes, errors.New("nodes is forbidden"))
	_, err = m.ListNodes(context.Background())
	assert.EqualError(t, err, "nodes is forbidden")
}
