package installer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/preflight"
)

var chartInstallSteps = []string{
	"preflight", "stage payload", "stage operator image", "write K3s config", "containerd drop-in", "write environment file", "write unit",
	"start K3s", "containerd template", "wait for node",
	"import operator image", "install operator chart", "install core-instance chart", "wait for core instance",
}

func planNames(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Name())
	}
	return out
}

func TestChartStepsTakeTheirPlaceInThePlan(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	plan, _, err := NewInstallPlan(context.Background(), ci.opts)
	require.NoError(t, err)
	assert.Equal(t, chartInstallSteps, planNames(plan), "the image is staged before K3s starts, the charts follow the Ready node")

	ci.opts.Charts = nil
	plan, _, err = NewInstallPlan(context.Background(), ci.opts)
	require.NoError(t, err)
	assert.Equal(t, installSteps, planNames(plan), "--skip-charts: the plan ends with the node")
}

func TestInstallWithChartsThenRerunChangesNothing(t *testing.T) {
	ci := newChartInstall(t, Config{NodeIP: "192.0.2.10", HTTPSProxy: "http://u:pw@proxy:3128", NoProxy: []string{"corp.example"}}, "1.2.3")
	rec, err := ci.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"stage payload", "stage operator image", "write K3s config", "write environment file", "write unit", "start K3s",
		"import operator image", "install operator chart", "install core-instance chart", "wait for core instance"}, rec.of(EventDone))

	// The image archive is in K3s's images directory, recorded as data.
	dst := filepath.Join(ImagesDir(ci.opts.Config), "tpctl-operator-1.2.3.tar")
	got, mode := ci.read(t, dst)
	assert.Equal(t, "operator image archive 1.2.3", got)
	assert.Equal(t, os.FileMode(0o644), mode)
	st, err := LoadState(filepath.Join(ci.root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Contains(t, st.Get().Created, Created{Path: dst, Kind: KindFile, Step: "stage operator image", Data: true})
	assert.False(t, st.Get().PendingRestart, "a new operator image does not restart K3s")
	assert.Equal(t, filepath.Join(ci.root, K3sBinaryPath), ci.cluster.k3s, "ctr is K3s's")
	assert.Equal(t, []string{filepath.Join(ci.root, dst)}, ci.cluster.imports)

	assert.Equal(t, []string{
		"installed tpctl-system/tp-operator tp-operator 1.2.3",
		"installed default/core tp-core-instance 1.2.3",
	}, ci.cluster.Calls())
	op := ci.cluster.releases["tpctl-system/tp-operator"].values
	assert.Equal(t, map[string]any{"repository": "tpctl.local/tpctl-operator", "tag": "1.2.3", "pullPolicy": "IfNotPresent"}, op["image"])
	assert.Equal(t, "30000-32767", op["nodePortRange"])
	assert.NotContains(t, op, "nodeConditions", "flannel is the catalog's default")
	assert.Equal(t, []any{"traefik"}, op["packagedComponents"], "traefik is enabled by default")
	inst := ci.cluster.instances["default/core"]
	require.NotNil(t, inst)
	assert.Equal(t, "http://u:pw@proxy:3128", inst.Spec.HTTPSProxy)
	assert.Empty(t, inst.Spec.HTTPProxy)
	assert.Equal(t, "corp.example,localhost,127.0.0.1,::1,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local", inst.Spec.NoProxy)
	assert.Equal(t, int32(2020), inst.Spec.HealthCheckPort())

	assert.Contains(t, rec.messages("wait for core instance", EventProgress),
		"waiting for CoreInstance default/core to be Ready (not reconciled by the operator yet)")
	assert.Contains(t, rec.messages("install operator chart", EventProgress), "applying tpctl-system/tp-operator", "Helm's progress reaches the events")
	logs := strings.Join(rec.messages("", EventLog), "\n")
	assert.Contains(t, logs, "Operator: Helm release tp-operator in namespace tpctl-system, image tpctl.local/tpctl-operator:1.2.3.")
	assert.Contains(t, logs, "its health check (TCP 2020) answers from this host at http://198.51.100.7:2020/api/v1/health",
		"the load balancer's address, asked before the install ended")
	assert.Contains(t, ci.cluster.probed, "http://198.51.100.7:2020/api/v1/health")
	assert.Contains(t, logs, "tpctl pipeline create --name NAME")
	assert.Contains(t, logs, "tpctl tui")
	assert.NotContains(t, logs, "not installed")

	// Second run: every step is done already; Helm is not asked to change anything.
	rec, err = ci.run(t)
	require.NoError(t, err)
	assert.Equal(t, chartInstallSteps, rec.of(EventSkipped))
	assert.Empty(t, rec.of(EventDone))
	assert.Len(t, ci.cluster.Calls(), 2)
	assert.Equal(t, []string{"release tpctl-system/tp-operator is deployed with chart tp-operator 1.2.3 and these values"},
		rec.messages("install operator chart", EventSkipped))
}

func TestRerunWithChangedValuesUpgrades(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	_, err := ci.run(t)
	require.NoError(t, err)
	ci.charts.InstanceName = "edge"
	ci.charts.PipelineImage = "registry.local/fluent-bit:4.0.3"
	ci.opts.Charts = &ci.charts
	rec, err := ci.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"install core-instance chart", "wait for core instance"}, rec.of(EventDone))
	assert.Equal(t, "upgraded default/core tp-core-instance 1.2.3", ci.cluster.Calls()[2])
	vals := ci.cluster.releases["default/core"].values
	assert.Equal(t, "edge", vals["name"])
	assert.Equal(t, map[string]any{"serviceType": "LoadBalancer", "image": "registry.local/fluent-bit:4.0.3"}, vals["pipelineDefaults"])
}

