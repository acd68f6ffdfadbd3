package manage

import (
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func flagChange(t *testing.T, create bool, args ...string) (PipelineChange, error) {
	t.Helper()
	var pf PipelineFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	pf.Register(fs, create)
	require.NoError(t, fs.Parse(args))
	return pf.Change(fs, nil)
}

func TestStorageFlags(t *testing.T) {
	c, err := flagChange(t, true, "--workload", "statefulset", "--storage-size", "5Gi", "--storage-class", "local-path",
		"--storage-when-deleted", "DELETE")
	require.NoError(t, err)
	p := NewPipeline("tp", "buf", "core", c)
	require.NotNil(t, p.Spec.Workload.Storage)
	assert.Equal(t, v1alpha1.StorageSpec{Size: resource.MustParse("5Gi"), StorageClassName: "local-path",
		WhenDeleted: v1alpha1.RetentionDelete}, *p.Spec.Workload.Storage)
	require.NoError(t, ValidatePipeline(p, nil))
	assert.Equal(t, "5Gi per pod (local-path) at /fluent-bit/storage; claims: delete when deleted, retain when scaled down",
		StorageText(p.Spec.Workload.Storage))

	// An update of the retention keeps size and class.
	c, err = flagChange(t, false, "--storage-when-scaled", "delete")
	require.NoError(t, err)
	c.ApplyTo(&p.Spec)
	assert.Equal(t, v1alpha1.StorageSpec{Size: resource.MustParse("5Gi"), StorageClassName: "local-path",
		WhenDeleted: v1alpha1.RetentionDelete, WhenScaled: v1alpha1.RetentionDelete}, *p.Spec.Workload.Storage)

	// Leaving StatefulSet drops the storage.
	c, err = flagChange(t, false, "--workload", "deployment")
	require.NoError(t, err)
	c.ApplyTo(&p.Spec)
	assert.Nil(t, p.Spec.Workload.Storage)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--storage-size", "lots"}, `--storage-size "lots": not a size`},
		{[]string{"--storage-size", "1Ki"}, "must be at least 1Mi and at most 64Ti"},
		{[]string{"--storage-size", "65Ti"}, "must be at least 1Mi and at most 64Ti"},
		{[]string{"--storage-when-deleted", "keep"}, `--storage-when-deleted "keep": want retain or delete`},
		{[]string{"--storage-size", "", "--storage-class", "x"}, "give no other --storage-* flag with it"},
	} {
		_, err := flagChange(t, false, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want)
	}

	// Storage on a Deployment, or without a size, is refused naming the flags.
	c, err = flagChange(t, true, "--storage-size", "1Gi")
	require.NoError(t, err)
	err = ValidatePipeline(NewPipeline("tp", "buf", "core", c), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "storage needs workload kind StatefulSet (--workload statefulset)")
	c, err = flagChange(t, true, "--workload", "statefulset", "--storage-class", "fast")
	require.NoError(t, err)
	err = ValidatePipeline(NewPipeline("tp", "buf", "core", c), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "storage needs a size (--storage-size")
}

func TestAutoscalingFlags(t *testing.T) {
	c, err := flagChange(t, true, "--cpu", "100m", "--min-replicas", "2", "--max-replicas", "5", "--target-cpu", "60")
	require.NoError(t, err)
	p := NewPipeline("tp", "web", "core", c)
	assert.Equal(t, &v1alpha1.AutoscalingSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 5,
		TargetCPUUtilizationPercentage: ptr.To[int32](60)}, p.Spec.Workload.Autoscaling)
	require.NoError(t, ValidatePipeline(p, nil))
	assert.Equal(t, "2 to 5 replicas at 60% of the cpu request", AutoscalingText(p.Spec.Workload.Autoscaling))

	// Autoscaling a pipeline that had replicas drops them; --no-autoscaling
	// removes it again and --replicas comes back.
	p.Spec.Workload = v1alpha1.WorkloadSpec{Replicas: ptr.To[int32](3)}
	c, err = flagChange(t, false, "--max-replicas", "4")
	require.NoError(t, err)
	c.ApplyTo(&p.Spec)
	assert.Nil(t, p.Spec.Workload.Replicas)
	assert.Equal(t, &v1alpha1.AutoscalingSpec{MaxReplicas: 4}, p.Spec.Workload.Autoscaling)
	c, err = flagChange(t, false, "--no-autoscaling", "--replicas", "2")
	require.NoError(t, err)
	c.ApplyTo(&p.Spec)
	assert.Nil(t, p.Spec.Workload.Autoscaling)
	assert.Equal(t, ptr.To[int32](2), p.Spec.Workload.Replicas)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-replicas", "0"}, "--max-replicas 0: must be from 1 to 100"},
		{[]string{"--min-replicas", "0", "--max-replicas", "3"}, "--min-replicas 0: must be from 1 to 100"},
		{[]string{"--min-replicas", "4", "--max-replicas", "3"}, "--min-replicas 4 is greater than --max-replicas 3"},
		{[]string{"--target-cpu", "0"}, "--target-cpu 0: must be from 1 to 1000"},
		{[]string{"--no-autoscaling", "--max-replicas", "3"}, "exclude each other"},
	} {
		_, err := flagChange(t, false, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-replicas", "3"}, "autoscaling needs a cpu request (--cpu"},
		{[]string{"--cpu", "1", "--min-replicas", "2"}, "autoscaling needs --max-replicas"},
		{[]string{"--cpu", "1", "--max-replicas", "3", "--workload", "statefulset"}, "autoscaling needs workload kind Deployment"},
		{[]string{"--cpu", "1", "--max-replicas", "3", "--replicas", "2"}, "--replicas and autoscaling exclude each other"},
	} {
		c, err := flagChange(t, true, tc.args...)
		require.NoError(t, err)
		err = ValidatePipeline(NewPipeline("tp", "web", "core", c), nil)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want)
	}
}
