//go:build e2e

package install

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// Paths inside the host of the image garbage collection test, written
// before the snapshot that uninstall is compared with (CopyIn writes to the
// root's disk: a file under /tmp would be hidden by the host's tmpfs).
const (
	gcConfigFile   = e2eDir + "/install-imagegc.yaml"
	gcProbeArchive = e2eDir + "/gc/probe.tar"
	imageGCPeriod  = 5 * time.Minute // the kubelet's ImageGCPeriod, not configurable
)

// imageGCKubeletArgs make every image garbage collection of the kubelet
// remove every unused, unpinned image, as a K3s user can with kubelet-arg
// (tpctl's kubeletArgs): the disk is always over a 1 % high threshold, the
// collection frees down to 0 % (it never gets there, so it removes all it
// may), and an image is old enough as soon as it is seen. The kubelet
// still collects only every 5 minutes. (ImageMaximumGCAge, GA and on in
// Kubernetes 1.36, has no command-line flag: only a configuration file
// sets it, so kubelet-arg cannot.)
var imageGCKubeletArgs = []string{
	"image-gc-high-threshold=1",
	"image-gc-low-threshold=0",
	"minimum-image-ttl-duration=0s",
}

func gcInstallConfig() string {
	var b strings.Builder
	b.WriteString(installConfig)
	b.WriteString("kubeletArgs:\n")
	for _, a := range imageGCKubeletArgs {
		b.WriteString("- " + strconv.Quote(a) + "\n")
	}
	return b.String()
}

