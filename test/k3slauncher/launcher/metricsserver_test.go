package launcher

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The metrics-server add-on is the kube-system Deployment tpctl's add-on
// wait looks for (installer.CoreAddons), under K3s's name and labels, and
// deploying it twice (a restart) is no error.
func TestDeployMetricsServer(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	require.NoError(t, deployMetricsServer(ctx, cs))
	require.NoError(t, deployMetricsServer(ctx, cs))
	d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k8s-app": "metrics-server"}, d.Spec.Selector.MatchLabels)
	assert.Equal(t, PauseImage, d.Spec.Template.Spec.Containers[0].Image)
	s, err := cs.CoreV1().Services("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(443), s.Spec.Ports[0].Port)
}
