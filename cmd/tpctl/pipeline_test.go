package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
	"github.com/tpctl/tpctl/pipeline"
)

var mgmtNow = time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC)

// mgmtCluster is an in-memory cluster with one core instance whose
// "operator" assigns frontends as the real one does for explicit ports.
func mgmtCluster(t *testing.T) *managetest.Memory {
	t.Helper()
	m := managetest.NewMemory("tp")
	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core"}})
	m.Now = func() time.Time { return mgmtNow }
	m.Assign = m.AssignAsOperator(nil)
	return m
}

func mgmtDeps(m *managetest.Memory, tty bool) clusterDeps {
	return clusterDeps{
		connect:    func(string, string) (clusterClient, error) { return m, nil },
		isTerminal: func(any) bool { return tty },
		now:        func() time.Time { return mgmtNow },
	}
}

type mgmtResult struct {
	out, errOut string
	err         error
}

func mgmtRun(t *testing.T, cmd *cobra.Command, stdin string, args ...string) mgmtResult {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	err := cmd.Execute()
	return mgmtResult{out.String(), errOut.String(), err}
}

func mgmtPipeline(t *testing.T, m *managetest.Memory, args ...string) mgmtResult {
	t.Helper()
	return mgmtRun(t, newPipelineCmdWith(mgmtDeps(m, false)), "", args...)
}

func mgmtFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestPipelineCreateMergesDetectedAndExplicitPorts(t *testing.T) {
	m := mgmtCluster(t)
	cfg := mgmtFile(t, "fwd.conf", "[INPUT]\n    Name forward\n[INPUT]\n    Name tcp\n    Port 5170\n")
	r := mgmtPipeline(t, m, "create", "--name", "fwd", "--config-file", cfg, "--port", "udp/5140", "--service-type", "nodeport")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, `pipeline "fwd" created in namespace "tp"`)

	p := m.Pipeline("fwd")
	require.NotNil(t, p)
	assert.Equal(t, "core", p.Spec.Instance, "the only instance")
	assert.Equal(t, v1alpha1.ConfigFormatClassic, p.Spec.Config.Format)
	assert.Equal(t, []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolUDP, Port: 5140}}, p.Spec.Ports)
	assert.True(t, p.Spec.AutoDetect())
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, p.Spec.ServiceType)

	res, err := manage.EffectivePorts(&p.Spec)
	require.NoError(t, err)
	var got []string
	for _, e := range res.Ports {
		got = append(got, e.Port.String())
	}
	assert.Equal(t, []string{"udp/5140", "tcp/24224", "tcp/5170"}, got, "explicit first, then detected")
}

func TestPipelineCreateNoAutoPortsAndDryRun(t *testing.T) {
	m := mgmtCluster(t)
	cfg := mgmtFile(t, "fwd.yaml", "pipeline:\n  inputs:\n    - name: forward\n")
	r := mgmtPipeline(t, m, "create", "--name", "fwd", "--config-file", cfg, "--no-auto-ports", "--port", "tcp/9000",
		"--dry-run", "-o", "json")
	require.NoError(t, r.err)
	var p v1alpha1.Pipeline
	require.NoError(t, json.Unmarshal([]byte(r.out), &p))
	assert.Equal(t, v1alpha1.KindPipeline, p.Kind)
	assert.False(t, p.Spec.AutoDetect())
	assert.Nil(t, m.Pipeline("fwd"), "a dry run stores nothing")

	r = mgmtPipeline(t, m, "create", "--name", "fwd", "--port", "tcp/9000", "--dry-run")
	require.NoError(t, r.err)
	assert.Contains(t, r.errOut, "dry run: the API server accepted this create")
	assert.Contains(t, r.errOut, "port tcp/9000 from ports[0]")
	assert.Contains(t, r.out, "kind: Pipeline")
}

