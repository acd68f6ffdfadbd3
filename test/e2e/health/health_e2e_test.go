//go:build e2e

// Package health tests, on the full node, that a pipeline whose pods do
// not run says why in `tpctl pipeline list` and `tpctl pipeline get`: the
// kubelet's own status and termination message reach the Ready condition.
package health

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/testenv"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/images"
)

func buildTpctl(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TPCTL_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "bin", "tpctl")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	require.NoError(t, err)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/tpctl")
	cmd.Dir = strings.TrimSpace(string(root))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/tpctl: %s", b)
	return out
}

func run(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// A pipeline whose container exits at once (the sink refuses an unknown
// flag) crash-loops on the node: `pipeline list` shows CrashLoopBackOff
// and `pipeline get` the exit code and the container's last words, which
// the kubelet took from its log. Fixing the arguments makes it Available.
func TestCrashLoopingPipelineSaysWhy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the node harness changes the host's network and cgroups")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := buildTpctl(t)
	sinkTar, err := images.Build(ctx, t.TempDir(), images.Sink())
	require.NoError(t, err)
	n := cluster.StartNode(ctx, t, cluster.NodeOptions{Images: []string{sinkTar}, Logf: t.Logf})
	env := testenv.StartEnvOn(ctx, t, n.Kubeconfig(), n.RESTConfig(), testenv.EnvOptions{
		Instance: func(i *v1alpha1.CoreInstance) { i.Spec.HealthCheck.Enabled = ptr.To(false) },
	})
	conn := []string{"--kubeconfig", n.Kubeconfig(), "--namespace", env.Namespace}

	out, errOut, err := run(t, bin, append([]string{"pipeline", "create", "--name", "broken",
		"--image", images.SinkRef, "--arg=--no-such-flag", "--port", "tcp/5170", "--no-auto-ports",
		"--service-type", "ClusterIP"}, conn...)...)
	require.NoError(t, err, "create: %s\n%s", out, errOut)

	var list string
	require.Eventually(t, func() bool {
		list, errOut, err = run(t, bin, append([]string{"pipeline", "list"}, conn...)...)
		return err == nil && strings.Contains(list, v1alpha1.ReasonCrashLoopBackOff)
	}, 4*time.Minute, 2*time.Second, "pipeline list never showed CrashLoopBackOff: %v\n%s\n%s", err, list, errOut)
	t.Logf("pipeline list:\n%s", list)

	// The container runs for a moment between back-offs: the reason holds.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		list, errOut, err = run(t, bin, append([]string{"pipeline", "list"}, conn...)...)
		require.NoError(t, err, errOut)
		require.Contains(t, list, v1alpha1.ReasonCrashLoopBackOff, "the reason flapped")
	}

	get, errOut, err := run(t, bin, append([]string{"pipeline", "get", "broken"}, conn...)...)
	require.NoError(t, err, "get: %s", errOut)
	t.Logf("pipeline get broken:\n%s", get)
	assert.Contains(t, get, "Ready:")
	assert.Contains(t, get, "CrashLoopBackOff")
	assert.Contains(t, get, "0/1 pod(s) ready; pod broken-")
	assert.Contains(t, get, "container pipeline is crash-looping")
	assert.Contains(t, get, "last exit code 2")
	assert.Contains(t, get, "sink: parse arguments: flag provided but not defined: -no-such-flag", "the container's last log line, kept by the kubelet")

	out, errOut, err = run(t, bin, append([]string{"pipeline", "update", "broken", "--arg=--tcp=5170",
		"--wait", "--timeout", "5m"}, conn...)...)
	require.NoError(t, err, "update: %s\n%s", out, errOut)
	list, errOut, err = run(t, bin, append([]string{"pipeline", "list"}, conn...)...)
	require.NoError(t, err, errOut)
	t.Logf("pipeline list after the fix:\n%s", list)
	assert.Contains(t, list, v1alpha1.ReasonAvailable)
	assert.NotContains(t, list, v1alpha1.ReasonCrashLoopBackOff)
}
