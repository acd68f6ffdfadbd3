//go:build integration

package installer

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/test/cluster"
)

// A release rolled back to a recorded revision runs that revision's chart
// and values again, as a new revision, and so do the objects it owns.
func TestHelmRollbackToRevision(t *testing.T) {
	ctx := context.Background()
	cp := cluster.StartControlPlane(ctx, t)
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	image := func() (string, string) {
		dep, err := cs.AppsV1().Deployments("tpctl-system").Get(ctx, "tp-operator", metav1.GetOptions{})
		require.NoError(t, err)
		c := dep.Spec.Template.Spec.Containers[0]
		return c.Image, strings.Join(c.Args, " ")
	}

	v1, _ := chartRelease(t, cp, charts.Operator, "tp-operator", "1.0.0", nil)
	res, err := v1.Apply(ctx)
	require.NoError(t, err)
	require.Equal(t, HelmResult{Action: "installed", Revision: 1, ChartVersion: "1.0.0"}, res)
	img, args := image()
	require.Equal(t, "tpctl.local/tpctl-operator:1.0.0", img)
	require.NotContains(t, args, "--workers=3")

	v2, _ := chartRelease(t, cp, charts.Operator, "tp-operator", "1.1.0", map[string]any{"workers": 3})
	res, err = v2.Apply(ctx)
	require.NoError(t, err)
	require.Equal(t, HelmResult{Action: "upgraded", Revision: 2, ChartVersion: "1.1.0"}, res)
	img, args = image()
	require.Equal(t, "tpctl.local/tpctl-operator:1.1.0", img)
	require.Contains(t, args, "--workers=3")

	// Refused, nothing changed: a revision not in the history, and 0
	// (Helm's "previous", a guess).
	err = v2.Rollback(ctx, 9)
	require.ErrorContains(t, err, "revision 9 is not in its history")
	err = v2.Rollback(ctx, 0)
	require.ErrorContains(t, err, "invalid revision 0")
	cur, err := v2.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, cur.Version)

	// The upgrade's seam: by namespace and name, no chart needed.
	var progress lines
	rel := HelmReleases{Kubeconfig: cp.Kubeconfig(), NoWait: true, Progress: progress.add}
	require.NoError(t, rel.Rollback(ctx, "tpctl-system", "tp-operator", 1))
	assert.Contains(t, progress.all(), "rolling back release tp-operator from revision 2")

	cur, err = v2.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, cur.Version)
	assert.Equal(t, rcommon.StatusDeployed, cur.Info.Status)
	assert.Equal(t, "1.0.0", chartVersion(cur))
	assert.Empty(t, cur.Config, "the values of revision 1")
	img, args = image()
	assert.Equal(t, "tpctl.local/tpctl-operator:1.0.0", img)
	assert.NotContains(t, args, "--workers=3")
	// Revision 2 is superseded, not lost: rolling forward works too.
	cfg, err := v2.config()
	require.NoError(t, err)
	hist, err := history(cfg, "tp-operator")
	require.NoError(t, err)
	require.Len(t, hist, 3)
	for _, r := range hist {
		if r.Version == 2 {
			assert.Equal(t, rcommon.StatusSuperseded, r.Info.Status)
		}
	}
	require.NoError(t, v2.Rollback(ctx, 2))
	img, args = image()
	assert.Equal(t, "tpctl.local/tpctl-operator:1.1.0", img)
	assert.Contains(t, args, "--workers=3")

	// Unknown release: refused.
	err = HelmReleases{Kubeconfig: cp.Kubeconfig()}.Rollback(ctx, "tpctl-system", "no-such-release", 1)
	require.ErrorContains(t, err, "the release does not exist")
}
