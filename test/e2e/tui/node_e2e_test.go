//go:build e2e

package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/images"
)

// runTpctl runs the built binary and returns its stdout; stderr goes to
// the test log.
func runTpctl(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if errOut.Len() > 0 {
		t.Logf("tpctl %s: stderr:\n%s", strings.Join(args, " "), errOut.String())
	}
	require.NoError(t, err, "tpctl %s\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

// On the full node: `tpctl pipeline create … --wait` returns once the
// pipeline's pod is Ready, and data sent to the address `tpctl pipeline
// endpoints` prints reaches that pod. The pipeline runs the harness's sink
// image, which records what it receives and reports it over HTTP (a
// second port of the same pipeline).
func TestPipelineOnNodeReceivesData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sn := e2etest.StartSinkNode(ctx, t)
	bin, n, _, conn := sn.Bin, sn.Node, sn.Env, sn.Conn

	start := time.Now()
	out := runTpctl(t, bin, append([]string{"pipeline", "create", "--name", "sink",
		"--image", images.SinkRef, "--arg=--tcp=5170", "--arg=--http=:8080",
		"--port", "tcp/5170", "--port", "http=tcp/8080", "--no-auto-ports",
		"--service-type", "NodePort", "--wait", "--timeout", "5m"}, conn...)...)
	t.Logf("create --wait returned after %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	assert.Contains(t, out, "Ready:              1/1 Available")

	table := runTpctl(t, bin, append([]string{"pipeline", "endpoints", "sink"}, conn...)...)
	t.Logf("endpoints:\n%s", table)
	var eps []manage.Endpoint
	require.NoError(t, json.Unmarshal([]byte(runTpctl(t, bin, append([]string{"pipeline", "endpoints", "sink", "-o", "json"}, conn...)...)), &eps))
	addr := map[int32]string{}
	for _, e := range eps {
		assert.Equal(t, manage.ScopeNode, e.Scope, "NodePort: a node address")
		assert.True(t, strings.HasPrefix(e.Address, n.NodeIP()+":"), "%s is on the node's address %s", e.Address, n.NodeIP())
		addr[e.Backend] = e.Address
	}
	require.NotEmpty(t, addr[5170])
	require.NotEmpty(t, addr[8080])
	assert.Contains(t, table, addr[5170], "the table prints the same address")

	// Ready is the pod's state; kube-proxy programs the node port from the
	// Service's endpoints a moment later, so the first dials may be refused.
	payload := fmt.Sprintf("hello from tpctl e2e %d", time.Now().UnixNano())
	var c net.Conn
	var err error
	dialStart := time.Now()
	require.Eventually(t, func() bool {
		c, err = net.DialTimeout("tcp", addr[5170], 2*time.Second)
		return err == nil
	}, time.Minute, 100*time.Millisecond, "dial %s: %v", addr[5170], err)
	t.Logf("%s accepted a connection %s after Ready", addr[5170], time.Since(dialStart).Round(time.Millisecond))
	_, err = c.Write([]byte(payload + "\n"))
	require.NoError(t, err)
	require.NoError(t, c.Close())

	var got string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr[8080] + "/received")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got = string(b)
		return err == nil && strings.Contains(got, payload)
	}, time.Minute, 200*time.Millisecond, "the pod never reported the payload; last report: %s", got)
	t.Logf("the sink received: %s", got)

	// The TUI's logs page of the pipeline shows its pod's log: the sink's
	// start line and the payload it logged, followed live.
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Log("tmux is not installed: the logs page is not tried")
		return
	}
	x := newTmux(t)
	x.start("logs", 120, 36, []string{"TERM=xterm-256color", "CI=", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")},
		append([]string{bin, "tui"}, conn...)...)
	x.waitScreen("logs", "sink", "q quit")
	x.keys("logs", "/")
	x.typeText("logs", "sink")
	x.keys("logs", "Enter", "l")
	s := x.waitScreen("logs", "Logs of pipeline sink", "sink listening", payload)
	t.Logf("logs page:\n%s", s)
	x.keys("logs", "p")
	x.waitScreen("logs", "paused · 0 new lines")
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	later := "a line sent while paused " + stamp
	c, err = net.DialTimeout("tcp", addr[5170], 5*time.Second)
	require.NoError(t, err)
	_, err = c.Write([]byte(later + "\n"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool {
		s = x.capture("logs", false)
		return strings.Contains(s, "paused ·") && !strings.Contains(s, "· 0 new lines")
	}, 30*time.Second, 100*time.Millisecond, "the paused page never counted the new line; last screen:\n%s", s)
	t.Logf("paused logs page:\n%s", s)
	x.keys("logs", "p")
	x.waitScreen("logs", "following", "a line sent while paused")
	// Wrapped, the sink's line is whole even when wider than the pane.
	x.keys("logs", "w")
	s = x.waitScreen("logs", "wrap on", stamp+`\n"`)
	t.Logf("wrapped logs page:\n%s", s)
	x.keys("logs", "Escape")
	x.waitScreen("logs", "Pipelines ·")
	x.keys("logs", "q")
}
