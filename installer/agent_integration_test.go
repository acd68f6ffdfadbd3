//go:build integration

package installer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tpctl/tpctl/test/cluster"
)

// TestAgentNodeCredentialsReadButDoNotDeleteTheirNode runs the agent's
// wait and its uninstall's gate with a node's identity (system:node:<name>,
// group system:nodes) against a real API server with the Node authorizer and
// NodeRestriction, as K3s's server runs them: the node reads its own Node,
// may delete no Node, not even its own (so the server deletes it: `tpctl
// node delete`), and the gate passes once the Node is gone.
func TestAgentNodeCredentialsReadButDoNotDeleteTheirNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp := cluster.StartControlPlane(ctx, t, cluster.ControlPlaneOptions{APIServerArgs: []string{
		"--authorization-mode=Node", "--enable-admission-plugins=NodeRestriction"}})
	admin, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	for _, name := range []string{"edge-2", "srv"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		_, err := admin.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		require.NoError(t, err)
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
		_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	asNode := rest.CopyConfig(cp.RESTConfig())
	asNode.Impersonate = rest.ImpersonationConfig{UserName: "system:node:edge-2", Groups: []string{"system:nodes", "system:authenticated"}}
	node, err := newKubeCluster(asNode)
	require.NoError(t, err)

	root := t.TempDir()
	c := completed(t, Config{NodeName: "edge-2"})
	kc := filepath.Join(root, KubeletKubeconfig(c))
	require.NoError(t, os.MkdirAll(filepath.Dir(kc), 0o755))
	require.NoError(t, os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	var opened []string
	env := newEnv(Options{Root: root, Config: c, Poll: 10 * time.Millisecond,
		Cluster: func(p string) (Cluster, error) { opened = append(opened, p); return node, nil }})
	env.join = &joinRun{}

	wait := &agentWaitStep{env: env}
	done, err := wait.Done(ctx)
	require.NoError(t, err)
	assert.True(t, done, "the node reads its own Ready Node")
	assert.Equal(t, []string{kc}, opened)

	for _, name := range []string{"srv", "edge-2"} {
		err = node.DeleteNode(ctx, name)
		assert.True(t, apierrors.IsForbidden(err), "a node's credentials cannot delete node %s: %v", name, err)
	}

	gate := &nodeGoneStep{env: env}
	done, err = gate.Done(ctx)
	require.NoError(t, err)
	assert.False(t, done)
	require.Error(t, gate.Blocks())
	assert.Contains(t, gate.Blocks().Error(), "node edge-2 is still in the cluster")

	// The server deletes it (`tpctl node delete edge-2` does this).
	require.NoError(t, admin.CoreV1().Nodes().Delete(ctx, "edge-2", metav1.DeleteOptions{}))
	done, err = gate.Done(ctx)
	require.NoError(t, err)
	assert.True(t, done, "the node sees its Node is gone")
	rec := &recorder{}
	require.NoError(t, gate.Run(ctx, &stepEvents{ev: rec, step: gate.Name(), now: time.Now}))
}