func TestUpgradedTpctlImportsItsImageIntoTheRunningK3s(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	_, err := ci.run(t)
	require.NoError(t, err)
	old := filepath.Join(ImagesDir(ci.opts.Config), "tpctl-operator-1.2.3.tar")

	// A newer tpctl: same K3s, new charts and operator image.
	ci.opts.Bundle = chartPayload(t, "1.3.0", false)
	ci.charts.Version = "v1.3.0"
	ci.opts.Charts = &ci.charts
	plan, env, err := NewInstallPlan(context.Background(), ci.opts)
	require.NoError(t, err)
	require.NoError(t, env.State.Load())
	dry := DryRun(context.Background(), plan)
	require.Equal(t, "stage operator image", dry.Steps[2].Name)
	assert.Equal(t, "run", dry.Steps[2].Would)
	assert.Equal(t, old, dry.Steps[2].Files[1].Path)
	assert.Contains(t, dry.Steps[2].Files[1].Note, "remove")

	rec, err := ci.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"stage operator image", "import operator image", "install operator chart", "install core-instance chart"}, rec.of(EventDone))
	assert.NotContains(t, ci.k3s.Calls(), "restart", "the image reaches containerd without restarting K3s")
	assert.Equal(t, "tpctl.local/tpctl-operator:1.3.0", ci.cluster.deployments["tpctl-system/tp-operator"].Spec.Template.Spec.Containers[0].Image)
	assert.Contains(t, ci.cluster.refs, "tpctl.local/tpctl-operator:1.3.0")
	assert.True(t, ci.cluster.pinned["tpctl.local/tpctl-operator:1.3.0"], "imported into a running K3s, and pinned as K3s pins what it imports")
	_, err = os.Stat(filepath.Join(ci.root, old))
	assert.ErrorIs(t, err, os.ErrNotExist, "the older image archive this install staged is gone")
	st, err := LoadState(filepath.Join(ci.root, StatePath), time.Now)
	require.NoError(t, err)
	for _, c := range st.Get().Created {
		assert.NotEqual(t, old, c.Path)
	}
	rec, err = ci.run(t)
	require.NoError(t, err)
	assert.Equal(t, chartInstallSteps, rec.of(EventSkipped))
}

func TestImageAlreadyImportedByK3sIsNoChange(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	// K3s imports its images directory when it starts.
	// K3s imports its images directory when it starts, and pins what it
	// imports.
	ci.cluster.refs = []string{"docker.io/rancher/mirrored-pause:3.6", "tpctl.local/tpctl-operator:1.2.3"}
	ci.cluster.pinned = map[string]bool{"docker.io/rancher/mirrored-pause:3.6": true, "tpctl.local/tpctl-operator:1.2.3": true}
	rec, err := ci.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventSkipped), "import operator image")
	assert.Empty(t, ci.cluster.imports)
}

