package main

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// classOf is the claim's StorageClass (nil when it names none or an
// unknown one; the default class is filled in by the API server's
// admission when the claim is created).
func classOf(get func(string) (*storagev1.StorageClass, error), pvc *corev1.PersistentVolumeClaim) *storagev1.StorageClass {
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return nil
	}
	sc, err := get(*pvc.Spec.StorageClassName)
	if err != nil {
		return nil
	}
	return sc
}
