//go:build integration

package operator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// A StatefulSet pipeline with storage gets a volume claim template, the
// mount and the storage.path flag on a real API server; its size cannot be
// changed, its retention can; storage on a Deployment is refused.
func TestStorageReachesTheStatefulSet(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	p := newPipeline(ns, "buffered", tcpPort(5170))
	p.Spec.ServiceType = v1alpha1.ServiceTypeClusterIP
	p.Spec.Workload = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadStatefulSet,
		Storage: &v1alpha1.StorageSpec{Size: resource.MustParse("2Gi"), StorageClassName: "local-path"}}
	require.NoError(t, kc.Create(ctx, p))

	sts := &appsv1.StatefulSet{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "buffered"), sts))
		require.Len(c, sts.Spec.VolumeClaimTemplates, 1)
	}, waitFor, 50*time.Millisecond)
	claim := sts.Spec.VolumeClaimTemplates[0]
	assert.Equal(t, storageVolume, claim.Name)
	assert.Equal(t, "2Gi", quantityText(claim.Spec.Resources.Requests[corev1.ResourceStorage]))
	assert.Equal(t, ptr.To("local-path"), claim.Spec.StorageClassName)
	assert.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
	ctr := sts.Spec.Template.Spec.Containers[0]
	assert.Contains(t, ctr.VolumeMounts, corev1.VolumeMount{Name: storageVolume, MountPath: v1alpha1.StorageDir})
	assert.Subset(t, ctr.Args, []string{"-b", v1alpha1.StorageDir})

	// The retention policy may change; the StatefulSet follows.
	edit(t, ns, "buffered", &v1alpha1.Pipeline{}, func(p *v1alpha1.Pipeline) {
		p.Spec.Workload.Storage.WhenDeleted = v1alpha1.RetentionDelete
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "buffered"), sts))
		assert.Equal(c, appsv1.DeletePersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
	}, waitFor, 50*time.Millisecond)

	// The size cannot: the API server says why instead of the operator
	// failing on the StatefulSet.
	cur := &v1alpha1.Pipeline{}
	require.NoError(t, kc.Get(ctx, key(ns, "buffered"), cur))
	cur.Spec.Workload.Storage.Size = resource.MustParse("3Gi")
	err := kc.Update(ctx, cur)
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "%v", err)
	assert.Contains(t, err.Error(), "storage size and storageClassName of a StatefulSet pipeline cannot be added, changed or removed")

	// Storage on a Deployment is refused.
	bad := newPipeline(ns, "nobuf")
	bad.Spec.Workload = v1alpha1.WorkloadSpec{Storage: &v1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}}
	assert.ErrorContains(t, kc.Create(ctx, bad), "storage needs workload kind StatefulSet")
}

// Autoscaling builds a HorizontalPodAutoscaler owned by the pipeline and
// leaves the Deployment's replicas to it; removing autoscaling removes it.
func TestAutoscalingBuildsAndRemovesTheHPA(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	p := newPipeline(ns, "scaled", tcpPort(5170))
	p.Spec.ServiceType = v1alpha1.ServiceTypeClusterIP
	p.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	p.Spec.Workload = v1alpha1.WorkloadSpec{Autoscaling: &v1alpha1.AutoscalingSpec{
		MinReplicas: ptr.To[int32](2), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptr.To[int32](70)}}
	require.NoError(t, kc.Create(ctx, p))
	require.NoError(t, kc.Get(ctx, key(ns, "scaled"), p))

	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "scaled"), hpa))
	}, waitFor, 50*time.Millisecond)
	assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "scaled"}, hpa.Spec.ScaleTargetRef)
	assert.Equal(t, ptr.To[int32](2), hpa.Spec.MinReplicas)
	assert.Equal(t, int32(5), hpa.Spec.MaxReplicas)
	require.Len(t, hpa.Spec.Metrics, 1)
	assert.Equal(t, ptr.To[int32](70), hpa.Spec.Metrics[0].Resource.Target.AverageUtilization)
	assert.True(t, metav1.IsControlledBy(hpa, p), "owned by the pipeline: %v", hpa.OwnerReferences)

	d := &appsv1.Deployment{}
	require.NoError(t, kc.Get(ctx, key(ns, "scaled"), d))
	for _, mf := range d.ManagedFields {
		if mf.Manager == FieldManager && mf.FieldsV1 != nil {
			assert.NotContains(t, string(mf.FieldsV1.Raw), `"f:replicas"`, "the operator leaves replicas to the autoscaler")
		}
	}

	// A change of the bounds reaches the autoscaler.
	edit(t, ns, "scaled", &v1alpha1.Pipeline{}, func(p *v1alpha1.Pipeline) { p.Spec.Workload.Autoscaling.MaxReplicas = 8 })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "scaled"), hpa))
		assert.Equal(c, int32(8), hpa.Spec.MaxReplicas)
	}, waitFor, 50*time.Millisecond)

	// Without autoscaling the autoscaler goes and the replicas are the
	// operator's again.
	edit(t, ns, "scaled", &v1alpha1.Pipeline{}, func(p *v1alpha1.Pipeline) {
		p.Spec.Workload.Autoscaling = nil
		p.Spec.Workload.Replicas = ptr.To[int32](3)
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := kc.Get(ctx, key(ns, "scaled"), &autoscalingv2.HorizontalPodAutoscaler{})
		assert.True(c, apierrors.IsNotFound(err), "HPA still there: %v", err)
		require.NoError(c, kc.Get(ctx, key(ns, "scaled"), d))
		assert.Equal(c, ptr.To[int32](3), d.Spec.Replicas)
	}, waitFor, 50*time.Millisecond)

	// Autoscaling without a cpu request is refused.
	bad := newPipeline(ns, "nocpu")
	bad.Spec.Workload = v1alpha1.WorkloadSpec{Autoscaling: &v1alpha1.AutoscalingSpec{MaxReplicas: 3}}
	assert.ErrorContains(t, kc.Create(ctx, bad), "autoscaling needs a cpu request in resources")
}