// An operator image containerd has but does not pin (imported by hand, or
// by an older tpctl) would be removed by the kubelet's image garbage
// collection, and an air-gapped host could not bring it back: it is pinned,
// not imported again.
func TestUnpinnedOperatorImageIsPinned(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	ci.cluster.refs = []string{"tpctl.local/tpctl-operator:1.2.3"}
	rec, err := ci.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "import operator image")
	assert.Empty(t, ci.cluster.imports, "present already: not imported again")
	assert.True(t, ci.cluster.pinned["tpctl.local/tpctl-operator:1.2.3"])
	rec, err = ci.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventSkipped), "import operator image", "pinned: nothing to do")
}

func TestChartValuesFollowTheConfiguration(t *testing.T) {
	ci := newChartInstall(t, Config{CNI: CNICilium, NodePortRange: "30000-31000"}, "1.2.3")
	ci.charts.PipelineImage, ci.charts.PipelineArgs = "sink:1", []string{"--http", ":2020"}
	r := &chartsRun{Charts: ci.charts, env: newEnv(ci.opts), src: map[string]*chartSource{}}
	op, err := r.values(charts.Operator)
	require.NoError(t, err)
	assert.Equal(t, []any{"cni=cilium"}, op["nodeConditions"])
	assert.Equal(t, "30000-31000", op["nodePortRange"])
	inst, err := r.values(charts.CoreInstance)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"name":             "core",
		"proxy":            map[string]any{"httpProxy": "", "httpsProxy": "", "noProxy": ""},
		"healthCheck":      map[string]any{"enabled": true, "port": 2020},
		"pipelineDefaults": map[string]any{"serviceType": "NodePort", "image": "sink:1", "args": []any{"--http", ":2020"}},
	}, inst, "without a proxy there is no NO_PROXY either; with Cilium, NodePort")
	assert.Contains(t, r.summary(), "CNI Cilium: K3s's servicelb publishes LoadBalancer ports through hostPort, which Cilium serves only when set up for it, "+
		"so pipelines default to NodePort (a frontend inside the node port range is the node port; `tpctl pipeline endpoints` shows the others); "+
		"give a pipeline --service-type LoadBalancer once Cilium (hostPort or its own load balancer) is set up.")
}

// A node without servicelb has nothing that gives LoadBalancer Services an
// address: pipelines default to NodePort and the summary says so; a node
// without traefik tells the operator that 80 and 443 are free.
func TestChartValuesFollowDisabledComponents(t *testing.T) {
	ci := newChartInstall(t, Config{Disable: []string{"servicelb", "traefik"}}, "1.2.3")
	r := &chartsRun{Charts: ci.charts, env: newEnv(ci.opts), src: map[string]*chartSource{}}
	op, err := r.values(charts.Operator)
	require.NoError(t, err)
	assert.Equal(t, []any{}, op["packagedComponents"])
	inst, err := r.values(charts.CoreInstance)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"serviceType": "NodePort"}, inst["pipelineDefaults"])
	assert.Contains(t, r.summary(), "No service load balancer (servicelb disabled): pipelines default to NodePort (a frontend inside the node port range is the node port; `tpctl pipeline endpoints` shows the others).")

	ci = newChartInstall(t, Config{Disable: []string{"traefik"}}, "1.2.3")
	r = &chartsRun{Charts: ci.charts, env: newEnv(ci.opts), src: map[string]*chartSource{}}
	inst, err = r.values(charts.CoreInstance)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"serviceType": "LoadBalancer"}, inst["pipelineDefaults"])
	for _, line := range r.summary() {
		assert.NotContains(t, line, "servicelb disabled")
	}
}

func TestChartsValidate(t *testing.T) {
	assert.NoError(t, Charts{}.Validate())
	assert.NoError(t, Charts{InstanceName: "edge-1", PipelineImage: "sink:1", PipelineArgs: []string{"-x"}}.Validate())
	for _, c := range []struct {
		ch   Charts
		want string
	}{
		{Charts{InstanceName: "Core"}, "--instance-name"},
		{Charts{InstanceName: "1core"}, "--instance-name"},
		{Charts{InstanceName: strings.Repeat("a", 48)}, "at most 47"},
		{Charts{PipelineImage: "a b"}, "--pipeline-image"},
		{Charts{PipelineArgs: []string{"-x"}}, "--pipeline-arg needs --pipeline-image"},
	} {
		assert.ErrorContains(t, c.ch.Validate(), c.want, "%+v", c.ch)
	}
}

