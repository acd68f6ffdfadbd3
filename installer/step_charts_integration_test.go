//go:build integration

package installer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/cluster"
)

// chartEnv is a host root whose K3s kubeconfig points at a control plane.
func chartEnv(t *testing.T, cp *cluster.ControlPlane, keepData bool) (*Env, Charts) {
	t.Helper()
	root := t.TempDir()
	kc, err := os.ReadFile(cp.Kubeconfig())
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(KubeconfigPath)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, KubeconfigPath), kc, 0o600))
	cfg := completed(t, Config{HTTPProxy: "http://proxy.test:3128", NoProxy: []string{"corp.example"}})
	env := newEnv(Options{Root: root, Config: cfg, ChartAPI: NewChartAPI, Poll: 100 * time.Millisecond, PID: 99})
	env.keepData = keepData
	// A control plane runs no pods: Helm does not wait for the operator
	// Deployment (waiting is exercised on a node, end to end).
	return env, Charts{Version: "v1.2.3", NoWait: true, Timeout: time.Minute, ReadyTimeout: time.Minute}
}

// chartPlan is the plan of the steps that talk to the API server only (no
// containerd here): the two releases and the wait, or their undo.
func chartPlan(env *Env, ch Charts, undo bool) *Plan {
	steps := ch.Steps(env)[2:]
	if undo {
		var u []Step
		for i := 1; i >= 0; i-- {
			u = append(u, &undoStep{step: steps[i], undo: steps[i].(Undoer)})
		}
		steps = u
	}
	return &Plan{Name: "charts", Steps: steps, Root: env.Root, State: env.State, PID: env.PID, Now: env.Now}
}

func TestChartStepsAgainstAPIServer(t *testing.T) {
	ctx := context.Background()
	cp := cluster.StartControlPlane(ctx, t)
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	ext, err := apiextclient.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	env, ch := chartEnv(t, cp, false)
	home := t.TempDir()
	t.Setenv("HOME", home)

	// The operator stands in: once the CoreInstance exists, it reports
	// Ready for the instance's generation (no kubelet runs its pods here).
	operated := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			inst, err := dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, "core", metav1.GetOptions{})
			if err != nil {
				continue
			}
			cond := map[string]any{"type": "Ready", "status": "True", "reason": "Available", "message": "1 pipeline(s) ready",
				"observedGeneration": inst.GetGeneration(), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
			_ = unstructured.SetNestedSlice(inst.Object, []any{cond}, "status", "conditions")
			_, err = dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).UpdateStatus(ctx, inst, metav1.UpdateOptions{})
			operated <- err
			return
		}
		operated <- context.DeadlineExceeded
	}()

	rec := &recorder{}
	require.NoError(t, Run(ctx, chartPlan(env, ch, false), rec), cp.Logs(30))
	assert.DirExists(t, env.FS.Path(HelmCacheDir), "Helm's discovery cache lives in the state dir")
	assert.NoDirExists(t, filepath.Join(home, ".kube"), "nothing is cached in $HOME, where uninstall would not look")
	require.NoError(t, <-operated)
	assert.Equal(t, []string{"install operator chart", "install core-instance chart", "wait for core instance"}, rec.of(EventDone))
	assert.Contains(t, rec.messages("wait for core instance", EventProgress),
		"waiting for CoreInstance default/core to be Ready (not reconciled by the operator yet)")
	assert.Contains(t, strings.Join(rec.messages("install operator chart", EventProgress), "\n"), "applying CRD coreinstances.telemetry.tpctl.dev")

	for _, r := range []struct{ ns, name, chart string }{{OperatorNamespace, OperatorRelease, "tp-operator"}, {InstanceNamespace, InstanceRelease, "tp-core-instance"}} {
		h := &HelmRelease{Kubeconfig: env.Kubeconfig(), Namespace: r.ns, Name: r.name}
		cur, err := h.Current(ctx)
		require.NoError(t, err)
		require.NotNil(t, cur, r.name)
		assert.Equal(t, release.StatusDeployed, cur.Info.Status)
		assert.Equal(t, r.chart, cur.Chart.Metadata.Name)
		assert.Equal(t, "1.2.3", cur.Chart.Metadata.Version)
	}
	dep, err := cs.AppsV1().Deployments(OperatorNamespace).Get(ctx, OperatorRelease, metav1.GetOptions{})
	require.NoError(t, err)
	c := dep.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", c.Image)
	assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)
	assert.Contains(t, c.Args, "--node-port-range=30000-32767")
	inst, err := dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, "core", metav1.GetOptions{})
	require.NoError(t, err)
	spec, _, _ := unstructured.NestedMap(inst.Object, "spec")
	assert.Equal(t, "http://proxy.test:3128", spec["httpProxy"])
	assert.Equal(t, "corp.example,localhost,127.0.0.1,::1,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local", spec["noProxy"])
	port, _, _ := unstructured.NestedInt64(inst.Object, "spec", "healthCheck", "port")
	assert.Equal(t, int64(2020), port)

	// Second run: no change anywhere.
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(env, ch, false), rec))
	assert.Equal(t, []string{"install operator chart", "install core-instance chart", "wait for core instance"}, rec.of(EventSkipped))
	assert.Empty(t, rec.of(EventDone))

	// Status reads the same API.
	rep := Status(ctx, env.Options)
	require.NotNil(t, rep.Operator)
	assert.Equal(t, OperatorStatus{Namespace: OperatorNamespace, Name: OperatorRelease, Image: "tpctl.local/tpctl-operator:1.2.3", Replicas: 1}, *rep.Operator)
	require.Len(t, rep.Instances, 1)
	assert.True(t, rep.Instances[0].Ready)
	assert.Equal(t, int32(2020), rep.Instances[0].HealthCheckPort)
	require.NotNil(t, rep.Pipelines)
	assert.Equal(t, 0, *rep.Pipelines)

	// Uninstall with --keep-data: the releases go, the CRDs stay.
	keep, _ := chartEnv(t, cp, true)
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(keep, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart"}, rec.of(EventDone))
	_, err = dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, "core", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "CoreInstance removed with its release: %v", err)
	_, err = cs.AppsV1().Deployments(OperatorNamespace).Get(ctx, OperatorRelease, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "operator removed with its release: %v", err)
	for _, name := range TpctlCRDs() {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		assert.NoError(t, err, "CRD %s kept", name)
	}

	// Full uninstall: nothing of the releases is left, then the CRDs go.
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(env, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart"}, rec.of(EventSkipped))
	assert.Equal(t, []string{"undo install operator chart"}, rec.of(EventDone), "the CRDs were still there")
	for _, name := range TpctlCRDs() {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "CRD %s deleted: %v", name, err)
	}
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(env, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart"}, rec.of(EventSkipped))

	rep = Status(ctx, env.Options)
	assert.Contains(t, rep.Unavailable["operator"], "not installed")
	assert.Equal(t, "not installed (the CoreInstance CRD is absent)", rep.Unavailable["instance"])
}