func TestPipelineCreateErrorsAreSpecific(t *testing.T) {
	m := mgmtCluster(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "a", "--port", "tcp/5170", "--port", "udp/5170", "--port", "5170"},
			"duplicate backend tcp/5170: port 1 (tcp/5170) and port 3 (5170) both use it"},
		{[]string{"--name", "a", "--instance", "edge"}, `core instance "edge" not found in namespace "tp"; existing: core`},
		{[]string{"--port", "tcp/1"}, "--name is required"},
		{[]string{"--name", "A_b"}, `invalid pipeline "A_b": name "A_b"`},
		{[]string{"--name", "a", "--service-type", "External"}, `service type "External"`},
		{[]string{"--name", "a", "--workload", "job", "--port", "x/1"}, `workload "job"`},
		{[]string{"--name", "a", "--workload", "daemonset", "--replicas", "2"}, "workload.replicas: cannot be set for a DaemonSet"},
		{[]string{"--name", "a", "--config-file", "/nonexistent.conf"}, "read configuration /nonexistent.conf"},
		{[]string{"--name", "a", "--wait=soon"}, `wait for "soon"`},
		{[]string{"--name", "a", "-o", "xml"}, `unknown output format "xml"`},
	} {
		r := mgmtPipeline(t, m, append([]string{"create"}, tc.args...)...)
		require.Error(t, r.err, "%v", tc.args)
		assert.Contains(t, r.err.Error(), tc.want, "%v", tc.args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), "%v: nothing changed is a usage error", tc.args)
	}
	list, err := m.ListPipelines(t.Context())
	require.NoError(t, err)
	assert.Empty(t, list)

	r := mgmtPipeline(t, m, "create", "--name", "a")
	require.NoError(t, r.err)
	r = mgmtPipeline(t, m, "create", "--name", "a")
	assert.ErrorContains(t, r.err, `pipeline "a" already exists`)
}

func TestPipelineCreateWaitPrintsTheResult(t *testing.T) {
	m := mgmtCluster(t)
	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "a", "--port", "tcp/2200").err)
	r := mgmtPipeline(t, m, "create", "--name", "b", "--port", "tcp/2200", "--wait=ports", "--timeout", "5s")
	require.NoError(t, r.err)
	assert.Contains(t, r.errOut, "waiting for ports")
	assert.Contains(t, r.out, "2201 (reassigned)")
	assert.Contains(t, r.out, "2201*")

	r = mgmtPipeline(t, m, "create", "--name", "c", "--port", "tcp/1", "--wait", "--timeout", "50ms")
	var we *manage.WaitError
	require.ErrorAs(t, r.err, &we, "Ready never comes in memory")
	assert.Equal(t, "timeout", we.Reason)
}

func TestPipelineUpdateChangesOnlyGivenFields(t *testing.T) {
	m := mgmtCluster(t)
	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "a", "--port", "tcp/2200", "--service-type", "ClusterIP").err)
	r := mgmtPipeline(t, m, "update", "a", "--image", "fluent/fluent-bit:4.0", "--replicas", "2")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, `pipeline "a" updated`)
	p := m.Pipeline("a")
	assert.Equal(t, v1alpha1.ServiceTypeClusterIP, p.Spec.ServiceType, "never reset by other fields")
	assert.Equal(t, int32(2), p.Spec.ReplicaCount())
	assert.Equal(t, []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolTCP, Port: 2200}}, p.Spec.Ports)

	require.NoError(t, mgmtPipeline(t, m, "update", "a", "--service-type", "LoadBalancer", "--port", "tcp/2200", "--port", "udp/2200").err)
	p = m.Pipeline("a")
	assert.Equal(t, v1alpha1.ServiceTypeLoadBalancer, p.Spec.ServiceType)
	assert.Len(t, p.Spec.Ports, 2)
	assert.Equal(t, "fluent/fluent-bit:4.0", p.Spec.Image)

	r = mgmtPipeline(t, m, "update", "a")
	assert.ErrorContains(t, r.err, "nothing to change")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	r = mgmtPipeline(t, m, "update", "a", "--instance", "x")
	assert.ErrorContains(t, r.err, "unknown flag: --instance", "the instance cannot change")
	r = mgmtPipeline(t, m, "update", "zz", "--image", "x")
	assert.EqualError(t, r.err, `pipeline "zz" not found in namespace "tp"; existing: a`)
	assert.Equal(t, cli.ExitError, cli.ExitCode(r.err))
}