func TestWaitForCoreInstanceIsBoundedAndSaysWhy(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	ci.charts.ReadyTimeout = 50 * time.Millisecond
	env := newEnv(ci.opts)
	steps := ci.charts.steps(env)
	w := steps[4]
	require.Equal(t, "wait for core instance", w.Name())
	require.NoError(t, os.MkdirAll(filepath.Dir(env.Kubeconfig()), 0o755))
	require.NoError(t, os.WriteFile(env.Kubeconfig(), nil, 0o600))

	// A payload without the default pipeline image.
	complete := env.Bundle
	env.Bundle, _ = testPayload(t)
	env.Config.AirGap = true
	rec := &recorder{}
	err := w.Run(context.Background(), rec)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "waiting for CoreInstance default/core to exist")
	assert.Contains(t, strings.Join(rec.messages("", EventLog), "\n"), "airGap is set, no --pipeline-image is given and no registry mirror serves "+v1alpha1.DefaultPipelineImage)

	// A mirror of the default image's registry may serve it: no warning.
	env.Config.Registries = &Registries{Mirrors: map[string]RegistryMirror{"docker.io": {Endpoints: []string{"https://mirror.example"}}}}
	rec = &recorder{}
	require.ErrorIs(t, w.Run(context.Background(), rec), context.DeadlineExceeded)
	assert.NotContains(t, strings.Join(rec.messages("", EventLog), "\n"), "no registry mirror serves")
	env.Config.Registries = nil

	// Nor when this tpctl stages the default image itself.
	env.Bundle = complete
	rec = &recorder{}
	require.ErrorIs(t, w.Run(context.Background(), rec), context.DeadlineExceeded)
	assert.NotContains(t, strings.Join(rec.messages("", EventLog), "\n"), "no registry mirror serves")

	ci.cluster.crds = TpctlCRDs()
	ci.cluster.readyAfter = 1 << 30
	ci.cluster.instances["default/core"] = &v1alpha1.CoreInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "core", Generation: 2},
		Status: v1alpha1.CoreInstanceStatus{Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonProgressing, Message: "1 of 1 pipeline(s) not ready: core-health", ObservedGeneration: 2}}},
	}
	done, err := w.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done)
	err = w.Run(context.Background(), rec)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "CoreInstance default/core to be Ready (Progressing: 1 of 1 pipeline(s) not ready: core-health)")
	assert.Contains(t, err.Error(), "kubectl -n default describe coreinstance core")
	assert.Contains(t, err.Error(), "kubectl -n tpctl-system logs deploy/tp-operator")

	// A Ready condition of an older generation does not count.
	ci.cluster.instances["default/core"].Status.Conditions[0].Status = metav1.ConditionTrue
	ci.cluster.instances["default/core"].Status.Conditions[0].ObservedGeneration = 1
	done, err = w.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done)
	ci.cluster.instances["default/core"].Status.Conditions[0].ObservedGeneration = 2
	done, err = w.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done, "Ready, but the health-check pipeline's Service does not exist yet")
	ci.cluster.healthService("default", "core")
	done, err = w.Done(context.Background())
	require.NoError(t, err)
	assert.True(t, done)

	// Ready, but the health check does not answer from the host: the
	// wait goes on, bounded, and says which URL it asks.
	ci.cluster.refuse = 1 << 30
	err = w.Run(context.Background(), rec)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "waiting for the health check http://198.51.100.7:2020/api/v1/health to answer from this host (connection refused)")
}

