//go:build integration

package installer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	corev1 "k8s.io/api/core/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/operator"
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
	steps := ch.steps(env)[2:]
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
	// Ready for the instance's generation (no kubelet runs its pods here),
	// once the wait step has seen it unreconciled.
	rec := &recorder{}
	operated := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			if len(rec.messages("wait for core instance", EventProgress)) == 0 {
				continue
			}
			inst, err := dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, "core", metav1.GetOptions{})
			if err != nil {
				continue
			}
			cond := map[string]any{"type": "Ready", "status": "True", "reason": "Available", "message": "1 pipeline(s) ready",
				"observedGeneration": inst.GetGeneration(), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
			_ = unstructured.SetNestedSlice(inst.Object, []any{cond}, "status", "conditions")
			if _, err = dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).UpdateStatus(ctx, inst, metav1.UpdateOptions{}); err != nil {
				operated <- err
				return
			}
			// The health-check pipeline's Service, with the address
			// servicelb would give it.
			svc, err := cs.CoreV1().Services(InstanceNamespace).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "core-health", Namespace: InstanceNamespace},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "core-health"},
					Ports: []corev1.ServicePort{{Name: "health", Protocol: corev1.ProtocolTCP, Port: HealthCheckPort}}},
			}, metav1.CreateOptions{})
			if err == nil {
				svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.80"}}
				_, err = cs.CoreV1().Services(InstanceNamespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
			}
			operated <- err
			return
		}
		operated <- context.DeadlineExceeded
	}()

	var probed []string
	ch.HealthProbe = func(_ context.Context, url string) error { probed = append(probed, url); return nil }
	require.NoError(t, Run(ctx, chartPlan(env, ch, false), rec), cp.Logs(30))
	assert.Equal(t, []string{"http://192.0.2.80:2020/api/v1/health"}, probed, "the Service's load balancer address, asked once it exists")
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
		assert.Equal(t, rcommon.StatusDeployed, cur.Info.Status)
		assert.Equal(t, r.chart, cur.Chart.Metadata.Name)
		assert.Equal(t, "1.2.3", cur.Chart.Metadata.Version)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, OperatorNamespace, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"], "tpctl created the operator's namespace")
	def, err := cs.CoreV1().Namespaces().Get(ctx, InstanceNamespace, metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, def.Labels, "pod-security.kubernetes.io/enforce", "default is not tpctl's namespace")
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

	// Uninstall with --keep-data: the operator's release goes; the CRDs,
	// the instance's release and its CoreInstance stay.
	keep, _ := chartEnv(t, cp, true)
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(keep, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart"}, rec.of(EventSkipped))
	assert.Equal(t, []string{"undo install operator chart"}, rec.of(EventDone))
	_, err = dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, "core", metav1.GetOptions{})
	assert.NoError(t, err, "CoreInstance kept with the data")
	_, err = cs.AppsV1().Deployments(OperatorNamespace).Get(ctx, OperatorRelease, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "operator removed with its release: %v", err)
	for _, name := range TpctlCRDs() {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		assert.NoError(t, err, "CRD %s kept", name)
	}

	// Full uninstall: the instance's release and its CoreInstance go, then
	// the CRDs.
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(env, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart"}, rec.of(EventDone), "the CRDs were still there")
	_, err = dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, "core", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "CoreInstance deleted: %v", err)
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

// startGarbageCollector runs kube-controller-manager with only its garbage
// collector against the control plane, so that deleting an owner deletes
// its dependents as on a node.
func startGarbageCollector(t *testing.T, cp *cluster.ControlPlane) {
	t.Helper()
	bins, err := cluster.FindBinaries()
	require.NoError(t, err)
	paths, err := bins.Require("kube-controller-manager")
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, paths["kube-controller-manager"],
		"--kubeconfig="+cp.Kubeconfig(), "--authentication-kubeconfig="+cp.Kubeconfig(), "--authorization-kubeconfig="+cp.Kubeconfig(),
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port), "--leader-elect=false", "--profiling=false",
		"--controllers=garbagecollector")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kube-controller-manager:\n%s", tail(out.String(), 30))
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pipelineSeen is what must survive an uninstall that keeps the data.
type pipelineSeen struct {
	UID       types.UID
	Frontends string
}

// pipelinesOf waits until every pipeline of the instance has its ports
// assigned and the instance as owner, and returns them by name.
func pipelinesOf(t *testing.T, kc client.Client, inst *v1alpha1.CoreInstance, want int) map[string]pipelineSeen {
	t.Helper()
	out := map[string]pipelineSeen{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var l v1alpha1.PipelineList
		require.NoError(c, kc.List(context.Background(), &l, client.InNamespace(inst.Namespace)))
		require.Len(c, l.Items, want)
		for _, p := range l.Items {
			cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
			require.NotNil(c, cond, "pipeline %s has its ports", p.Name)
			require.Equal(c, metav1.ConditionTrue, cond.Status, "pipeline %s: %s", p.Name, cond.Message)
			require.Equal(c, p.Generation, cond.ObservedGeneration)
			var owned bool
			for _, ref := range p.OwnerReferences {
				owned = owned || ref.UID == inst.UID
			}
			require.True(c, owned, "pipeline %s is owned by CoreInstance %s", p.Name, inst.UID)
			var fronts []string
			for _, st := range p.Status.Ports {
				fronts = append(fronts, fmt.Sprintf("%s/%d->%d", st.Protocol, st.Frontend, st.Backend))
			}
			out[p.Name] = pipelineSeen{UID: p.UID, Frontends: strings.Join(fronts, ",")}
		}
	}, time.Minute, 100*time.Millisecond)
	return out
}

