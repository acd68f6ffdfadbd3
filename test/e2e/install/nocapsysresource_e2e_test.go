//go:build e2e

package install

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
)

// guaranteedPod asks for equal requests and limits: the kubelet gives its
// container oom_score_adj -997 and the sandbox -998, which runc cannot set
// without CAP_SYS_RESOURCE unless containerd restricts the adjustment.
var guaranteedPod = `apiVersion: v1
kind: Pod
metadata: {name: guaranteed, namespace: default}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: sink
    image: ` + images.SinkRef + `
    imagePullPolicy: Never
    args: ["--http=:18095"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 50m, memory: 32Mi}
`

// TestNoCapSysResourceOnBootedHost installs on a host whose bounding set
// lacks CAP_SYS_RESOURCE (as in LXC), with containerd 2: tpctl derives
// K3s's v3 containerd template with restrict_oom_score_adj inserted (the
// generated config lacks the key), restarts K3s, and a Guaranteed pod runs.
func TestNoCapSysResourceOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-nocap", hosttest.Options{DropCapabilities: []string{"CAP_SYS_RESOURCE"}})
	h, a := e.h, e.a
	capb, err := h.Exec(ctx, "sh", "-c", "grep CapBnd /proc/1/status")
	require.NoError(t, err, capb)
	t.Logf("the host's bounding set: %s", strings.TrimSpace(capb))

	r := tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE install without CAP_SYS_RESOURCE: %s", r.took.Round(time.Millisecond))
	ev, ok := r.stepEvent("containerd template", installer.EventDone)
	require.True(t, ok, "the containerd template step ran: %s", r)
	t.Logf("containerd template: %s", ev.Message)
	tmpl, err := h.Exec(ctx, "cat", "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl")
	require.NoError(t, err, tmpl)
	assert.Contains(t, tmpl, "restrict_oom_score_adj = true", "the v3 template (containerd 2) sets the key")
	generated, err := h.Exec(ctx, "cat", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml")
	require.NoError(t, err, generated)
	assert.Contains(t, generated, "restrict_oom_score_adj = true", "containerd runs with the template's config")
	assert.Contains(t, generated, "version = 3", "containerd 2's config layout")

	e.apply(ctx, t, "guaranteed.yaml", guaranteedPod)
	var last string
	if !assert.Eventually(t, func() bool {
		out, err := e.kubectl(ctx, "-n", "default", "get", "pod", "guaranteed", "-o", "jsonpath={.status.qosClass} {.status.phase} {.status.containerStatuses[0].ready}")
		last = out
		return err == nil && strings.TrimSpace(out) == "Guaranteed Running true"
	}, 3*time.Minute, 2*time.Second, "the Guaranteed pod does not run without CAP_SYS_RESOURCE") {
		out, _ := e.kubectl(ctx, "-n", "default", "describe", "pod", "guaranteed")
		t.Logf("last look %q:\n%s", last, out)
	}
	out, err := e.kubectl(ctx, "delete", "-f", manifestPath("guaranteed.yaml"), "--wait")
	require.NoError(t, err, out)

	e.uninstall(t)
}
