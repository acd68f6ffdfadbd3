package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func class() *storagev1.StorageClass {
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	del := corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path"}, Provisioner: ProvisionerName,
		VolumeBindingMode: &wait, ReclaimPolicy: &del}
}

func claim(node string) *corev1.PersistentVolumeClaim {
	sc := "local-path"
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "tp", UID: "u-1", Annotations: map[string]string{}},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &sc, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if node != "" {
		c.Annotations[selectedNode] = node
	}
	return c
}

// A claim waits for its node; then a hostPath volume bound to the node and
// the claim is made in <base>/pvc-<uid>_<ns>_<name>; released, it goes.
func TestProvisionAndDelete(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	base := t.TempDir()
	p := &Provisioner{Client: cs, BasePath: base, Node: "n1"}

	require.NoError(t, p.Provision(ctx, claim(""), class()))
	require.NoError(t, p.Provision(ctx, claim("n2"), class()), "another node's claim")
	other := class()
	other.Provisioner = "example.com/other"
	require.NoError(t, p.Provision(ctx, claim("n1"), other))
	l, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, l.Items)

	require.NoError(t, p.Provision(ctx, claim("n1"), class()))
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, "pvc-u-1", metav1.GetOptions{})
	require.NoError(t, err)
	dir := filepath.Join(base, "pvc-u-1_tp_data")
	assert.Equal(t, dir, pv.Spec.HostPath.Path)
	assert.Equal(t, "local-path", pv.Spec.StorageClassName)
	assert.Equal(t, "data", pv.Spec.ClaimRef.Name)
	assert.Equal(t, []string{"n1"}, pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values)
	assert.Equal(t, resource.MustParse("1Gi"), pv.Spec.Capacity[corev1.ResourceStorage])
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o777), st.Mode().Perm())

	require.NoError(t, p.Delete(ctx, pv), "still bound: kept")
	_, err = os.Stat(dir)
	require.NoError(t, err)
	pv.Status.Phase = corev1.VolumeReleased
	require.NoError(t, p.Delete(ctx, pv))
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = cs.CoreV1().PersistentVolumes().Get(ctx, "pvc-u-1", metav1.GetOptions{})
	assert.Error(t, err)

	// A volume whose path is not one of ours is never removed.
	pv.Spec.HostPath.Path = "/etc"
	assert.Error(t, p.Delete(ctx, pv))
}