// TestImageGCKeepsOperatorOnBootedHost forces the kubelet's image garbage
// collection on an air-gapped host (no registry): with the operator scaled
// to 0 its image is unused, and an unused unpinned image imported for the
// purpose is removed by the collection, while the operator image, pinned by
// tpctl, stays. The operator scaled back to 1 then becomes Ready from the
// image on the node.
func TestImageGCKeepsOperatorOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	dir := t.TempDir()
	a, err := buildArtifacts(ctx, dir)
	require.NoError(t, err)
	probeTar, err := images.Build(ctx, filepath.Join(dir, "images"), images.Probe())
	require.NoError(t, err)
	lock, err := cluster.AcquireHostLock(ctx, cluster.DefaultLockPath)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, lock.Release()) })
	h := hosttest.Start(ctx, t, hosttest.Options{
		Name: "tpctl-imagegc", HostLock: lock,
		BindRO: map[string]string{launcher.DefaultComponentDir: a.components},
	})
	prepareHost(ctx, t, h, a)
	require.NoError(t, os.WriteFile(filepath.Join(h.Root(), gcConfigFile), []byte(gcInstallConfig()), 0o644))
	require.NoError(t, h.CopyIn(probeTar, gcProbeArchive, 0o644))
	before, err := h.Snapshot(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.Journal(context.Background(), "k3s.service", 300))
		}
	})
	e := &e2e{t: t, h: h, a: a, before: before}

	args := installArgs(a.images)
	i := slices.Index(args, "--config")
	require.GreaterOrEqual(t, i, 0)
	args[i+1] = gcConfigFile
	r := tpctl(ctx, h, nil, nil, args...)
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE install with forced image GC: %s", r.took.Round(time.Millisecond))
	e.kubeletRunsForcedGC(ctx, t)

	// The operator Deployment and its image, which no registry here serves.
	out, err := e.kubectl(ctx, "-n", installer.OperatorNamespace, "get", "deploy", "-o", "jsonpath={.items[*].metadata.name}")
	require.NoError(t, err, out)
	deploys := strings.Fields(out)
	require.Len(t, deploys, 1, "one operator Deployment in %s", installer.OperatorNamespace)
	deploy := deploys[0]
	out, err = e.kubectl(ctx, "-n", installer.OperatorNamespace, "get", "deploy", deploy, "-o",
		`jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].imagePullPolicy}`)
	require.NoError(t, err, out)
	f := strings.Fields(out)
	require.Len(t, f, 2, out)
	opImage, policy := f[0], f[1]
	assert.Contains(t, []string{"IfNotPresent", "Never"}, policy, "the operator is never pulled when its image is on the node")
	require.Contains(t, e.nodeImages(ctx, t, true), opImage, "the operator image is pinned after install")

	// Scale the operator to 0 and wait until no container, running or
	// exited, uses its image: the kubelet counts an image of an exited
	// container as in use until its container garbage collection (every
	// minute) removes the container.
	out, err = e.kubectl(ctx, "-n", installer.OperatorNamespace, "scale", "deploy", deploy, "--replicas=0")
	require.NoError(t, err, out)
	begin := time.Now()
	var last string
	require.Eventually(t, func() bool {
		out, err := e.kubectl(ctx, "-n", installer.OperatorNamespace, "get", "pods", "-o", "jsonpath={.items[*].metadata.name}")
		last = out
		return err == nil && strings.TrimSpace(out) == ""
	}, 3*time.Minute, 2*time.Second, "the operator's pods are not gone after scaling to 0: %q", last)
	require.Eventually(t, func() bool {
		users, err := e.containersUsing(ctx, opImage)
		last = strings.Join(users, " ")
		return err == nil && len(users) == 0
	}, 4*time.Minute, 3*time.Second, "containers still use %s after scaling the operator to 0: %s", opImage, last)
	t.Logf("FIGURE operator scaled to 0, its image unused by any container: %s", time.Since(begin).Round(time.Second))

	// The control: an unused image that nothing pinned.
	out, err = h.Exec(ctx, "/usr/local/bin/k3s", "ctr", "-n", "k8s.io", "images", "import", gcProbeArchive)
	require.NoError(t, err, out)
	imported := time.Now()
	require.Contains(t, e.nodeImages(ctx, t, false), images.ProbeRef, "the probe image is on the node after its import")
	require.NotContains(t, e.nodeImages(ctx, t, true), images.ProbeRef, "ctr import does not pin")
	t.Logf("K3s's main process started %s before the probe image was imported; the kubelet collects images every %s",
		e.k3sAge(ctx, t).Round(time.Second), imageGCPeriod)

	// Two periods and a margin: the collection after the import removes it.
	if !assert.Eventually(t, func() bool {
		return !slices.Contains(e.nodeImages(ctx, t, false), images.ProbeRef)
	}, 2*imageGCPeriod+time.Minute, 5*time.Second, "image garbage collection did not remove the unused unpinned %s", images.ProbeRef) {
		e.logState(ctx, t)
		t.FailNow()
	}
	t.Logf("FIGURE image GC removed the unused unpinned image %s after its import (collection period %s)",
		time.Since(imported).Round(time.Second), imageGCPeriod)
	removals := e.kubeletLog(ctx, t, "Removing image to free bytes")
	for _, l := range removals {
		t.Logf("kubelet: %s", l)
	}
	assert.NotEmpty(t, removals, "the kubelet's image garbage collection logged the removal")

	// The operator image, as unused as the probe's, stays: it is pinned.
	assert.Contains(t, e.nodeImages(ctx, t, true), opImage, "image garbage collection kept the pinned operator image")
	users, err := e.containersUsing(ctx, opImage)
	require.NoError(t, err)
	assert.Empty(t, users, "no container used the operator image while the collection ran")

	// Scale back: the operator becomes Ready from the node's image, with
	// no registry to pull from.
	out, err = e.kubectl(ctx, "-n", installer.OperatorNamespace, "scale", "deploy", deploy, "--replicas=1")
	require.NoError(t, err, out)
	begin = time.Now()
	if !assert.Eventually(t, func() bool {
		out, err := e.kubectl(ctx, "-n", installer.OperatorNamespace, "get", "pods", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		last = out
		f := strings.Fields(out)
		return err == nil && len(f) == 2 && f[1] == "True"
	}, 4*time.Minute, 2*time.Second, "the operator does not become Ready after image garbage collection: %q", last) {
		e.logState(ctx, t)
		t.FailNow()
	}
	t.Logf("FIGURE operator Ready again after scaling to 1: %s", time.Since(begin).Round(time.Second))
	pod := strings.Fields(last)[0]
	out, err = e.kubectl(ctx, "-n", installer.OperatorNamespace, "get", "events", "--field-selector",
		"involvedObject.name="+pod+",reason=Pulled", "-o", "jsonpath={.items[*].message}")
	require.NoError(t, err, out)
	t.Logf("operator pod %s: %s", pod, out)
	assert.Contains(t, out, "already present on machine", "the operator container started from the node's image")

	e.uninstall(t)
}