func TestPipelineListGetEndpointsFormats(t *testing.T) {
	m := mgmtCluster(t)
	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "a", "--port", "tcp/2200").err)
	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "b", "--port", "tcp/2200").err)

	r := mgmtPipeline(t, m, "list")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "NAME")
	assert.Contains(t, r.out, "tcp/2201->2200")

	r = mgmtPipeline(t, m, "list", "-o", "yaml")
	require.NoError(t, r.err)
	var list v1alpha1.PipelineList
	require.NoError(t, yaml.Unmarshal([]byte(r.out), &list))
	assert.Equal(t, "PipelineList", list.Kind)
	require.Len(t, list.Items, 2)

	r = mgmtPipeline(t, m, "get", "b")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "Name:               b")
	assert.Contains(t, r.out, "2201 (reassigned)")

	r = mgmtPipeline(t, m, "endpoints", "b")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "tcp       2201*     2200")
	assert.Contains(t, r.out, "* reassigned")

	r = mgmtPipeline(t, m, "endpoints", "b", "-o", "json")
	require.NoError(t, r.err)
	var eps []manage.Endpoint
	require.NoError(t, json.Unmarshal([]byte(r.out), &eps))
	require.Len(t, eps, 1)
	assert.True(t, eps[0].Reassigned)
	assert.Equal(t, int32(2201), eps[0].Frontend)
	assert.Equal(t, int32(2200), eps[0].Backend)
}

func TestPipelineDeleteConfirmation(t *testing.T) {
	m := mgmtCluster(t)
	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "a").err)

	r := mgmtPipeline(t, m, "delete", "a")
	assert.ErrorContains(t, r.err, "no terminal to ask on; pass --yes")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.NotNil(t, m.Pipeline("a"))

	r = mgmtRun(t, newPipelineCmdWith(mgmtDeps(m, true)), "n\n", "delete", "a")
	assert.ErrorContains(t, r.err, "not confirmed")
	assert.Contains(t, r.errOut, `Delete pipeline "a" with its workload, Service and ConfigMap? [y/N]`)
	assert.NotNil(t, m.Pipeline("a"))

	r = mgmtPipeline(t, m, "delete", "a", "--dry-run")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "would be deleted (dry run)")
	assert.NotNil(t, m.Pipeline("a"))

	r = mgmtRun(t, newPipelineCmdWith(mgmtDeps(m, true)), "yes\n", "delete", "a")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, `pipeline "a" deleted from namespace "tp"`)
	assert.Nil(t, m.Pipeline("a"))

	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "b").err)
	require.NoError(t, mgmtPipeline(t, m, "delete", "b", "--yes").err)
	assert.Nil(t, m.Pipeline("b"))
}

func TestPipelineCreateOnTheNodeSkipsHostListeners(t *testing.T) {
	m := mgmtCluster(t)
	d := mgmtDeps(m, false)
	d.hostListeners = func() ([]pipeline.HostListener, error) {
		return []pipeline.HostListener{{Port: pipeline.TCP(22), Program: "sshd"}, {Port: pipeline.TCP(8080), Program: "nginx"}}, nil
	}
	r := mgmtRun(t, newPipelineCmdWith(d), "", "create", "--name", "web", "--port", "tcp/8080", "--port", "tcp/9000")
	require.NoError(t, r.err)
	assert.Contains(t, r.errOut, "port tcp/8080 is in use on this node by nginx: the operator skips it and gives this pipeline another frontend")
	assert.NotContains(t, r.errOut, "tcp/9000")
	assert.Contains(t, r.errOut, "recorded 2 listening port(s) of this node")
	p := m.Pipeline("web")
	require.NotNil(t, p)
	assert.Equal(t, "tcp/22=sshd,tcp/8080=nginx", p.Annotations[v1alpha1.AnnotationHostListeners])
	require.Len(t, p.Status.Ports, 2)
	assert.Equal(t, int32(8081), p.Status.Ports[0].Frontend, "the in-memory operator applies the same rule")

	d.hostListeners = func() ([]pipeline.HostListener, error) { return nil, errors.New("no /proc") }
	r = mgmtRun(t, newPipelineCmdWith(d), "", "create", "--name", "other", "--port", "tcp/7000")
	require.NoError(t, r.err)
	assert.Contains(t, r.errOut, "warning: could not read this node's listening ports (no /proc)")
	assert.Empty(t, m.Pipeline("other").Annotations[v1alpha1.AnnotationHostListeners])
}

