package operator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestStorageGivesEachStatefulSetPodAClaimForTheBuffer(t *testing.T) {
	p := testPipeline(v1alpha1.WorkloadStatefulSet, "")
	p.Spec.Workload.Storage = &v1alpha1.StorageSpec{Size: resource.MustParse("5Gi"), StorageClassName: "local-path",
		WhenDeleted: v1alpha1.RetentionDelete}
	o := &Objects{Pipeline: p, Instance: testInstance()}
	sts := typed[appsv1.StatefulSet](t, o.StatefulSet())

	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	claim := sts.Spec.VolumeClaimTemplates[0]
	assert.Equal(t, storageVolume, claim.Name)
	assert.Empty(t, claim.Namespace, "a claim template names no namespace")
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, claim.Spec.AccessModes)
	assert.True(t, resource.MustParse("5Gi").Equal(claim.Spec.Resources.Requests[corev1.ResourceStorage]))
	assert.Equal(t, ptr.To("local-path"), claim.Spec.StorageClassName)
	assert.Equal(t, map[string]string{LabelName: AppName, LabelPipeline: "logs"}, claim.Labels)
	assert.Equal(t, &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}, sts.Spec.PersistentVolumeClaimRetentionPolicy)

	ctr := sts.Spec.Template.Spec.Containers[0]
	assert.Contains(t, ctr.VolumeMounts, corev1.VolumeMount{Name: storageVolume, MountPath: v1alpha1.StorageDir})
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.yaml", "-H", "-P", "2020", "-b", v1alpha1.StorageDir}, ctr.Args,
		"Fluent Bit's storage.path is the claim")
	for _, v := range sts.Spec.Template.Spec.Volumes {
		assert.NotEqual(t, storageVolume, v.Name, "the claim template provides the volume")
	}

	// No class: the cluster's default; no policy: Retain both ways.
	p.Spec.Workload.Storage = &v1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}
	sts = typed[appsv1.StatefulSet](t, o.StatefulSet())
	assert.Nil(t, sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
	assert.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
	assert.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled)
}

func TestNoStorageChangesNothing(t *testing.T) {
	p := testPipeline(v1alpha1.WorkloadStatefulSet, "")
	o := &Objects{Pipeline: p, Instance: testInstance()}
	sts := typed[appsv1.StatefulSet](t, o.StatefulSet())
	assert.Empty(t, sts.Spec.VolumeClaimTemplates)
	assert.Nil(t, sts.Spec.PersistentVolumeClaimRetentionPolicy)
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.yaml", "-H", "-P", "2020"}, sts.Spec.Template.Spec.Containers[0].Args)
	for _, m := range sts.Spec.Template.Spec.Containers[0].VolumeMounts {
		assert.NotEqual(t, storageVolume, m.Name)
	}

	// Storage left on a pipeline that is no longer a StatefulSet (the CRD
	// refuses it) gives the other kinds neither a mount nor the flag.
	p.Spec.Workload = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadDeployment, Storage: &v1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}}
	dep := typed[appsv1.Deployment](t, o.Deployment())
	assert.NotContains(t, dep.Spec.Template.Spec.Containers[0].Args, "-b")
	assert.Len(t, dep.Spec.Template.Spec.Containers[0].VolumeMounts, 2)
}

func TestAutoscalingBuildsAnHPAAndLeavesReplicasToIt(t *testing.T) {
	p := testPipeline(v1alpha1.WorkloadDeployment, "")
	o := &Objects{Pipeline: p, Instance: testInstance()}
	assert.Nil(t, o.HorizontalPodAutoscaler(), "no autoscaling, no HPA")
	assert.Equal(t, int32(1), *typed[appsv1.Deployment](t, o.Deployment()).Spec.Replicas)

	p.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	p.Spec.Workload.Autoscaling = &v1alpha1.AutoscalingSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 6,
		TargetCPUUtilizationPercentage: ptr.To[int32](65)}
	dep := typed[appsv1.Deployment](t, o.Deployment())
	assert.Nil(t, dep.Spec.Replicas, "the HPA owns spec.replicas")

	hpa := typed[autoscalingv2.HorizontalPodAutoscaler](t, o.HorizontalPodAutoscaler())
	assert.Equal(t, "logs", hpa.Name)
	assert.Equal(t, "tp", hpa.Namespace)
	assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "logs"}, hpa.Spec.ScaleTargetRef)
	assert.Equal(t, ptr.To[int32](2), hpa.Spec.MinReplicas)
	assert.Equal(t, int32(6), hpa.Spec.MaxReplicas)
	require.Len(t, hpa.Spec.Metrics, 1)
	m := hpa.Spec.Metrics[0]
	assert.Equal(t, autoscalingv2.ResourceMetricSourceType, m.Type)
	assert.Equal(t, corev1.ResourceCPU, m.Resource.Name)
	assert.Equal(t, autoscalingv2.UtilizationMetricType, m.Resource.Target.Type)
	assert.Equal(t, ptr.To[int32](65), m.Resource.Target.AverageUtilization)
	require.Len(t, hpa.OwnerReferences, 1)
	assert.Equal(t, "pl-uid", string(hpa.OwnerReferences[0].UID))
	assert.True(t, *hpa.OwnerReferences[0].Controller)
	assert.Equal(t, ManagedBy, hpa.Labels[LabelManagedBy], "the operator's cache only sees labelled objects")

	// Defaults: at least 1 pod, 80 % of the request.
	p.Spec.Workload.Autoscaling = &v1alpha1.AutoscalingSpec{MaxReplicas: 3}
	hpa = typed[autoscalingv2.HorizontalPodAutoscaler](t, o.HorizontalPodAutoscaler())
	assert.Equal(t, ptr.To[int32](1), hpa.Spec.MinReplicas)
	assert.Equal(t, ptr.To(v1alpha1.DefaultTargetCPUUtilization), hpa.Spec.Metrics[0].Resource.Target.AverageUtilization)

	// Only a Deployment is autoscaled.
	p.Spec.Workload.Kind = v1alpha1.WorkloadStatefulSet
	assert.Nil(t, o.HorizontalPodAutoscaler())
	assert.Equal(t, int32(1), *typed[appsv1.StatefulSet](t, o.StatefulSet()).Spec.Replicas)
}