// kubeletRunsForcedGC reads the running kubelet's configuration (configz):
// the thresholds and minimum age of imageGCKubeletArgs are in effect.
func (e *e2e) kubeletRunsForcedGC(ctx context.Context, t *testing.T) {
	t.Helper()
	out, err := e.kubectl(ctx, "get", "--raw", "/api/v1/nodes/"+e.h.Name()+"/proxy/configz")
	require.NoError(t, err, out)
	var cz struct {
		KubeletConfig struct {
			High   int    `json:"imageGCHighThresholdPercent"`
			Low    int    `json:"imageGCLowThresholdPercent"`
			MinAge string `json:"imageMinimumGCAge"`
		} `json:"kubeletconfig"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &cz), out)
	c := cz.KubeletConfig
	t.Logf("kubelet image GC: high %d%%, low %d%%, minimum age %s", c.High, c.Low, c.MinAge)
	require.Equal(t, 1, c.High, "the kubelet-arg image-gc-high-threshold reached the kubelet")
	require.Equal(t, 0, c.Low, "the kubelet-arg image-gc-low-threshold reached the kubelet")
	require.Equal(t, "0s", c.MinAge, "the kubelet-arg minimum-image-ttl-duration reached the kubelet")
}

// nodeImages lists the node's image names in containerd's k8s.io namespace
// (only the pinned ones with pinned).
func (e *e2e) nodeImages(ctx context.Context, t *testing.T, pinned bool) []string {
	t.Helper()
	args := []string{"/usr/local/bin/k3s", "ctr", "-n", "k8s.io", "images", "ls", "-q"}
	if pinned {
		args = append(args, `labels."io.cri-containerd.pinned"==pinned`)
	}
	out, err := e.h.Exec(ctx, args...)
	require.NoError(t, err, out)
	return strings.Fields(out)
}

// containersUsing lists the containerd containers (k8s.io namespace) made
// from image.
func (e *e2e) containersUsing(ctx context.Context, image string) ([]string, error) {
	out, err := e.h.Exec(ctx, "/usr/local/bin/k3s", "ctr", "-n", "k8s.io", "containers", "ls")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == image {
			ids = append(ids, f[0])
		}
	}
	return ids, nil
}

// k3sAge is how long ago k3s.service's main process started.
func (e *e2e) k3sAge(ctx context.Context, t *testing.T) time.Duration {
	t.Helper()
	out, err := e.h.Exec(ctx, "systemctl", "show", "k3s.service", "-p", "ExecMainStartTimestamp", "--timestamp=unix")
	require.NoError(t, err, out)
	v := strings.TrimPrefix(strings.TrimSpace(out), "ExecMainStartTimestamp=@")
	sec, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err, out)
	return time.Since(time.Unix(sec, 0))
}

// kubeletLog returns the kubelet's lines in k3s.service's journal that
// contain s.
func (e *e2e) kubeletLog(ctx context.Context, t *testing.T, s string) []string {
	t.Helper()
	out, err := e.h.Exec(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", "k3s.service")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[kubelet]") && strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return lines
}
