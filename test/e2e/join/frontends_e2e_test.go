//go:build e2e

package join

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/hosttest"
)

// checkFrontendOnEveryNode sends one record to the NodePort of pipeline
// name on each host's node address, from this machine (the bridge's
// gateway), and waits until the pipeline's pods together received every
// record: the frontend answers on every node, the agent's included. Each
// pod's count is read through the API server's pod proxy (the sink's
// /received on its HTTP port), as `tpctl pipeline top` reads Fluent Bit.
func checkFrontendOnEveryNode(ctx context.Context, t *testing.T, srv *hosttest.Host, hosts []*hosttest.Host, name string, backend, httpPort int) {
	t.Helper()
	out, err := kubectl(ctx, srv, "get", "svc", "-A", "-l", v1alpha1.LabelPipeline+"="+name, "-o",
		fmt.Sprintf(`jsonpath={.items[0].spec.ports[?(@.targetPort==%d)].nodePort}`, backend))
	require.NoError(t, err, "the pipeline's Service")
	nodePort, err := strconv.Atoi(strings.TrimSpace(out))
	require.NoError(t, err, "the NodePort of backend %d: %q", backend, out)

	var want []string
	sent := 0
	for _, h := range hosts {
		addr := net.JoinHostPort(h.Address().String(), strconv.Itoa(nodePort))
		rec := fmt.Sprintf("record for the frontend on %s", h.Name())
		// kube-proxy on a node that just joined may program the port a
		// moment after its pod is Ready: retry the connection, never the
		// record once written.
		var c net.Conn
		require.Eventually(t, func() bool {
			c, err = net.DialTimeout("tcp", addr, 3*time.Second)
			return err == nil
		}, time.Minute, time.Second, "connect to the frontend on %s (%s): %v", h.Name(), addr, err)
		n, err := c.Write([]byte(rec + "\n"))
		require.NoError(t, err, "send to %s", addr)
		require.NoError(t, c.Close())
		sent += n
		want = append(want, rec)
		t.Logf("sent %d bytes to the NodePort on %s (%s)", n, h.Name(), addr)
	}

	var got int64
	var last []string
	var lastErr error
	ok := assert.Eventually(t, func() bool {
		out, err := kubectl(ctx, srv, "get", "pods", "-A", "-l", v1alpha1.LabelPipeline+"="+name, "-o",
			`jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
		if err != nil {
			lastErr = err
			return false
		}
		got, last = 0, nil
		for _, pod := range strings.Fields(out) {
			ns, pn, _ := strings.Cut(pod, "/")
			body, err := kubectl(ctx, srv, "get", "--raw",
				fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:%d/proxy/received", ns, pn, httpPort))
			if err != nil {
				lastErr = fmt.Errorf("GET /received of %s: %w", pod, err)
				return false
			}
			var rep received
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				lastErr = fmt.Errorf("GET /received of %s: %w: %s", pod, err, body)
				return false
			}
			for _, p := range rep.Ports {
				if p.Protocol == "tcp" && p.Port == backend {
					got += p.Bytes
					last = append(last, p.Last...)
				}
			}
		}
		lastErr = nil
		return got >= int64(sent)
	}, 2*time.Minute, 2*time.Second, "the pipeline's pods received the records sent to every node's frontend")
	t.Logf("FIGURE frontend on every node: %d nodes, %d bytes sent, %d received by the pipeline's pods", len(hosts), sent, got)
	if !ok {
		t.Logf("the last read of the pods' counts failed with: %v", lastErr)
		return
	}
	joined := strings.Join(last, "\n")
	for _, w := range want {
		assert.Contains(t, joined, w)
	}
}

// received is the part of the sink's GET /received that the check reads.
type received struct {
	Ports []struct {
		Protocol string   `json:"protocol"`
		Port     int      `json:"port"`
		Bytes    int64    `json:"bytes"`
		Last     []string `json:"last"`
	} `json:"ports"`
}
