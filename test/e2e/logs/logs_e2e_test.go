//go:build e2e

// Package logs tests `tpctl pipeline logs` on the full node: the kubelet
// serves the pods' logs through the API server as on a real host.
package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// A pipeline runs the harness's sink image, which logs what it receives.
// `pipeline logs` prints the pod's log; `pipeline logs -f` prints a line
// sent after it started, and ends with exit status 0 on SIGINT.
func TestPipelineLogsOnNode(t *testing.T) {
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

	out, errOut, err := run(t, bin, append([]string{"pipeline", "create", "--name", "sink",
		"--image", images.SinkRef, "--arg=--tcp=5170", "--port", "tcp/5170", "--no-auto-ports",
		"--service-type", "NodePort", "--wait", "--timeout", "5m"}, conn...)...)
	require.NoError(t, err, "create: %s\n%s", out, errOut)

	// The sink logs its listeners at start.
	var logs string
	require.Eventually(t, func() bool {
		logs, errOut, err = run(t, bin, append([]string{"pipeline", "logs", "sink"}, conn...)...)
		return err == nil && strings.Contains(logs, "sink listening")
	}, time.Minute, time.Second, "pipeline logs: %v\n%s\n%s", err, logs, errOut)
	t.Logf("pipeline logs:\n%s", logs)
	assert.NotContains(t, logs, "[sink-", "one pod: no prefix")

	_, errOut, err = run(t, bin, append([]string{"pipeline", "logs", "nope"}, conn...)...)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, errOut, `pipeline "nope" not found`)

	// Follow, then send a line through the node port: it shows up.
	follow := exec.Command(bin, append([]string{"pipeline", "logs", "sink", "-f", "--tail", "1"}, conn...)...)
	stdout, err := follow.StdoutPipe()
	require.NoError(t, err)
	var followErr bytes.Buffer
	follow.Stderr = &followErr
	require.NoError(t, follow.Start())
	defer func() { _ = follow.Process.Kill() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	payload := fmt.Sprintf("logs-e2e-%d", time.Now().UnixNano())
	addr := ""
	svcOut, _, err := run(t, bin, append([]string{"pipeline", "endpoints", "sink"}, conn...)...)
	require.NoError(t, err)
	for _, f := range strings.Fields(svcOut) {
		if strings.HasPrefix(f, n.NodeIP()+":") {
			addr = f
		}
	}
	require.NotEmpty(t, addr, "no node address in:\n%s", svcOut)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Write([]byte(payload + "\n"))
		return err == nil
	}, time.Minute, 200*time.Millisecond)
	deadline := time.After(time.Minute)
	for found := false; !found; {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the follow ended early; stderr: %s", followErr.String())
			found = strings.Contains(l, payload)
		case <-deadline:
			t.Fatalf("the payload never appeared in the followed log; stderr: %s", followErr.String())
		}
	}
	require.NoError(t, follow.Process.Signal(syscall.SIGINT))
	werr := make(chan error, 1)
	go func() { werr <- follow.Wait() }()
	select {
	case err := <-werr:
		if errors.As(err, &exit) {
			t.Fatalf("exit status %d after SIGINT; stderr: %s", exit.ExitCode(), followErr.String())
		}
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the follow did not end on SIGINT")
	}
	assert.NotContains(t, followErr.String(), "Error", "no noise on SIGINT")
}
