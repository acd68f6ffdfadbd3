//go:build e2e

// Package metrics tests `tpctl pipeline top` on the full node: the sink
// image answers Fluent Bit's HTTP API on the metrics port the operator
// passes, and tpctl reads it through the API server's pod proxy.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/images"
)

func top(t *testing.T, bin string, conn []string) manage.PipelineMetrics {
	t.Helper()
	out, errOut, err := e2etest.Run(bin, append([]string{"pipeline", "top", "sink", "--once", "--interval", "2s", "-o", "json"}, conn...)...)
	require.NoError(t, err, "top: %s\n%s", out, errOut)
	var s manage.MetricsSample
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	require.Len(t, s.Pipelines, 1, out)
	return s.Pipelines[0]
}

// A pipeline runs the sink image; bytes sent to its node port show up in
// `pipeline top` as moving records/s and bytes/s in and out.
func TestPipelineTopOnNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sn := e2etest.StartSinkNode(ctx, t)
	bin, n, conn := sn.Bin, sn.Node, sn.Conn

	out, errOut, err := e2etest.Run(bin, append([]string{"pipeline", "create", "--name", "sink",
		"--image", images.SinkRef, "--arg=--tcp=5170", "--port", "tcp/5170", "--no-auto-ports",
		"--service-type", "NodePort", "--wait", "--timeout", "5m"}, conn...)...)
	require.NoError(t, err, "create: %s\n%s", out, errOut)

	// The metrics port is internal: no endpoint of the pipeline names it.
	svcOut, _, err := e2etest.Run(bin, append([]string{"pipeline", "endpoints", "sink"}, conn...)...)
	require.NoError(t, err)
	assert.NotContains(t, svcOut, ":2020", "the metrics port is never a frontend")
	addr := ""
	for _, f := range strings.Fields(svcOut) {
		if strings.HasPrefix(f, n.NodeIP()+":") {
			addr = f
		}
	}
	require.NotEmpty(t, addr, "no node address in:\n%s", svcOut)

	var idle manage.PipelineMetrics
	require.Eventually(t, func() bool {
		out, _, err := e2etest.Run(bin, append([]string{"pipeline", "top", "sink", "--once", "--interval", "1s", "-o", "json"}, conn...)...)
		if err != nil {
			return false
		}
		var s manage.MetricsSample
		if json.Unmarshal([]byte(out), &s) != nil || len(s.Pipelines) != 1 {
			return false
		}
		idle = s.Pipelines[0]
		return idle.Read == 1
	}, 2*time.Minute, 2*time.Second, "top never read the pod")
	t.Logf("idle: %+v", idle)
	require.NotNil(t, idle.Rates)
	assert.Zero(t, idle.Rates.BytesIn, "nothing sent yet")

	// Send 64-byte lines for as long as the next top runs.
	var sent atomic.Int64
	sendCtx, stopSend := context.WithCancel(ctx)
	defer stopSend()
	go func() {
		line := []byte(strings.Repeat("x", 63) + "\n")
		for sendCtx.Err() == nil {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for sendCtx.Err() == nil {
				if _, err := c.Write(line); err != nil {
					break
				}
				sent.Add(int64(len(line)))
				time.Sleep(5 * time.Millisecond)
			}
			_ = c.Close()
		}
	}()
	require.Eventually(t, func() bool { return sent.Load() > 0 }, time.Minute, 100*time.Millisecond)
	busy := top(t, bin, conn)
	t.Logf("busy: %+v rates %+v", busy.Totals, *busy.Rates)
	require.NotNil(t, busy.Rates)
	assert.Greater(t, busy.Rates.BytesIn, 0.0, "bytes/s in while sending")
	assert.Greater(t, busy.Rates.BytesOut, 0.0, "bytes/s out while sending")
	assert.Greater(t, busy.Totals.BytesIn, idle.Totals.BytesIn)
	names := []string{}
	for _, p := range busy.Plugins {
		names = append(names, fmt.Sprintf("%s/%s", p.Kind, p.Name))
	}
	assert.Equal(t, []string{"input/tcp.0", "output/null.1"}, names)

	// Still moving: the next sample counts more.
	again := top(t, bin, conn)
	assert.Greater(t, again.Totals.BytesIn, busy.Totals.BytesIn)
	stopSend()

	// The table names the pipeline with a rate.
	out, errOut, err = e2etest.Run(bin, append([]string{"pipeline", "top", "--once", "--interval", "1s"}, conn...)...)
	require.NoError(t, err, "top: %s\n%s", out, errOut)
	t.Logf("pipeline top --once:\n%s", out)
	assert.Regexp(t, `(?m)^sink\s+1\s+\d+\.\d\s`, out)
}
