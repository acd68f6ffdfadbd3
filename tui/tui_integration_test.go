//go:build integration

package tui

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/testenv"
)

// Keystrokes against a real API server with the operator running: the seed's
// reassignment example (a holds tcp/2200; b, created from the form, gets
// frontend 2201) shows on screen and in the objects.
func TestTUICreatesAPipelineOnTheCluster(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	ports := []v1alpha1.PipelinePort{tcp(2200)}
	_, err := env.Client.CreatePipeline(ctx, manage.NewPipeline(env.Namespace, "a", "", manage.PipelineChange{
		Ports: &ports, ServiceType: ptr.To(v1alpha1.ServiceTypeClusterIP)}), nil, manage.WriteOptions{})
	require.NoError(t, err)
	_, err = env.Client.WaitPipeline(ctx, "a", manage.WaitPorts, 100*time.Millisecond)
	require.NoError(t, err)

	tm := start(t, env.Client, options())
	waitFor(t, tm, "core-health (hc)", "tcp/2200")
	send(tm, "n")
	// The instances may load after the list: the form takes them when they come.
	waitFor(t, tm, "Create a pipeline in namespace "+env.Namespace, "Instance      < core >")
	send(tm, typeText("b")...)
	send(tm, "ctrl+n")
	send(tm, typeText("tcp/2200")...)
	send(tm, "ctrl+s")
	waitFor(t, tm, "pipeline b created")
	waitFor(t, tm, "2201 (moved)") // the operator's assignment arrives through the watch
	send(tm, "esc")
	waitFor(t, tm, "tcp/2201->2200")

	svc := &corev1.Service{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "b"}, svc))
		require.Len(c, svc.Spec.Ports, 1)
		assert.Equal(c, int32(2201), svc.Spec.Ports[0].Port)
		assert.Equal(c, int32(2200), svc.Spec.Ports[0].TargetPort.IntVal)
	}, 30*time.Second, 100*time.Millisecond)
	p, err := env.Client.GetPipeline(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, []v1alpha1.PipelinePort{tcp(2200)}, p.Spec.Ports)
	assert.Empty(t, p.Spec.ServiceType, "left to the instance default")

	s := screen(t, tm)
	assert.Contains(t, s, "tcp/2201->2200")
	assert.Contains(t, s, "namespace "+env.Namespace+" · live")
}

// The nodes page on a real API server: the node the test registers, as its
// kubelet would, with the pod of a DaemonSet pipeline bound to it; and, for
// a user whose Role covers the namespace but not the cluster's nodes, the
// server's refusal in words.
func TestTUIShowsTheClusterNodes(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tpctl-node-1", Labels: map[string]string{
		"kubernetes.io/hostname": "tpctl-node-1", "node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}}}
	require.NoError(t, env.Raw.Create(ctx, node))
	now := metav1.Now()
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.31"}, {Type: corev1.NodeHostName, Address: "tpctl-node-1"}}
	require.NoError(t, env.Raw.Status().Update(ctx, node))

	ds := v1alpha1.WorkloadDaemonSet
	ports := []v1alpha1.PipelinePort{tcp(5170)}
	_, err := env.Client.CreatePipeline(ctx, manage.NewPipeline(env.Namespace, "every-node", "", manage.PipelineChange{
		Ports: &ports, WorkloadKind: &ds, ServiceType: ptr.To(v1alpha1.ServiceTypeClusterIP)}), nil, manage.WriteOptions{})
	require.NoError(t, err)
	// This API server runs no controllers and no scheduler: the pod the
	// DaemonSet controller would make, bound to the node, is made here.
	require.NoError(t, env.Raw.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: env.Namespace}}))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "every-node-x7k2p", Namespace: env.Namespace,
		Labels: map[string]string{v1alpha1.LabelPipeline: "every-node"}},
		Spec: corev1.PodSpec{NodeName: node.Name, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "fluent-bit", Image: "fluent/fluent-bit:4.0"}}}}
	require.NoError(t, env.Raw.Create(ctx, pod))
	pod.Status.Phase = corev1.PodRunning
	require.NoError(t, env.Raw.Status().Update(ctx, pod))

	tm := start(t, env.Client, options())
	waitFor(t, tm, "every-node")
	send(tm, "N")
	waitFor(t, tm, "tpctl-node-1")
	s := screen(t, tm)
	assert.Regexp(t, `\n  tpctl-node-1\s+control-plane,master\s+Ready\s+192\.0\.2\.31\s+1\s+every-node\s*\n`, s)
	assert.NotContains(t, s, "not Ready")

	// A user who manages the namespace's pipelines but may not list nodes.
	require.NoError(t, env.Raw.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pipelines", Namespace: env.Namespace},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.Group}, Resources: []string{"pipelines", "coreinstances"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "events", "services"}, Verbs: []string{"get", "list", "watch"}},
		}}))
	require.NoError(t, env.Raw.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dev-pipelines", Namespace: env.Namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pipelines"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "dev"}}}))
	dev := rest.CopyConfig(env.REST)
	dev.Impersonate = rest.ImpersonationConfig{UserName: "dev", Groups: []string{"system:authenticated"}}
	devClient, err := manage.New(dev, env.Namespace)
	require.NoError(t, err)

	tm = start(t, devClient, options())
	waitFor(t, tm, "every-node")
	send(tm, "N")
	waitFor(t, tm, "You may not list the cluster's nodes", "(Forbidden, 403): nodes is forbidden: User")
	s = screen(t, tm)
	assert.Contains(t, s, `"dev" cannot list resource "nodes"`, "the server's words, wrapped")
	assert.NotContains(t, s, "tpctl-node-1")
	assert.Contains(t, s, "needs a ClusterRole")
}
