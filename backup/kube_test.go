package backup

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

func TestKubeClusterFreshness(t *testing.T) {
	ctx := context.Background()
	backupTime := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	restart := backupTime.Add(2 * time.Hour)
	ready := []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Available", LastTransitionTime: metav1.NewTime(backupTime)}}
	ci := &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "tp", Name: "core"}}
	ci.Status.Conditions = ready
	p := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "tp", Name: "p1"}}
	p.Status.Conditions = ready
	p.Status.Ports = []v1alpha1.PortStatus{{Protocol: "UDP", Frontend: 5170, Backend: 5170}, {Protocol: "TCP", Frontend: 2201, Backend: 2200}}
	pod := func(name string, at time.Time) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "tp", Name: name, Labels: map[string]string{v1alpha1.LabelPipeline: "p1"}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)},
			}},
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(backupTime)},
	}}}
	s, err := manage.NewScheme()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(ci, p, pod("p1-old", backupTime), node).Build()
	k := &kubeCluster{client: func() (client.Client, error) { return c, nil }}

	// At backup time: the recorded status as it is.
	inv, err := k.Inventory(ctx, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, Inventory{
		CoreInstances: []Object{{Namespace: "tp", Name: "core", Ready: true}},
		Pipelines:     []Object{{Namespace: "tp", Name: "p1", Ready: true, Frontends: []string{"TCP/2201", "UDP/5170"}}},
	}, inv)
	require.NoError(t, k.NodeReady(ctx, time.Time{}))

	// After a restore: the datastore's Ready status of the backup's time
	// does not count.
	inv, err = k.Inventory(ctx, restart)
	require.NoError(t, err)
	assert.False(t, inv.Pipelines[0].Ready, "no pod became Ready since the restart")
	err = k.NodeReady(ctx, restart)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has not reported since K3s started")

	require.NoError(t, c.Create(ctx, pod("p1-new", restart.Add(time.Minute))))
	node.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(restart.Add(10 * time.Second))
	require.NoError(t, c.Status().Update(ctx, node))
	inv, err = k.Inventory(ctx, restart)
	require.NoError(t, err)
	assert.True(t, inv.Pipelines[0].Ready)
	require.NoError(t, k.NodeReady(ctx, restart))
}
