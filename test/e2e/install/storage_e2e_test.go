//go:build e2e

package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/installer"
)

// sinkStarts is the file in its storage directory where the sink stand-in
// records its starts (test/images/sink).
const sinkStarts = "sink-starts"

// pipelineStorage: a StatefulSet pipeline with --storage-size and no
// --storage-class gets its claim from the node's default StorageClass, K3s's
// local-path; the claim is bound to a hostPath volume under K3s's local
// storage directory (<data-dir>/storage); the pod records its start there,
// the pod that replaces it finds that record in the same directory, and
// deleting the pipeline (default retention) keeps the claim and the
// directory. Uninstall (the test's last subtest) removes them with K3s's
// storage/.
func (e *e2e) pipelineStorage(t *testing.T) {
	ctx := e.ctx(t, 10*time.Minute)
	begin := time.Now()
	out, err := e.kubectl(ctx, "get", "storageclass", "-o",
		`jsonpath={range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name} {.provisioner}{"\n"}{end}`)
	require.NoError(t, err)
	require.Equal(t, "local-path rancher.io/local-path", strings.TrimSpace(out), "the node's one default StorageClass is K3s's local-path")

	e.createPipeline(ctx, t, "buffered", "--workload", "statefulset", "--storage-size", "64Mi",
		"--service-type", "ClusterIP", "--port", "tcp/15175", "--arg=--tcp=15175", "--arg=--http=:18085")
	got, err := e.tpctlText(ctx, "pipeline", "get", "buffered")
	require.NoError(t, err)
	assert.Contains(t, got, "64Mi per pod (default class) at /fluent-bit/storage; claims: retain when deleted", "tpctl pipeline get:\n%s", got)

	out, err = e.kubectl(ctx, "-n", "default", "get", "pvc", "storage-buffered-0", "-o", "json")
	require.NoError(t, err)
	var pvc corev1.PersistentVolumeClaim
	require.NoError(t, json.Unmarshal([]byte(out), &pvc))
	require.Equal(t, corev1.ClaimBound, pvc.Status.Phase)
	require.NotNil(t, pvc.Spec.StorageClassName)
	assert.Equal(t, "local-path", *pvc.Spec.StorageClassName, "the claim's class is the node's default")
	assert.Equal(t, "rancher.io/local-path", pvc.Annotations["volume.kubernetes.io/storage-provisioner"])
	out, err = e.kubectl(ctx, "get", "pv", pvc.Spec.VolumeName, "-o", "json")
	require.NoError(t, err)
	var pv corev1.PersistentVolume
	require.NoError(t, json.Unmarshal([]byte(out), &pv))
	assert.Equal(t, "rancher.io/local-path", pv.Annotations["pv.kubernetes.io/provisioned-by"])
	require.NotNil(t, pv.Spec.HostPath, "a local-path volume is a hostPath volume")
	dir := pv.Spec.HostPath.Path
	assert.Equal(t, installer.DefaultDataDir+"/storage/"+pv.Name+"_default_storage-buffered-0", dir,
		"the volume lives in K3s's local storage directory")
	starts := func() string {
		b, _ := os.ReadFile(filepath.Join(e.h.Path(dir), sinkStarts))
		return string(b)
	}
	assert.Equal(t, 1, strings.Count(starts(), "\n"), "the pod recorded its start in its claim: %q", starts())
	logs, err := e.tpctlText(ctx, "pipeline", "logs", "buffered")
	require.NoError(t, err)
	assert.Contains(t, logs, "storage /fluent-bit/storage: start 1 (0 before)")

	// The pod is killed; the StatefulSet's new pod gets the same claim and
	// finds what the first one wrote.
	uid, err := e.kubectl(ctx, "-n", "default", "get", "pod", "buffered-0", "-o", "jsonpath={.metadata.uid}")
	require.NoError(t, err)
	out, err = e.kubectl(ctx, "-n", "default", "delete", "pod", "buffered-0", "--grace-period=0", "--force", "--wait=true")
	require.NoError(t, err, out)
	require.Eventually(t, func() bool {
		out, err = e.kubectl(ctx, "-n", "default", "get", "pod", "buffered-0", "-o",
			`jsonpath={.metadata.uid} {.status.containerStatuses[0].ready}`)
		f := strings.Fields(out)
		return err == nil && len(f) == 2 && f[0] != uid && f[1] == "true"
	}, 3*time.Minute, time.Second, "no new ready pod buffered-0: %q %v", out, err)
	require.Eventually(t, func() bool {
		logs, err = e.tpctlText(ctx, "pipeline", "logs", "buffered")
		return err == nil && strings.Contains(logs, "storage /fluent-bit/storage: start 2 (1 before)")
	}, time.Minute, 2*time.Second, "the new pod does not find the first one's record: %q %v", logs, err)
	assert.Equal(t, 2, strings.Count(starts(), "\n"), "the directory on the node holds both starts: %q", starts())
	vol, err := e.kubectl(ctx, "-n", "default", "get", "pvc", "storage-buffered-0", "-o", "jsonpath={.spec.volumeName}")
	require.NoError(t, err)
	assert.Equal(t, pv.Name, vol, "the same claim and volume")

	// Deleting the pipeline (default retention) keeps the claim, its
	// volume and the directory.
	_, err = e.tpctlText(ctx, "pipeline", "delete", "buffered", "--yes")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := e.kubectl(ctx, "-n", "default", "get", "statefulset", "buffered")
		return err != nil && strings.Contains(err.Error(), "NotFound")
	}, 2*time.Minute, time.Second, "the StatefulSet outlives its pipeline")
	time.Sleep(5 * time.Second) // give the garbage collector a chance to do the wrong thing
	out, err = e.kubectl(ctx, "-n", "default", "get", "pvc", "storage-buffered-0", "-o", "jsonpath={.status.phase} {.spec.volumeName}")
	require.NoError(t, err, "the claim is kept with the pipeline deleted")
	assert.Equal(t, "Bound "+pv.Name, out)
	assert.Equal(t, 2, strings.Count(starts(), "\n"), "the directory on the node is kept: %q", starts())
	t.Logf("FIGURE StatefulSet pipeline on local-path (create, pod restart, delete with the claim kept): %s", time.Since(begin).Round(time.Millisecond))
}