func TestUninstallRemovesReleasesThenCRDs(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	host := newFakeHost(t, ci.root)
	_, err := ci.run(t)
	require.NoError(t, err)
	ci.cluster.pipelines = 3

	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ci.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart", "undo start K3s"}, planNames(plan)[:3])
	dry := DryRun(context.Background(), plan)
	assert.Equal(t, "Helm uninstall of release default/core, then delete its CoreInstance and every Pipeline of it; skipped when the API server cannot be reached", dry.Steps[0].Description)
	assert.Contains(t, dry.Steps[1].Description, "then delete the tpctl CRDs (coreinstances.telemetry.tpctl.dev, pipelines.telemetry.tpctl.dev)")
	assert.Equal(t, "run", dry.Steps[1].Would)
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart", "undo start K3s"}, rec.of(EventDone)[:3])
	assert.Contains(t, rec.of(EventDone), "remove files")
	assert.Equal(t, []string{"uninstalled default/core", "deleted CoreInstance default/core and 3 pipeline(s)",
		"uninstalled tpctl-system/tp-operator", "deleted CRDs"}, ci.cluster.Calls()[2:], "Helm keeps the CoreInstance: it is deleted explicitly")
	assert.Equal(t, []string{"release default/core removed, and CoreInstance default/core with every Pipeline of it"},
		rec.messages("undo install core-instance chart", EventDone))
	assert.Equal(t, []string{"release tpctl-system/tp-operator and the tpctl CRDs removed"}, rec.messages("undo install operator chart", EventDone))
	_, err = os.Stat(filepath.Join(ci.root, ImagesDir(ci.opts.Config), "tpctl-operator-1.2.3.tar"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the staged image goes with the recorded files")
}

func TestUninstallKeepDataKeepsTheInstanceAndCRDs(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	host := newFakeHost(t, ci.root)
	_, err := ci.run(t)
	require.NoError(t, err)
	ci.cluster.pipelines = 3
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ci.opts, Ops: host.ops(t), KeepData: true})
	require.NoError(t, err)
	dry := DryRun(context.Background(), plan)
	assert.Equal(t, "nothing: release default/core, its CoreInstance and every Pipeline stay with the kept data", dry.Steps[0].Description)
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))
	assert.Equal(t, []string{"release default/core, its CoreInstance and every Pipeline stay with the kept data"},
		rec.messages("undo install core-instance chart", EventSkipped))
	assert.Equal(t, []string{"uninstalled tpctl-system/tp-operator"}, ci.cluster.Calls()[2:])
	assert.Equal(t, TpctlCRDs(), ci.cluster.crds)
	assert.Contains(t, ci.cluster.instances, "default/core")
	assert.Equal(t, 3, ci.cluster.pipelines)
	_, err = os.Stat(filepath.Join(ci.root, ImagesDir(ci.opts.Config), "tpctl-operator-1.2.3.tar"))
	assert.NoError(t, err, "the image archive is data")
}

func TestUninstallWithoutAReachableAPI(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	host := newFakeHost(t, ci.root)
	_, err := ci.run(t)
	require.NoError(t, err)
	ci.cluster.readyzErr = errors.New("dial tcp 127.0.0.1:6443: connection refused")
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ci.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec), "a K3s that no longer answers does not stop uninstall")
	assert.Equal(t, []string{"undo install core-instance chart", "undo install operator chart"}, rec.of(EventSkipped)[:2])
	assert.Equal(t, []string{"the API server cannot be reached (dial tcp 127.0.0.1:6443: connection refused); the release goes with the cluster's data"},
		rec.messages("undo install operator chart", EventSkipped))
	assert.Len(t, ci.cluster.Calls(), 2, "nothing was uninstalled through Helm")
}

func TestUninstallHelmFailure(t *testing.T) {
	for _, keep := range []bool{false, true} {
		ci := newChartInstall(t, Config{}, "1.2.3")
		host := newFakeHost(t, ci.root)
		_, err := ci.run(t)
		require.NoError(t, err)
		ci.cluster.uninstallErr = errors.New("timed out waiting for the condition")
		plan, _, err := NewUninstallPlan(UninstallOptions{Options: ci.opts, Ops: host.ops(t), KeepData: keep})
		require.NoError(t, err)
		rec := &recorder{}
		err = Run(context.Background(), plan, rec)
		if keep {
			var se *StepError
			require.ErrorAs(t, err, &se, "with the data kept a half-removed release would stay: stop")
			assert.Equal(t, "undo install operator chart", se.Step, "the core instance's release is kept, not uninstalled")
			continue
		}
		require.NoError(t, err, "the release goes with the data dir")
		var warned bool
		for _, e := range rec.events {
			warned = warned || (e.Warning && strings.Contains(e.Message, "timed out waiting for the condition"))
		}
		assert.True(t, warned)
	}
}

