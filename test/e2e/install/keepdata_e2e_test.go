//go:build e2e

package install

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/hosttest"
)

// TestKeepDataCycleOnBootedHost is what a user does before reinstalling:
// install, create pipelines, `uninstall --keep-data`, install again. Every
// Pipeline and the CoreInstance come back (same UIDs, same frontends), the
// workloads run again and bytes sent to a frontend reach the pod. A full
// uninstall then leaves the host as it was before the first install.
func TestKeepDataCycleOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-keep", hosttest.Options{})
	h, a := e.h, e.a

	r := tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	// The operator image is pinned: image garbage collection keeps it on a
	// host that could not pull it again.
	pinned, err := h.Exec(ctx, "/usr/local/bin/k3s", "ctr", "-n", "k8s.io", "images", "ls", "-q", `labels."io.cri-containerd.pinned"==pinned`)
	require.NoError(t, err, pinned)
	assert.Contains(t, pinned, "tpctl.local/tpctl-operator:", "the operator image is pinned")

	pa := e.createPipeline(ctx, t, "keep-a", "--port", "data=tcp/15180", "--port", "report=tcp/18090",
		"--arg=--tcp=15180", "--arg=--http=:18090")
	pb := e.createPipeline(ctx, t, "keep-b", "--port", "syslog=udp/15181", "--port", "report=tcp/18091",
		"--arg=--udp=15181", "--arg=--http=:18091")
	instUID := e.uid(ctx, t, "coreinstances.telemetry.tpctl.dev", "core")

	r = tpctl(ctx, h, nil, nil, "uninstall", "--yes", "--keep-data")
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE uninstall --keep-data: %s", r.took.Round(time.Millisecond))
	_, err = h.Exec(ctx, "systemctl", "is-active", "--quiet", "k3s.service")
	require.Error(t, err, "K3s still runs after uninstall --keep-data")

	r = tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE install over kept data: %s", r.took.Round(time.Millisecond))

	assert.Equal(t, instUID, e.uid(ctx, t, "coreinstances.telemetry.tpctl.dev", "core"), "the CoreInstance is the kept one, not a new one")
	for _, old := range []*v1alpha1.Pipeline{pa, pb} {
		got := e.readyPipeline(ctx, t, old.Name)
		assert.Equal(t, old.UID, got.UID, "pipeline %s is the kept one", old.Name)
		assert.Equal(t, frontends(old), frontends(got), "pipeline %s keeps its frontends", old.Name)
	}
	// The workload runs again: bytes reach the kept pipeline's pod through
	// its kept frontend.
	e.waitIngress(ctx, t, "default", "keep-a")
	e.sendUntilReceived(ctx, t, "tcp", frontend(t, pa, v1alpha1.ProtocolTCP, 15180).Frontend, 15180,
		frontend(t, pa, v1alpha1.ProtocolTCP, 18090).Frontend, "after uninstall --keep-data and install")
	e.sendUntilReceived(ctx, t, "udp", frontend(t, pb, v1alpha1.ProtocolUDP, 15181).Frontend, 15181,
		frontend(t, pb, v1alpha1.ProtocolTCP, 18091).Frontend, "udp after uninstall --keep-data and install")

	e.uninstall(t)
}

// uid is the UID of a namespaced object of default.
func (e *e2e) uid(ctx context.Context, t *testing.T, resource, name string) string {
	t.Helper()
	out, err := e.kubectl(ctx, "-n", "default", "get", resource, name, "-o", "jsonpath={.metadata.uid}")
	require.NoError(t, err, out)
	require.NotEmpty(t, strings.TrimSpace(out))
	return strings.TrimSpace(out)
}

// readyPipeline waits until `tpctl pipeline get` shows name Ready and
// returns it.
func (e *e2e) readyPipeline(ctx context.Context, t *testing.T, name string) *v1alpha1.Pipeline {
	t.Helper()
	var p v1alpha1.Pipeline
	var last string
	ok := assert.Eventually(t, func() bool {
		out, err := e.tpctlText(ctx, "pipeline", "get", name, "-o", "json")
		if err != nil {
			last = err.Error() + ": " + out
			return false
		}
		p = v1alpha1.Pipeline{}
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			last = err.Error()
			return false
		}
		last = out
		return meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)
	}, 4*time.Minute, 2*time.Second, "pipeline %s is not Ready after the install over kept data", name)
	if !ok {
		t.Logf("last look: %s", last)
		e.logState(ctx, t)
		t.FailNow()
	}
	return &p
}

// frontends maps "tcp/15180" (protocol/backend) to its frontend.
func frontends(p *v1alpha1.Pipeline) map[string]int32 {
	out := map[string]int32{}
	for _, ps := range p.Status.Ports {
		out[string(ps.Protocol)+"/"+strconv.Itoa(int(ps.Backend))] = ps.Frontend
	}
	return out
}