// Issue: `uninstall --keep-data` then `install` lost every pipeline (the
// core-instance release took its CoreInstance along, and the garbage
// collector every Pipeline it owns). Now the CoreInstance and its pipelines
// outlive the uninstall, the install finds them as they were, and the
// recovery of a stuck release adopts the CoreInstance instead of deleting it.
func TestUninstallKeepDataThenInstallKeepsPipelines(t *testing.T) {
	ctx := context.Background()
	cp := cluster.StartControlPlane(ctx, t)
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	ext, err := apiextclient.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	scheme, err := operator.NewScheme()
	require.NoError(t, err)
	kc, err := client.New(cp.RESTConfig(), client.Options{Scheme: scheme})
	require.NoError(t, err)
	env, ch := chartEnv(t, cp, false)
	t.Setenv("HOME", t.TempDir())
	// The two releases only: the in-process operator below runs no pods,
	// so the instance never becomes Ready here.
	install := func(env *Env) *recorder {
		t.Helper()
		steps := ch.steps(env)[2:4]
		rec := &recorder{}
		require.NoError(t, Run(ctx, &Plan{Name: "charts", Steps: steps, Root: env.Root, State: env.State, PID: env.PID, Now: env.Now}, rec), cp.Logs(30))
		return rec
	}
	install(env)
	startGarbageCollector(t, cp)

	// Only the release's own CoreInstances are ever deleted by uninstall:
	// one a user made, and one of another release, are not the release's.
	for name, ann := range map[string]map[string]string{
		"mine":  nil,
		"other": {helmReleaseNameAnnotation: "other", helmReleaseNamespaceAnnotation: InstanceNamespace},
	} {
		require.NoError(t, kc.Create(ctx, &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: InstanceNamespace, Annotations: ann}}))
	}
	capi, err := NewChartAPI(env.Kubeconfig())
	require.NoError(t, err)
	own, err := capi.ReleaseInstances(ctx, InstanceNamespace, InstanceRelease)
	require.NoError(t, err)
	assert.Equal(t, []string{DefaultInstanceName}, own, "uninstall deletes only the release's CoreInstances")
	for _, name := range []string{"mine", "other"} {
		require.NoError(t, kc.Delete(ctx, &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: InstanceNamespace}}))
	}

	// The operator, in process, assigns frontends and owns the pipelines.
	reserved, err := operator.DefaultReservedPorts()
	require.NoError(t, err)
	mgr, err := operator.NewManager(cp.RESTConfig(), operator.Options{MetricsAddr: "0", ProbeAddr: "0", Reserved: reserved,
		DefaultImage: "tpctl.test/sink:1", Workers: 2, Name: "keep-data"})
	require.NoError(t, err)
	opCtx, stopOperator := context.WithCancel(ctx)
	opDone := make(chan error, 1)
	go func() { opDone <- mgr.Start(opCtx) }()
	t.Cleanup(func() { stopOperator(); <-opDone })

	inst := &v1alpha1.CoreInstance{}
	require.NoError(t, kc.Get(ctx, client.ObjectKey{Namespace: InstanceNamespace, Name: "core"}, inst))
	pipelinesOf(t, kc, inst, 1) // the health check
	tcp := func(n int32) v1alpha1.PipelinePort {
		return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
	}
	for i, p := range []struct {
		name  string
		ports []v1alpha1.PipelinePort
	}{
		{"logs-a", []v1alpha1.PipelinePort{tcp(5170)}},
		{"logs-b", []v1alpha1.PipelinePort{tcp(5170)}}, // newer: frontend 5171
		{"syslog", []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolUDP, Port: 5140}, tcp(2020)}},
	} {
		require.NoError(t, kc.Create(ctx, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: InstanceNamespace, Name: p.name},
			Spec: v1alpha1.PipelineSpec{Instance: "core", Ports: p.ports, AutoDetectPorts: ptr.To(false)}}))
		// Distinct creation times give each port its age.
		pipelinesOf(t, kc, inst, i+2)
	}
	before := pipelinesOf(t, kc, inst, 4) // and the health check
	assert.Equal(t, "TCP/5171->5170", before["logs-b"].Frontends, "the newer pipeline moved")
	assert.Equal(t, "UDP/5140->5140,TCP/2021->2020", before["syslog"].Frontends, "2020 is the health check's")
	workloads(t, cs, before)

	// uninstall --keep-data: the operator's release goes, the instance's
	// release, CoreInstance and pipelines stay.
	keep, _ := chartEnv(t, cp, true)
	rec := &recorder{}
	require.NoError(t, Run(ctx, chartPlan(keep, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart"}, rec.of(EventSkipped))
	assert.Equal(t, []string{"undo install operator chart"}, rec.of(EventDone))
	_, err = cs.AppsV1().Deployments(OperatorNamespace).Get(ctx, OperatorRelease, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "operator removed with its release: %v", err)
	for _, name := range TpctlCRDs() {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "CRD %s kept", name)
	}
	kept := &v1alpha1.CoreInstance{}
	require.NoError(t, kc.Get(ctx, client.ObjectKeyFromObject(inst), kept), "the CoreInstance outlives uninstall --keep-data")
	assert.Equal(t, inst.UID, kept.UID)
	// The garbage collector runs: an owned object goes with its owner, so
	// pipelines that were still there afterwards are really kept.
	gcProbe(t, cs)
	assert.Equal(t, before, pipelinesOf(t, kc, inst, 4), "every pipeline kept, with its frontends")

	// install again: the operator comes back, the instance is as it was.
	rec = install(env)
	assert.Equal(t, []string{"install operator chart"}, rec.of(EventDone))
	assert.Equal(t, []string{"install core-instance chart"}, rec.of(EventSkipped), "the kept release is current")
	require.NoError(t, kc.Get(ctx, client.ObjectKeyFromObject(inst), kept))
	assert.Equal(t, inst.UID, kept.UID)
	assert.Equal(t, before, pipelinesOf(t, kc, inst, 4), "same pipelines, same frontends")
	workloads(t, cs, before)

	// A stuck first install (pending-install, no working revision) is
	// recovered by uninstalling the release: Helm keeps the CoreInstance,
	// and the new install adopts it with the new values.
	h := &HelmRelease{Kubeconfig: env.Kubeconfig(), Namespace: InstanceNamespace, Name: InstanceRelease, Keep: []string{v1alpha1.KindCoreInstance},
		Timeout: time.Minute}
	cfg, err := h.config()
	require.NoError(t, err)
	rel, err := latest(cfg, InstanceRelease)
	require.NoError(t, err)
	require.Equal(t, 1, rel.Version, "precondition: no other revision to roll back to")
	rel.Info.Status = rcommon.StatusPendingInstall
	require.NoError(t, cfg.Releases.Update(rel))
	h.Chart, err = charts.Archive(charts.CoreInstance, "1.2.4")
	require.NoError(t, err)
	h.Values = map[string]any{"name": "core", "proxy": map[string]any{"httpProxy": "http://other-proxy.test:8080"}}
	res, err := h.Apply(ctx)
	require.NoError(t, err)
	assert.Equal(t, "uninstalled pending-install revision 1", res.Recovered)
	assert.Equal(t, "installed", res.Action)
	require.NoError(t, kc.Get(ctx, client.ObjectKeyFromObject(inst), kept))
	assert.Equal(t, inst.UID, kept.UID, "recovery never deletes the CoreInstance")
	assert.Equal(t, "http://other-proxy.test:8080", kept.Spec.HTTPProxy, "the adopted instance takes the new values")
	assert.Empty(t, kept.Spec.NoProxy, "replaced, not merged")
	assert.Equal(t, "tp-core-instance-1.2.4", kept.Labels["helm.sh/chart"])
	gcProbe(t, cs)
	assert.Equal(t, before, pipelinesOf(t, kc, inst, 4), "recovery keeps every pipeline")

	// Full uninstall: the CoreInstance and every pipeline go, then the CRDs.
	rec = &recorder{}
	require.NoError(t, Run(ctx, chartPlan(env, ch, true), rec))
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart"}, rec.of(EventDone))
	assert.Equal(t, []string{"release default/core removed, and CoreInstance default/core with every Pipeline of it"},
		rec.messages("undo install core-instance chart", EventDone))
	for _, name := range TpctlCRDs() {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "CRD %s deleted: %v", name, err)
	}
}

// workloads waits until every pipeline has its Deployment.
func workloads(t *testing.T, cs kubernetes.Interface, pipelines map[string]pipelineSeen) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for name := range pipelines {
			_, err := cs.AppsV1().Deployments(InstanceNamespace).Get(context.Background(), name, metav1.GetOptions{})
			require.NoError(c, err, "workload of %s", name)
		}
	}, time.Minute, 100*time.Millisecond)
}

// gcProbe waits until the garbage collector deletes a ConfigMap whose
// owner was deleted.
func gcProbe(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	owner, err := cs.CoreV1().ConfigMaps(InstanceNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-owner-"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	dep, err := cs.CoreV1().ConfigMaps(InstanceNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-dependent-",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, cs.CoreV1().ConfigMaps(InstanceNamespace).Delete(ctx, owner.Name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := cs.CoreV1().ConfigMaps(InstanceNamespace).Get(ctx, dep.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 2*time.Minute, 200*time.Millisecond, "the garbage collector deletes dependents")
}
