package manage

import (
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestParseResource(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	for _, tc := range []struct {
		in       string
		req, lim *resource.Quantity
	}{
		{"250m", q("250m"), nil},
		{"250m:1", q("250m"), q("1")},
		{" 0.5 : 2 ", q("500m"), q("2")},
		{":2", nil, q("2")},
		{"", nil, nil},
		{"64", q("64"), nil},
	} {
		rc, err := ParseResource("cpu", tc.in, MaxCPU)
		require.NoError(t, err, tc.in)
		for _, pair := range [][2]*resource.Quantity{{tc.req, rc.Request}, {tc.lim, rc.Limit}} {
			if pair[0] == nil {
				assert.Nil(t, pair[1], tc.in)
			} else if assert.NotNil(t, pair[1], tc.in) {
				assert.Zero(t, pair[0].Cmp(*pair[1]), "%s: want %s, got %s", tc.in, pair[0], pair[1])
			}
		}
	}
	for in, want := range map[string]string{
		"lots":       `--memory "lots": request "lots" is not a quantity (such as 128Mi or 1Gi)`,
		"1Gi:":       `--memory "1Gi:": empty limit after ':'`,
		"2Gi:1Gi":    `--memory "2Gi:1Gi": the request may not be above the limit`,
		"0":          `--memory "0": request must be above zero`,
		"1Gi:-1Gi":   `--memory "1Gi:-1Gi": limit must be above zero`,
		"128Mi:65Gi": `--memory "128Mi:65Gi": limit may be at most 64Gi`,
	} {
		_, err := ParseResource("memory", in, MaxMemory)
		assert.ErrorContains(t, err, want, in)
	}
	_, err := ParseResource("cpu", "65", MaxCPU)
	assert.EqualError(t, err, `--cpu "65": request may be at most 64`)
}

func TestResourceFlagsChangeOnlyTheirResource(t *testing.T) {
	change := func(args ...string) (PipelineChange, error) {
		var pf PipelineFlags
		fs := pflag.NewFlagSet("update", pflag.ContinueOnError)
		pf.Register(fs, false)
		require.NoError(t, fs.Parse(args))
		return pf.Change(fs, nil)
	}
	spec := v1alpha1.PipelineSpec{}
	c, err := change("--cpu", "250m:1", "--memory", "128Mi")
	require.NoError(t, err)
	require.False(t, c.IsEmpty())
	c.ApplyTo(&spec)
	assert.Equal(t, "cpu 250m (limit 1), memory 128Mi", ResourcesText(spec.Resources))

	c, err = change("--memory", ":1Gi")
	require.NoError(t, err)
	c.ApplyTo(&spec)
	assert.Equal(t, "cpu 250m (limit 1), memory limit 1Gi", ResourcesText(spec.Resources), "--memory replaces the memory request and limit, keeps cpu")

	c, err = change("--cpu", "")
	require.NoError(t, err)
	c.ApplyTo(&spec)
	assert.Equal(t, "memory limit 1Gi", ResourcesText(spec.Resources))
	assert.Nil(t, spec.Resources.Requests, "an empty list is dropped")

	c, err = change("--image", "x")
	require.NoError(t, err)
	c.ApplyTo(&spec)
	assert.Equal(t, corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}, spec.Resources.Limits, "other flags keep resources")

	_, err = change("--cpu", "x", "--memory", "1:2:3")
	assert.ErrorContains(t, err, `--cpu "x"`)
	assert.ErrorContains(t, err, `--memory "1:2:3"`, "every bad flag is named")
}
