package installer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The chart steps' API reads nodes and Deployments through the waits' one
// reader, over the same client.
func TestChartAPIReadsThroughTheClusterReader(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "tpctl-system", Name: "tp-operator", Generation: 2}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge"}},
	)
	var api ChartAPI = &kubeChartAPI{kubeCluster: &kubeCluster{cs: cs}}
	var cl Cluster = api
	d, err := cl.Deployment(ctx, "tpctl-system", "tp-operator")
	require.NoError(t, err)
	assert.Equal(t, int64(2), d.Generation)
	n, err := api.Node(ctx, "edge")
	require.NoError(t, err)
	assert.Equal(t, "edge", n.Name)
	_, err = api.Deployment(ctx, "tpctl-system", "missing")
	require.Error(t, err)
}

// Both readers open the kubeconfig the same way: each request bounded, the
// installer named as the agent.
func TestReadersShareOneClientConfiguration(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "k3s.yaml")
	require.NoError(t, os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	cfg, err := restConfig(kc)
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, cfg.Timeout)
	assert.Equal(t, "tpctl-installer", cfg.UserAgent)
	assert.Equal(t, "https://127.0.0.1:6443", cfg.Host)
	_, err = NewCluster(kc)
	require.NoError(t, err)
	api, err := NewChartAPI(kc)
	require.NoError(t, err)
	k, ok := api.(*kubeChartAPI)
	require.True(t, ok)
	require.NotNil(t, k.kubeCluster)

	_, err = restConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "load kubeconfig")
}