func TestDryRunWithChartsGolden(t *testing.T) {
	ci := newChartInstall(t, Config{NodeName: "edge-1", HTTPProxy: "http://bob:hunter2@proxy:3128"}, "1.2.3")
	plan, _, err := NewInstallPlan(context.Background(), ci.opts)
	require.NoError(t, err)
	rep := DryRun(context.Background(), plan)
	var b bytes.Buffer
	require.NoError(t, WriteDryRun(&b, rep))
	golden(t, "dry-run-charts.txt", b.Bytes())
	assert.NotContains(t, b.String(), "hunter2")
	entries, err := os.ReadDir(ci.root)
	require.NoError(t, err)
	assert.Empty(t, entries, "a dry run writes nothing")
	assert.Empty(t, ci.cluster.Calls())
	assert.Empty(t, ci.cluster.imports)
}

func TestStatusReportsOperatorInstancesPipelines(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	_, err := ci.run(t)
	require.NoError(t, err)
	ci.cluster.pipelines = 4
	rep := Status(context.Background(), ci.opts)
	assert.Equal(t, &OperatorStatus{Namespace: "tpctl-system", Name: "tp-operator", Image: "tpctl.local/tpctl-operator:1.2.3", Replicas: 1, ReadyReplicas: 1}, rep.Operator)
	assert.Equal(t, []InstanceStatus{{Namespace: "default", Name: "core", Ready: true, Reason: "Available", HealthCheckEnabled: true,
		HealthCheckPort: 2020, Pipelines: 1}}, rep.Instances)
	require.NotNil(t, rep.Pipelines)
	assert.Equal(t, 4, *rep.Pipelines)
	assert.Empty(t, rep.Unavailable)
	var b bytes.Buffer
	require.NoError(t, WriteStatus(&b, rep))
	golden(t, "status-charts.txt", b.Bytes())

	ci.cluster.readyzErr = errors.New("connection refused")
	rep = Status(context.Background(), ci.opts)
	assert.Nil(t, rep.Operator)
	assert.Nil(t, rep.Pipelines)
	for _, k := range []string{"operator", "instance", "pipelines"} {
		assert.Equal(t, "unavailable: the API server cannot be reached: connection refused", rep.Unavailable[k])
	}

	// A node installed with --skip-charts.
	ci.cluster.readyzErr = nil
	ci.cluster.crds, ci.cluster.deployments = nil, map[string]*appsv1.Deployment{}
	rep = Status(context.Background(), ci.opts)
	assert.Contains(t, rep.Unavailable["operator"], "not installed (no Deployment tpctl-system/tp-operator")
	assert.Equal(t, "not installed (the CoreInstance CRD is absent)", rep.Unavailable["instance"])
	assert.Equal(t, "not installed (the Pipeline CRD is absent)", rep.Unavailable["pipelines"])
}

// The ports other programs serve on the host, as preflight saw them, reach
// the operator as reserved ports, and the plan names them.
func TestChartValuesReserveHostListeners(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	env := newEnv(ci.opts)
	r := &chartsRun{Charts: ci.charts, env: env, src: map[string]*chartSource{}}
	op, err := r.values(charts.Operator)
	require.NoError(t, err)
	assert.NotContains(t, op, "reservedPorts", "nothing seen, nothing reserved")

	env.Facts = FactsFrom(preflight.Facts{HostListeners: []preflight.HostListener{
		{Protocol: "tcp", Port: 22, Program: "sshd"}, {Protocol: "udp", Port: 53, Program: "dnsmasq"}}})
	op, err = r.values(charts.Operator)
	require.NoError(t, err)
	assert.Equal(t, []any{"tcp/22=sshd", "udp/53=dnsmasq"}, op["reservedPorts"])
	step := &releaseStep{r: r, chart: charts.Operator, namespace: OperatorNamespace, release: OperatorRelease, name: "install operator chart"}
	assert.Contains(t, step.Describe(), "never a frontend, as programs on this host serve them: tcp/22=sshd, udp/53=dnsmasq")
}
