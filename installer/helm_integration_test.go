//go:build integration

package installer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	appsv1 "k8s.io/api/apps/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/test/cluster"
)

var coreInstances = schema.GroupVersionResource{Group: "telemetry.tpctl.dev", Version: "v1alpha1", Resource: "coreinstances"}

func chartRelease(t *testing.T, cp *cluster.ControlPlane, chartName, release, version string, vals map[string]any) (*HelmRelease, *lines) {
	t.Helper()
	archive, err := charts.Archive(chartName, version)
	require.NoError(t, err)
	var l lines
	return &HelmRelease{
		Kubeconfig: cp.Kubeconfig(), Namespace: "tpctl-system", Name: release, Chart: archive, Values: vals,
		Timeout: time.Minute, Progress: l.add,
		// A control plane runs no pods: the operator Deployment never becomes
		// available there. Waiting is exercised on a Node (e2e).
		NoWait: chartName == charts.Operator,
	}, &l
}

func TestHelmChartsInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	cp := cluster.StartControlPlane(ctx, t)
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	crds, err := apiextclient.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)

	op, opLog := chartRelease(t, cp, charts.Operator, "tp-operator", "1.0.0", nil)
	res, err := op.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "installed", res.Action)
	assert.Contains(t, opLog.all(), "applying CRD pipelines.telemetry.tpctl.dev")
	dep, err := cs.AppsV1().Deployments("tpctl-system").Get(ctx, "tp-operator", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "tpctl.local/tpctl-operator:1.0.0", dep.Spec.Template.Spec.Containers[0].Image)
	// By default the operator watches the instance's namespace: cluster-wide
	// it only reads Services.
	_, err = cs.RbacV1().ClusterRoles().Get(ctx, "tp-operator-services", metav1.GetOptions{})
	require.NoError(t, err)

	ci, ciLog := chartRelease(t, cp, charts.CoreInstance, "tp-core-instance", "1.0.0",
		map[string]any{"name": "core", "proxy": map[string]any{"httpsProxy": "http://proxy:3128"}})
	res, err = ci.Apply(ctx)
	require.NoError(t, err, ciLog.all())
	assert.Equal(t, "installed", res.Action)
	inst, err := dyn.Resource(coreInstances).Namespace("tpctl-system").Get(ctx, "core", metav1.GetOptions{})
	require.NoError(t, err)
	proxy, _, _ := unstructured.NestedString(inst.Object, "spec", "httpsProxy")
	assert.Equal(t, "http://proxy:3128", proxy)
	port, _, _ := unstructured.NestedInt64(inst.Object, "spec", "healthCheck", "port")
	assert.Equal(t, int64(2020), port)

	done, err := ci.Done(ctx)
	require.NoError(t, err)
	assert.True(t, done)
	res, err = ci.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "unchanged", res.Action)

	// Upgrade: a new chart version with new values; the CRDs are applied
	// again (a field manager of ours shows it), the release moves on.
	op2, _ := chartRelease(t, cp, charts.Operator, "tp-operator", "1.1.0", map[string]any{"workers": 3})
	res, err = op2.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, HelmResult{Action: "upgraded", Revision: 2, ChartVersion: "1.1.0"}, res)
	dep, err = cs.AppsV1().Deployments("tpctl-system").Get(ctx, "tp-operator", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "tpctl.local/tpctl-operator:1.1.0", dep.Spec.Template.Spec.Containers[0].Image)
	assert.Contains(t, strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "), "--workers=3")
	crd, err := crds.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "pipelines.telemetry.tpctl.dev", metav1.GetOptions{})
	require.NoError(t, err)
	var managers []string
	for _, mf := range crd.ManagedFields {
		managers = append(managers, mf.Manager)
	}
	assert.Contains(t, managers, helmFieldManager)

	ci2, _ := chartRelease(t, cp, charts.CoreInstance, "tp-core-instance", "1.1.0",
		map[string]any{"name": "core", "healthCheck": map[string]any{"port": 2999}})
	res, err = ci2.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "upgraded", res.Action)
	inst, err = dyn.Resource(coreInstances).Namespace("tpctl-system").Get(ctx, "core", metav1.GetOptions{})
	require.NoError(t, err)
	port, _, _ = unstructured.NestedInt64(inst.Object, "spec", "healthCheck", "port")
	assert.Equal(t, int64(2999), port)

	// Uninstall both; CRDs stay unless asked to go. The CoreInstance owns
	// the instance's pipelines: Helm keeps it (resource policy), and a new
	// install of the release adopts it (Helm's ownership metadata matches)
	// with the new values, rather than refusing it or making another.
	require.NoError(t, ci2.Uninstall(ctx, false))
	cur, err := ci2.Current(ctx)
	require.NoError(t, err)
	assert.Nil(t, cur, "the release is gone")
	kept, err := dyn.Resource(coreInstances).Namespace("tpctl-system").Get(ctx, "core", metav1.GetOptions{})
	require.NoError(t, err, "CoreInstance kept by Helm")
	assert.Equal(t, inst.GetUID(), kept.GetUID())
	ci3, ci3Log := chartRelease(t, cp, charts.CoreInstance, "tp-core-instance", "1.1.0",
		map[string]any{"name": "core", "healthCheck": map[string]any{"port": 2998}})
	res, err = ci3.Apply(ctx)
	require.NoError(t, err, ci3Log.all())
	assert.Equal(t, "installed", res.Action)
	kept, err = dyn.Resource(coreInstances).Namespace("tpctl-system").Get(ctx, "core", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, inst.GetUID(), kept.GetUID(), "adopted, not recreated")
	port, _, _ = unstructured.NestedInt64(kept.Object, "spec", "healthCheck", "port")
	assert.Equal(t, int64(2998), port, "the adopted CoreInstance takes the install's values")
	require.NoError(t, ci3.Uninstall(ctx, false))
	require.NoError(t, op2.Uninstall(ctx, false))
	_, err = cs.AppsV1().Deployments("tpctl-system").Get(ctx, "tp-operator", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	_, err = crds.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "pipelines.telemetry.tpctl.dev", metav1.GetOptions{})
	require.NoError(t, err, "CRDs outlive an uninstall")
	require.NoError(t, op2.Uninstall(ctx, true), "a second uninstall is a no-op, then CRDs go")
	_, err = crds.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "pipelines.telemetry.tpctl.dev", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "CRDs deleted on request: %v", err)
	_, err = crds.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "coreinstances.telemetry.tpctl.dev", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "and with them the kept CoreInstance: %v", err)
}

