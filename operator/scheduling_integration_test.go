//go:build integration

package operator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// A pipeline's scheduling and resources reach its Deployment's pods, and an
// edit that removes them removes them there too.
func TestSchedulingAndResourcesReachTheWorkload(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	p := newPipeline(ns, "sched", tcpPort(5170))
	p.Spec.ServiceType = v1alpha1.ServiceTypeClusterIP
	p.Spec.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "logs", Effect: corev1.TaintEffectNoSchedule}}
	p.Spec.PodAnnotations = map[string]string{"example.com/team": "obs"}
	require.NoError(t, kc.Create(ctx, p))

	d := &appsv1.Deployment{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "sched"), d))
		require.Equal(c, map[string]string{"disk": "ssd"}, d.Spec.Template.Spec.NodeSelector)
	}, waitFor, 50*time.Millisecond)
	tpl := d.Spec.Template
	assert.Equal(t, p.Spec.Tolerations, tpl.Spec.Tolerations)
	assert.Equal(t, "obs", tpl.Annotations["example.com/team"])
	assert.NotEmpty(t, tpl.Annotations[AnnotationConfigHash])
	res := tpl.Spec.Containers[0].Resources
	assert.Equal(t, "250m", quantityText(res.Requests[corev1.ResourceCPU]))
	assert.Equal(t, "512Mi", quantityText(res.Limits[corev1.ResourceMemory]))

	edit(t, ns, "sched", &v1alpha1.Pipeline{}, func(p *v1alpha1.Pipeline) {
		p.Spec.NodeSelector, p.Spec.Tolerations = nil, nil
		p.Spec.PodAnnotations = map[string]string{"example.com/owner": "ops"}
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "sched"), d))
		tpl := d.Spec.Template
		assert.Nil(c, tpl.Spec.NodeSelector)
		assert.Nil(c, tpl.Spec.Tolerations)
		assert.NotContains(c, tpl.Annotations, "example.com/team")
		assert.Equal(c, "ops", tpl.Annotations["example.com/owner"])
	}, waitFor, 50*time.Millisecond, "removed scheduling stays on the Deployment")

	bad := newPipeline(ns, "bad")
	bad.Spec.PodAnnotations = map[string]string{AnnotationConfigHash: "forged"}
	assert.ErrorContains(t, kc.Create(ctx, bad), "annotations under telemetry.tpctl.dev/ are the operator's own")
}

func quantityText(q resource.Quantity) string { return q.String() }
