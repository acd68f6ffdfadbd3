//go:build integration

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/testenv"
)

// tpctl runs the real command tree against the environment's API server,
// the way a user does: with --kubeconfig and --namespace.
func tpctl(t *testing.T, env *testenv.Env, args ...string) mgmtResult {
	t.Helper()
	args = append(args, "--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace)
	return mgmtRun(t, newRootCmd(), "", args...)
}

func eventually(t *testing.T, what string, f func(c *assert.CollectT)) {
	t.Helper()
	require.EventuallyWithT(t, f, 30*time.Second, 100*time.Millisecond, what)
}

func servicePorts(svc *corev1.Service) []string {
	var out []string
	for _, p := range svc.Spec.Ports {
		out = append(out, strings.ToLower(string(p.Protocol))+"/"+itoa32(p.Port)+"->"+p.TargetPort.String())
	}
	return out
}

func itoa32(n int32) string { return strconv.Itoa(int(n)) }

func TestPipelineCommandsAgainstTheOperator(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	get := func(name string, obj client.Object) error {
		return env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, obj)
	}

	// The seed's example: a holds tcp/2200, b asks for it later → frontend 2201.
	r := tpctl(t, env, "pipeline", "create", "--name", "a", "--port", "tcp/2200", "--service-type", "ClusterIP", "--wait=ports")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "2200")
	r = tpctl(t, env, "pipeline", "create", "--name", "b", "--port", "tcp/2200", "--wait=ports", "--timeout", "30s")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "2201 (reassigned)")

	r = tpctl(t, env, "pipeline", "endpoints", "b")
	require.NoError(t, r.err)
	t.Log("\n" + r.out)
	assert.Contains(t, r.out, "tcp       2201*     2200     LoadBalancer")
	assert.Contains(t, r.out, "* reassigned")
	r = tpctl(t, env, "pipeline", "endpoints", "a", "-o", "json")
	require.NoError(t, r.err)
	var eps []manage.Endpoint
	require.NoError(t, json.Unmarshal([]byte(r.out), &eps))
	require.Len(t, eps, 1)
	assert.False(t, eps[0].Reassigned)
	assert.Regexp(t, `^10\.96\.\d+\.\d+:2200$`, eps[0].Address, "ClusterIP: the cluster IP and the frontend")

	// The operator's objects carry the ports.
	svc := &corev1.Service{}
	eventually(t, "Service b", func(c *assert.CollectT) {
		require.NoError(c, get("b", svc))
		assert.Equal(c, []string{"tcp/2201->2200"}, servicePorts(svc))
	})
	assert.Equal(t, corev1.ServiceTypeLoadBalancer, svc.Spec.Type, "the instance default")
	eventually(t, "Deployment a and ConfigMap a-config", func(c *assert.CollectT) {
		require.NoError(c, get("a", &appsv1.Deployment{}))
		require.NoError(c, get("a-config", &corev1.ConfigMap{}))
	})

	// A configuration's listening plugins add ports, merged with --port.
	cfg := filepath.Join(t.TempDir(), "fwd.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("pipeline:\n  inputs:\n    - name: forward\n  outputs:\n    - name: stdout\n      match: '*'\n"), 0o600))
	r = tpctl(t, env, "pipeline", "create", "--name", "fwd", "--config-file", cfg, "--port", "udp/5140", "--service-type", "NodePort", "--wait=ports")
	require.NoError(t, r.err, r.errOut)
	eventually(t, "Service fwd", func(c *assert.CollectT) {
		require.NoError(c, get("fwd", svc))
		assert.ElementsMatch(c, []string{"udp/5140->5140", "tcp/24224->24224"}, servicePorts(svc))
		assert.Equal(c, corev1.ServiceTypeNodePort, svc.Spec.Type)
	})

	// Updating other fields never resets the Service type; changing it applies to all ports.
	r = tpctl(t, env, "pipeline", "update", "fwd", "--image", "fluent/fluent-bit:4.0.3", "--replicas", "2", "--wait=ports")
	require.NoError(t, r.err, r.errOut)
	p := &v1alpha1.Pipeline{}
	require.NoError(t, get("fwd", p))
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, p.Spec.ServiceType)
	assert.Equal(t, "fluent/fluent-bit:4.0.3", p.Spec.Image)
	dep := &appsv1.Deployment{}
	eventually(t, "Deployment fwd rolled with the new image", func(c *assert.CollectT) {
		require.NoError(c, get("fwd", dep))
		assert.Equal(c, "fluent/fluent-bit:4.0.3", dep.Spec.Template.Spec.Containers[0].Image)
		assert.Equal(c, int32(2), *dep.Spec.Replicas)
	})
	require.NoError(t, get("fwd", svc))
	assert.Equal(t, corev1.ServiceTypeNodePort, svc.Spec.Type)
	r = tpctl(t, env, "pipeline", "update", "fwd", "--service-type", "ClusterIP")
	require.NoError(t, r.err, r.errOut)
	eventually(t, "Service fwd becomes ClusterIP", func(c *assert.CollectT) {
		require.NoError(c, get("fwd", svc))
		assert.Equal(c, corev1.ServiceTypeClusterIP, svc.Spec.Type)
		assert.Len(c, svc.Spec.Ports, 2)
	})

	// Dry runs send nothing that stays.
	r = tpctl(t, env, "pipeline", "create", "--name", "dry", "--port", "tcp/9999", "--dry-run", "-o", "yaml")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "name: dry")
	assert.Error(t, get("dry", &v1alpha1.Pipeline{}))

	// Specific errors.
	r = tpctl(t, env, "pipeline", "create", "--name", "dup", "--port", "tcp/80", "--port", "80/tcp")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.ErrorContains(t, r.err, "port 1 (tcp/80) and port 2 (80/tcp) both use it")
	r = tpctl(t, env, "pipeline", "create", "--name", "x", "--instance", "nope")
	assert.ErrorContains(t, r.err, `core instance "nope" not found in namespace "`+env.Namespace+`"; existing: core`)
	args := []string{"pipeline", "create", "--name", "many-args"}
	for range v1alpha1.MaxPortsPerPipeline + 1 {
		args = append(args, "--arg", "-v")
	}
	r = tpctl(t, env, args...)
	var apiErr *manage.APIError
	require.ErrorAs(t, r.err, &apiErr, "the API server, not tpctl, rejects this one")
	assert.Contains(t, r.err.Error(), "the API server refused it (Invalid, 422)")
	assert.Contains(t, r.err.Error(), "spec.args: Too many: 65: must have at most 64 items")

	// list and get see the instance's health-check pipeline as well.
	r = tpctl(t, env, "pipeline", "list", "-o", "json")
	require.NoError(t, r.err)
	var list v1alpha1.PipelineList
	require.NoError(t, json.Unmarshal([]byte(r.out), &list))
	var names []string
	for _, item := range list.Items {
		names = append(names, item.Name)
	}
	assert.Equal(t, []string{"a", "b", "core-health", "fwd"}, names)
	r = tpctl(t, env, "pipeline", "get", "b")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "PortsAssigned  True    Reassigned")

	// Delete asks for --yes without a terminal, then deletes.
	r = tpctl(t, env, "pipeline", "delete", "a")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	require.NoError(t, get("a", &v1alpha1.Pipeline{}))
	r = tpctl(t, env, "pipeline", "delete", "a", "--yes")
	require.NoError(t, r.err)
	eventually(t, "pipeline a gone", func(c *assert.CollectT) {
		assert.Error(c, get("a", &v1alpha1.Pipeline{}))
	})
}

