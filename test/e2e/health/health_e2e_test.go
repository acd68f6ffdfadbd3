//go:build e2e

// Package health tests, on the full node, that a pipeline whose pods do
// not run says why in `tpctl pipeline list` and `tpctl pipeline get`: the
// kubelet's own status and termination message reach the Ready condition.
package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/images"
)

// A pipeline whose container exits at once (the sink refuses an unknown
// flag) crash-loops on the node: `pipeline list` shows CrashLoopBackOff
// and `pipeline get` the exit code and the container's last words, which
// the kubelet took from its log. Fixing the arguments makes it Available.
func TestCrashLoopingPipelineSaysWhy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sn := e2etest.StartSinkNode(ctx, t)
	bin, conn := sn.Bin, sn.Conn

	out, errOut, err := e2etest.Run(bin, append([]string{"pipeline", "create", "--name", "broken",
		"--image", images.SinkRef, "--arg=--no-such-flag", "--port", "tcp/5170", "--no-auto-ports",
		"--service-type", "ClusterIP"}, conn...)...)
	require.NoError(t, err, "create: %s\n%s", out, errOut)

	var list string
	require.Eventually(t, func() bool {
		list, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "list"}, conn...)...)
		return err == nil && strings.Contains(list, v1alpha1.ReasonCrashLoopBackOff)
	}, 4*time.Minute, 2*time.Second, "pipeline list never showed CrashLoopBackOff: %v\n%s\n%s", err, list, errOut)
	t.Logf("pipeline list:\n%s", list)

	// The container runs for a moment between back-offs: the reason holds.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		list, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "list"}, conn...)...)
		require.NoError(t, err, errOut)
		require.Contains(t, list, v1alpha1.ReasonCrashLoopBackOff, "the reason flapped")
	}

	get, errOut, err := e2etest.Run(bin, append([]string{"pipeline", "get", "broken"}, conn...)...)
	require.NoError(t, err, "get: %s", errOut)
	t.Logf("pipeline get broken:\n%s", get)
	assert.Contains(t, get, "Ready:")
	assert.Contains(t, get, "CrashLoopBackOff")
	assert.Contains(t, get, "0/1 pod(s) ready; pod broken-")
	assert.Contains(t, get, "container pipeline is crash-looping")
	assert.Contains(t, get, "last exit code 2")
	assert.Contains(t, get, "sink: parse arguments: flag provided but not defined: -no-such-flag", "the container's last log line, kept by the kubelet")

	out, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "update", "broken", "--arg=--tcp=5170",
		"--wait", "--timeout", "5m"}, conn...)...)
	require.NoError(t, err, "update: %s\n%s", out, errOut)
	list, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "list"}, conn...)...)
	require.NoError(t, err, errOut)
	t.Logf("pipeline list after the fix:\n%s", list)
	assert.Contains(t, list, v1alpha1.ReasonAvailable)
	assert.NotContains(t, list, v1alpha1.ReasonCrashLoopBackOff)
}
