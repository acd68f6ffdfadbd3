//go:build integration

package shared

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/cluster"
)

// cp is the package's shared control plane, set once by TestMain.
var cp *cluster.ControlPlane //nolint:gochecknoglobals // TestMain has no other way to hand it to tests

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	cp, err = cluster.NewControlPlane(ctx, cluster.ControlPlaneOptions{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		cp.DumpLogs(os.Stderr, 200)
	}
	if err := cp.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
		code = 1
	}
	os.Exit(code)
}

// namespace gives each test its own namespace on the shared API server.
func namespace(ctx context.Context, t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return ns.Name
}

func TestSharedFirst(t *testing.T) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	ns := namespace(ctx, t, cs)
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"test": "first"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "shared", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "first", cm.Data["test"])
}

func TestSharedSecond(t *testing.T) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	ns := namespace(ctx, t, cs)
	// Same API server, separate namespace: the first test's object is not here.
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=shared"})
	require.NoError(t, err)
	assert.Empty(t, list.Items)
	namespaces, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(namespaces.Items), 4, "default, kube-system, kube-public, kube-node-lease and the tests' own")
}
