//go:build e2e

// Package storage tests durable buffering on the full node: a StatefulSet
// pipeline with storage gets a PersistentVolumeClaim per pod mounted where
// Fluent Bit's storage.path points, what a pod wrote there is still there
// for the pod that replaces it, and the claim is kept or deleted with the
// pipeline per its retention policy.
package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/images"
)

const class = "e2e-local"

// localVolume is a node directory offered as a PersistentVolume of class.
func localVolume(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "tpctl-e2e-"+name+"-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777)) // the pipeline's pods do not run as root
	_, err = cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName:              class,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: dir, Type: ptr.To(corev1.HostPathDirectory)}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return dir
}

func starts(t *testing.T, dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "sink-starts"))
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

func TestStorageSurvivesPodRestartOnNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sn := e2etest.StartSinkNode(ctx, t)
	cs, err := kubernetes.NewForConfig(sn.Node.RESTConfig())
	require.NoError(t, err)
	ns := sn.Env.Namespace

	_, err = cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: class},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	dirs := map[string]string{}
	for _, name := range []string{"e2e-buf-a", "e2e-buf-b"} {
		dirs[name] = localVolume(ctx, t, cs, name)
	}

	create := func(name string, extra ...string) {
		out, errOut, err := sn.Tpctl(append([]string{"pipeline", "create", "--name", name,
			"--image", images.SinkRef, "--arg=--tcp=5170", "--port", "tcp/5170", "--no-auto-ports",
			"--service-type", "ClusterIP", "--workload", "statefulset",
			"--storage-size", "100Mi", "--storage-class", class, "--wait", "--timeout", "5m"}, extra...)...)
		require.NoError(t, err, "create %s: %s\n%s", name, out, errOut)
	}
	claimDir := func(claim string) string {
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		require.NoError(t, err)
		require.Contains(t, dirs, pvc.Spec.VolumeName, "claim %s is bound to one of the test's volumes", claim)
		return dirs[pvc.Spec.VolumeName]
	}

	create("buf")
	out, errOut, err := sn.Tpctl("pipeline", "get", "buf")
	require.NoError(t, err, "%s\n%s", out, errOut)
	t.Logf("pipeline get buf:\n%s", out)
	assert.Contains(t, out, "100Mi per pod ("+class+") at /fluent-bit/storage")
	dir := claimDir("storage-buf-0")
	assert.Equal(t, 1, starts(t, dir), "the pod wrote into its claim")
	logs, _, err := sn.Tpctl("pipeline", "logs", "buf")
	require.NoError(t, err)
	assert.Contains(t, logs, "storage /fluent-bit/storage: start 1 (0 before)")

	// Kill the pod: the StatefulSet's new pod gets the same claim and sees
	// what the first one wrote.
	old, err := cs.CoreV1().Pods(ns).Get(ctx, "buf-0", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, cs.CoreV1().Pods(ns).Delete(ctx, "buf-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.Eventually(t, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "buf-0", metav1.GetOptions{})
		if err != nil || p.UID == old.UID {
			return false
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready {
				return true
			}
		}
		return false
	}, 3*time.Minute, time.Second, "no new ready pod buf-0")
	require.Eventually(t, func() bool {
		logs, _, err := sn.Tpctl("pipeline", "logs", "buf")
		return err == nil && strings.Contains(logs, "storage /fluent-bit/storage: start 2 (1 before)")
	}, time.Minute, 2*time.Second, "the new pod does not see the first one's data")
	assert.Equal(t, 2, starts(t, dir))

	// Retain (default): deleting the pipeline keeps the claim.
	out, errOut, err = sn.Tpctl("pipeline", "delete", "buf", "--yes")
	require.NoError(t, err, "%s\n%s", out, errOut)
	require.Eventually(t, func() bool {
		_, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "buf", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 2*time.Minute, time.Second, "the StatefulSet outlives its pipeline")
	time.Sleep(5 * time.Second) // give the garbage collector a chance to do the wrong thing
	_, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "storage-buf-0", metav1.GetOptions{})
	assert.NoError(t, err, "the claim is retained with the pipeline deleted")

	// Delete: the claim goes with the pipeline.
	create("gone", "--storage-when-deleted", "delete")
	claimDir("storage-gone-0")
	out, errOut, err = sn.Tpctl("pipeline", "delete", "gone", "--yes")
	require.NoError(t, err, "%s\n%s", out, errOut)
	require.Eventually(t, func() bool {
		_, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "storage-gone-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 3*time.Minute, time.Second, "the claim of a pipeline with --storage-when-deleted delete stays")
}