func TestHelmRecoversPendingInstallOnCluster(t *testing.T) {
	ctx := context.Background()
	cp := cluster.StartControlPlane(ctx, t)
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)

	op, log := chartRelease(t, cp, charts.Operator, "tp-operator", "1.0.0", nil)
	_, err = op.Apply(ctx)
	require.NoError(t, err)

	// Leave the release as a killed `helm install` does: pending-install in
	// the release Secret, resources partly there.
	cfg, err := op.config()
	require.NoError(t, err)
	rel, err := latest(cfg, "tp-operator")
	require.NoError(t, err)
	rel.Info.Status = rcommon.StatusPendingInstall
	require.NoError(t, cfg.Releases.Update(rel))
	up := action.NewUpgrade(cfg)
	up.Namespace, up.WaitStrategy = "tpctl-system", kube.HookOnlyStrategy
	ch, err := op.LoadChart()
	require.NoError(t, err)
	_, err = up.Run("tp-operator", ch, nil)
	require.ErrorContains(t, err, "another operation (install/upgrade/rollback) is in progress", "precondition: Helm refuses to upgrade a pending release")

	res, err := op.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "installed", res.Action)
	assert.Equal(t, "uninstalled pending-install revision 1", res.Recovered)
	assert.Contains(t, log.all(), "stuck in pending-install")
	cur, err := op.Current(ctx)
	require.NoError(t, err)
	assert.Equal(t, rcommon.StatusDeployed, cur.Info.Status)
	var d *appsv1.Deployment
	d, err = cs.AppsV1().Deployments("tpctl-system").Get(ctx, "tp-operator", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "Helm", d.Labels["app.kubernetes.io/managed-by"])
}