func TestPipelineResourcesFlags(t *testing.T) {
	m := mgmtCluster(t)
	r := mgmtPipeline(t, m, "create", "--name", "a", "--cpu", "250m:1", "--memory", "128Mi:512Mi", "--replicas", "3", "--dry-run", "-o", "json")
	require.NoError(t, r.err)
	var sent v1alpha1.Pipeline
	require.NoError(t, json.Unmarshal([]byte(r.out), &sent))
	assert.Equal(t, "cpu 250m (limit 1), memory 128Mi (limit 512Mi)", manage.ResourcesText(sent.Spec.Resources))
	assert.Nil(t, m.Pipeline("a"), "a dry run stores nothing")

	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "a", "--cpu", "250m:1", "--replicas", "3").err)
	require.NoError(t, mgmtPipeline(t, m, "update", "a", "--memory", ":1Gi").err)
	r = mgmtPipeline(t, m, "get", "a")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "Resources:          cpu 250m (limit 1), memory limit 1Gi")
	assert.Contains(t, r.out, "Deployment (3 replicas)")

	for _, tc := range []struct{ args []string }{
		{[]string{"update", "a", "--cpu", "2:1"}},
		{[]string{"update", "a", "--memory", "100Gi"}},
		{[]string{"create", "--name", "b", "--cpu", "lots"}},
	} {
		r = mgmtPipeline(t, m, tc.args...)
		require.Error(t, r.err, "%v", tc.args)
		assert.Contains(t, r.err.Error(), "--"+strings.TrimPrefix(tc.args[len(tc.args)-2], "--"), "%v: the flag is named", tc.args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), "%v", tc.args)
	}
	assert.Equal(t, "cpu 250m (limit 1), memory limit 1Gi", manage.ResourcesText(m.Pipeline("a").Spec.Resources), "refused changes leave it")
	assert.Nil(t, m.Pipeline("b"))
}

func TestPipelineSchedulingFlags(t *testing.T) {
	m := mgmtCluster(t)
	r := mgmtPipeline(t, m, "create", "--name", "a", "--node-selector", "disk=ssd", "--toleration", "dedicated=logs:NoSchedule",
		"--annotation", "example.com/team=obs", "--dry-run", "-o", "yaml")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "nodeSelector:\n    disk: ssd")
	assert.Contains(t, r.out, "podAnnotations:\n    example.com/team: obs")
	assert.Nil(t, m.Pipeline("a"), "a dry run stores nothing")

	require.NoError(t, mgmtPipeline(t, m, "create", "--name", "a", "--node-selector", "disk=ssd", "--toleration", "dedicated=logs:NoSchedule").err)
	require.NoError(t, mgmtPipeline(t, m, "update", "a", "--toleration", "spot:NoExecute", "--annotation", "example.com/team=obs").err)
	r = mgmtPipeline(t, m, "get", "a")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "Node selector:      disk=ssd\n")
	assert.Contains(t, r.out, "Tolerations:        spot:NoExecute\n", "--toleration replaces the list")
	assert.Contains(t, r.out, "Pod annotations:    example.com/team=obs\n")

	for _, args := range [][]string{
		{"update", "a", "--toleration", "spot=x"},
		{"update", "a", "--annotation", "telemetry.tpctl.dev/config-hash=x"},
		{"update", "a", "--node-selector", "disk"},
	} {
		r = mgmtPipeline(t, m, args...)
		require.Error(t, r.err, "%v", args)
		assert.Contains(t, r.err.Error(), args[2]+` "`, "%v: the flag is named", args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), "%v", args)
	}
	require.NoError(t, mgmtPipeline(t, m, "update", "a", "--node-selector", "", "--toleration", "").err)
	p := m.Pipeline("a")
	assert.Nil(t, p.Spec.NodeSelector)
	assert.Nil(t, p.Spec.Tolerations)
	assert.Equal(t, map[string]string{"example.com/team": "obs"}, p.Spec.PodAnnotations)
}
