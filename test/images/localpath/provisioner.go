package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names as rancher/local-path-provisioner uses them.
const (
	ProvisionerName    = "rancher.io/local-path"
	provisionedBy      = "pv.kubernetes.io/provisioned-by"
	selectedNode       = "volume.kubernetes.io/selected-node"
	selectedNodeOnPV   = "local.path.provisioner/selected-node"
	hostnameLabel      = "kubernetes.io/hostname"
	defaultNodePathKey = "DEFAULT_PATH_FOR_NON_LISTED_NODES"
)

// Provisioner makes hostPath PersistentVolumes under a node directory for
// the claims of its StorageClasses, and removes them when released.
type Provisioner struct {
	Client kubernetes.Interface
	// BasePath is the node directory for volumes; the container mounts it
	// at the same path.
	BasePath string
	// Node is the node this provisioner serves (its pod's node).
	Node string
}

// VolumePath is where a claim's volume lives, as local-path names it.
func (p *Provisioner) VolumePath(pvName string, pvc *corev1.PersistentVolumeClaim) string {
	return filepath.Join(p.BasePath, fmt.Sprintf("%s_%s_%s", pvName, pvc.Namespace, pvc.Name))
}

// Provision creates the volume of pvc when it is ours and its node is
// chosen; it does nothing otherwise.
func (p *Provisioner) Provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass) error {
	if sc == nil || sc.Provisioner != ProvisionerName || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
		return nil
	}
	node := pvc.Annotations[selectedNode]
	if node == "" {
		if sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
			return nil // the scheduler picks the node first
		}
		node = p.Node
	}
	if node != p.Node {
		return nil
	}
	name := "pvc-" + string(pvc.UID)
	if _, err := p.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get pv %s: %w", name, err)
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return fmt.Errorf("claim %s/%s requests no storage", pvc.Namespace, pvc.Name)
	}
	path := p.VolumePath(name, pvc)
	if err := os.MkdirAll(path, 0o777); err != nil {
		return fmt.Errorf("make %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{provisionedBy: ProvisionerName, selectedNodeOnPV: node}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &dirOrCreate}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
	if _, err := p.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create pv %s: %w", name, err)
	}
	return nil
}

// Delete removes a released volume of ours with the Delete policy: its
// directory, then the PersistentVolume.
func (p *Provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[provisionedBy] != ProvisionerName || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.HostPath == nil {
		return nil
	}
	if pv.Annotations[selectedNodeOnPV] != "" && pv.Annotations[selectedNodeOnPV] != p.Node {
		return nil
	}
	path := filepath.Clean(pv.Spec.HostPath.Path)
	if !strings.HasPrefix(path, filepath.Clean(p.BasePath)+"/") || !strings.HasPrefix(filepath.Base(path), pv.Name+"_") {
		return fmt.Errorf("pv %s: %s is not a volume directory under %s: left alone", pv.Name, path, p.BasePath)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := p.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pv %s: %w", pv.Name, err)
	}
	return nil
}