func TestInstanceCommandsAgainstTheOperator(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	r := tpctl(t, env, "pipeline", "create", "--name", "a", "--port", "tcp/2020", "--wait=ports")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, "2021 (reassigned)", "tcp/2020 is the health check's")

	r = tpctl(t, env, "instance", "update", "--https-proxy", "http://proxy.test:3128", "--no-proxy", "localhost,.svc")
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.out, `core instance "core" updated`)
	dep := &appsv1.Deployment{}
	eventually(t, "the proxy reaches the pipeline's pods", func(c *assert.CollectT) {
		require.NoError(c, env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "a"}, dep))
		env := map[string]string{}
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		assert.Equal(c, "http://proxy.test:3128", env["HTTPS_PROXY"])
		assert.Equal(c, "localhost,.svc", env["NO_PROXY"])
	})

	r = tpctl(t, env, "instance", "update", "core", "--no-health-check")
	require.NoError(t, r.err, r.errOut)
	eventually(t, "the health-check pipeline goes", func(c *assert.CollectT) {
		err := env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "core-health"}, &v1alpha1.Pipeline{})
		assert.Error(c, err)
	})
	r = tpctl(t, env, "instance", "get", "-o", "yaml")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "enabled: false")
	assert.Contains(t, r.out, "httpsProxy: http://proxy.test:3128")
	r = tpctl(t, env, "instance", "list")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "off")
}
