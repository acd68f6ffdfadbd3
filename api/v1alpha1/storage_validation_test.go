package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestStorageAndAutoscalingServerRules(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindPipeline)
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{name: "StatefulSet with storage", spec: "instance: core\nworkload: {kind: StatefulSet, storage: {size: 5Gi, storageClassName: local-path, whenDeleted: Delete}}"},
		{name: "storage on a Deployment", spec: "instance: core\nworkload: {storage: {size: 5Gi}}",
			want: []string{"storage needs workload kind StatefulSet"}},
		{name: "storage on a DaemonSet", spec: "instance: core\nworkload: {kind: DaemonSet, storage: {size: 5Gi}}",
			want: []string{"storage needs workload kind StatefulSet"}},
		{name: "storage without size", spec: "instance: core\nworkload: {kind: StatefulSet, storage: {}}",
			want: []string{"spec.workload.storage.size: Required value"}},
		{name: "storage too small", spec: "instance: core\nworkload: {kind: StatefulSet, storage: {size: 1Ki}}",
			want: []string{"storage size must be at least 1Mi and at most 64Ti"}},
		{name: "bad retention", spec: "instance: core\nworkload: {kind: StatefulSet, storage: {size: 1Gi, whenScaled: Keep}}",
			want: []string{`Unsupported value: "Keep"`}},
		{name: "autoscaling", spec: "instance: core\nresources: {requests: {cpu: 100m}}\nworkload: {autoscaling: {minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 70}}"},
		{name: "autoscaling without cpu request", spec: "instance: core\nresources: {limits: {cpu: 1}}\nworkload: {autoscaling: {maxReplicas: 5}}",
			want: []string{"autoscaling needs a cpu request in resources"}},
		{name: "autoscaling min above max", spec: "instance: core\nresources: {requests: {cpu: 100m}}\nworkload: {autoscaling: {minReplicas: 6, maxReplicas: 5}}",
			want: []string{"minReplicas must not be greater than maxReplicas"}},
		{name: "autoscaling min 0", spec: "instance: core\nresources: {requests: {cpu: 100m}}\nworkload: {autoscaling: {minReplicas: 0, maxReplicas: 5}}",
			want: []string{"should be greater than or equal to 1"}},
		{name: "autoscaling a StatefulSet", spec: "instance: core\nresources: {requests: {cpu: 100m}}\nworkload: {kind: StatefulSet, autoscaling: {maxReplicas: 5}}",
			want: []string{"autoscaling needs workload kind Deployment"}},
		{name: "autoscaling with replicas", spec: "instance: core\nresources: {requests: {cpu: 100m}}\nworkload: {replicas: 2, autoscaling: {maxReplicas: 5}}",
			want: []string{"replicas and autoscaling exclude each other"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := v.validate(t, pipelineHead+"spec:\n  "+strings.ReplaceAll(tc.spec, "\n", "\n  ")+"\n", "")
			require.Len(t, got, len(tc.want), "errors: %q", got)
			for i, w := range tc.want {
				assert.Contains(t, got[i], w)
			}
		})
	}
}

func TestStorageOfAStatefulSetIsFixed(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindPipeline)
	spec := func(s string) string { return pipelineHead + "spec: {instance: core, workload: " + s + "}\n" }
	old := spec("{kind: StatefulSet, storage: {size: 5Gi, storageClassName: local-path}}")
	const fixed = "storage size and storageClassName of a StatefulSet pipeline cannot be added, changed or removed"
	for name, tc := range map[string]struct {
		obj, old string
		refused  bool
	}{
		"size changed":               {spec("{kind: StatefulSet, storage: {size: 6Gi, storageClassName: local-path}}"), old, true},
		"class changed":              {spec("{kind: StatefulSet, storage: {size: 5Gi, storageClassName: fast}}"), old, true},
		"class removed":              {spec("{kind: StatefulSet, storage: {size: 5Gi}}"), old, true},
		"storage removed":            {spec("{kind: StatefulSet}"), old, true},
		"storage added":              {old, spec("{kind: StatefulSet}"), true},
		"retention changed":          {spec("{kind: StatefulSet, storage: {size: 5Gi, storageClassName: local-path, whenDeleted: Delete, whenScaled: Delete}}"), old, false},
		"replicas changed":           {spec("{kind: StatefulSet, replicas: 3, storage: {size: 5Gi, storageClassName: local-path}}"), old, false},
		"to a Deployment":            {spec("{kind: Deployment}"), old, false},
		"from a Deployment":          {old, spec("{kind: Deployment}"), false},
		"unchanged":                  {old, old, false},
		"Deployment to a Deployment": {spec("{kind: Deployment, replicas: 2}"), spec("{kind: Deployment}"), false},
	} {
		t.Run(name, func(t *testing.T) {
			got := v.validate(t, tc.obj, tc.old)
			if !tc.refused {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "errors: %q", got)
			assert.Contains(t, got[0], fixed)
		})
	}
}
