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
// lacks CAP_SYS_RESOURCE (as in LXC), with containerd 2: before K3s first
// starts, tpctl writes a containerd drop-in setting restrict_oom_score_adj
// into the directory K3s's generated config imports (config-v3.toml.d), so
// K3s starts once, writes no template, and a Guaranteed pod runs.
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
	ev, ok := r.stepEvent("containerd drop-in", installer.EventDone)
	require.True(t, ok, "the containerd drop-in step ran: %s", r)
	t.Logf("containerd drop-in: %s", ev.Message)
	const etc = "/var/lib/rancher/k3s/agent/etc/containerd/"
	dropIn, err := h.Exec(ctx, "cat", etc+installer.ContainerdDropInDir+"/50-tpctl-restrict-oom-score-adj.toml")
	require.NoError(t, err, dropIn)
	assert.Contains(t, dropIn, "restrict_oom_score_adj = true", "the drop-in sets the key")
	mode, err := h.Exec(ctx, "stat", "-c", "%a", etc+installer.ContainerdDropInDir+"/50-tpctl-restrict-oom-score-adj.toml")
	require.NoError(t, err, mode)
	assert.Equal(t, "600", strings.TrimSpace(mode))
	_, err = h.Exec(ctx, "test", "!", "-e", etc+"config-v3.toml.tmpl")
	assert.NoError(t, err, "no containerd template is written")
	generated, err := h.Exec(ctx, "cat", etc+"config.toml")
	require.NoError(t, err, generated)
	assert.Contains(t, generated, "version = 3", "containerd 2's config layout")
	assert.Contains(t, generated, installer.ContainerdDropInDir+"/*.toml", "K3s's generated config imports the drop-in directory")
	// K3s started once: the drop-in was there before its first start.
	journal, err := h.Exec(ctx, "journalctl", "--no-pager", "-u", installer.UnitName, "-o", "cat")
	require.NoError(t, err, journal)
	starts := 0
	for _, l := range strings.Split(journal, "\n") {
		if strings.HasPrefix(l, "Started "+installer.UnitName) {
			starts++
		}
	}
	t.Logf("FIGURE K3s starts during the install without CAP_SYS_RESOURCE: %d", starts)
	assert.Equal(t, 1, starts, "K3s starts during the install")

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
