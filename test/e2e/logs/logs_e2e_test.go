//go:build e2e

// Package logs tests `tpctl pipeline logs` on the full node: the kubelet
// serves the pods' logs through the API server as on a real host.
package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/images"
)

// A pipeline runs the harness's sink image, which logs what it receives.
// `pipeline logs` prints the pod's log; `pipeline logs -f` prints a line
// sent after it started, and ends with exit status 0 on SIGINT.
func TestPipelineLogsOnNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sn := e2etest.StartSinkNode(ctx, t)
	bin, n, conn := sn.Bin, sn.Node, sn.Conn

	out, errOut, err := e2etest.Run(bin, append([]string{"pipeline", "create", "--name", "sink",
		"--image", images.SinkRef, "--arg=--tcp=5170", "--port", "tcp/5170", "--no-auto-ports",
		"--service-type", "NodePort", "--wait", "--timeout", "5m"}, conn...)...)
	require.NoError(t, err, "create: %s\n%s", out, errOut)

	// The sink logs its listeners at start.
	var logs string
	require.Eventually(t, func() bool {
		logs, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "logs", "sink"}, conn...)...)
		return err == nil && strings.Contains(logs, "sink listening")
	}, time.Minute, time.Second, "pipeline logs: %v\n%s\n%s", err, logs, errOut)
	t.Logf("pipeline logs:\n%s", logs)
	assert.NotContains(t, logs, "[sink-", "one pod: no prefix")

	_, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "logs", "nope"}, conn...)...)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, errOut, `pipeline "nope" not found`)

	// Follow, then send a line through the node port: it shows up.
	follow := exec.Command(bin, append([]string{"pipeline", "logs", "sink", "-f", "--tail", "1"}, conn...)...)
	stdout, err := follow.StdoutPipe()
	require.NoError(t, err)
	stderr, err := follow.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, follow.Start())
	defer func() { _ = follow.Process.Kill() }()
	lines, notices := make(chan string, 100), make(chan string, 100)
	scan := func(r io.Reader, ch chan<- string) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}
	go scan(stdout, lines)
	go scan(stderr, notices)
	// waitFor reads ch until a line contains want.
	waitFor := func(ch <-chan string, want, what string) string {
		t.Helper()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-ch:
				require.True(t, ok, "the follow ended early while waiting for %s", what)
				if strings.Contains(l, want) {
					return l
				}
			case <-deadline:
				t.Fatalf("%s never appeared in the followed log", what)
			}
		}
	}
	payload := fmt.Sprintf("logs-e2e-%d", time.Now().UnixNano())
	addr := ""
	svcOut, _, err := e2etest.Run(bin, append([]string{"pipeline", "endpoints", "sink"}, conn...)...)
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
	l := waitFor(lines, payload, "the payload")
	assert.False(t, strings.HasPrefix(l, "["), "one pod: no prefix: %s", l)

	// Scale up: the follow picks up the new pod, and from then on every
	// line names its pod.
	out, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "update", "sink", "--replicas", "2"}, conn...)...)
	require.NoError(t, err, "update: %s\n%s", out, errOut)
	n1 := waitFor(notices, "appeared", "the new pod's notice")
	t.Logf("stderr: %s", n1)
	l = waitFor(lines, "sink listening", "the new pod's first line")
	assert.True(t, strings.HasPrefix(l, "[sink-"), "several pods: prefixed: %s", l)

	// SIGINT: both pipes end with the process, then it is waited for.
	require.NoError(t, follow.Process.Signal(syscall.SIGINT))
	var rest []string
	deadline := time.After(30 * time.Second)
	for lines != nil || notices != nil {
		select {
		case _, ok := <-lines:
			if !ok {
				lines = nil
			}
		case l, ok := <-notices:
			if !ok {
				notices = nil
				continue
			}
			rest = append(rest, l)
		case <-deadline:
			t.Fatal("the follow did not end on SIGINT")
		}
	}
	err = follow.Wait()
	if errors.As(err, &exit) {
		t.Fatalf("exit status %d after SIGINT; stderr: %s", exit.ExitCode(), strings.Join(rest, "\n"))
	}
	require.NoError(t, err)
	for _, l := range rest {
		assert.NotContains(t, l, "Error", "no noise on SIGINT")
	}
}
