//go:build integration

package operator

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// The API server itself refuses names, sizes, proxies and images the
// operator could not use, so no controller ever reads them.
func TestAPIServerBoundsInputs(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, tc := range []struct {
		name string
		obj  client.Object
		want string
	}{
		{"pipeline name of 55", newPipeline(ns, "p"+strings.Repeat("a", 54)), "at most 54 characters"},
		{"pipeline name with a digit first", newPipeline(ns, "1p"), "must be a DNS label"},
		{"instance not a DNS label", func() client.Object {
			p := newPipeline(ns, "p1")
			p.Spec.Instance = "Core.1"
			return p
		}(), "spec.instance"},
		{"replicas", func() client.Object {
			p := newPipeline(ns, "p2")
			p.Spec.Workload.Replicas = ptr.To[int32](1000)
			return p
		}(), "spec.workload.replicas"},
		{"cpu", func() client.Object {
			p := newPipeline(ns, "p3")
			p.Spec.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
			return p
		}(), "cpu may be at most 64"},
		{"image", func() client.Object {
			p := newPipeline(ns, "p4")
			p.Spec.Image = "not an image"
			return p
		}(), "spec.image"},
		{"proxy credentials", &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "c1", Namespace: ns},
			Spec: v1alpha1.CoreInstanceSpec{HTTPSProxy: "http://bob:pw@proxy.test:3128"}}, "must not carry credentials"},
		{"proxy not a URL", &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "c2", Namespace: ns},
			Spec: v1alpha1.CoreInstanceSpec{HTTPProxy: "proxy.test:3128"}}, "must be an http, https or socks5 URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := kc.Create(ctx, tc.obj)
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	ok := newPipeline(ns, "p"+strings.Repeat("a", 53))
	ok.Spec.Image = "registry.local:5000/team/fluent-bit:4.0.3"
	ok.Spec.Workload.Replicas = ptr.To[int32](100)
	require.NoError(t, kc.Create(ctx, ok), "54 characters, 100 replicas and a registry with a port are fine")
}
