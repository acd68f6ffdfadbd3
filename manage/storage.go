package manage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// MaxStorage is the largest --storage-size (the CRD's bound).
var MaxStorage = resource.MustParse("64Ti")

// MinStorage is the smallest --storage-size (the CRD's bound).
var MinStorage = resource.MustParse("1Mi")

// StorageChange changes spec.workload.storage: nil fields keep theirs;
// Remove drops the storage (Kubernetes refuses that on an existing
// StatefulSet, and so does the CRD, unless the workload kind changes too).
type StorageChange struct {
	Size        *resource.Quantity
	Class       *string
	WhenDeleted *v1alpha1.RetentionPolicy
	WhenScaled  *v1alpha1.RetentionPolicy
	Remove      bool
}

func (c *StorageChange) applyTo(w *v1alpha1.WorkloadSpec) {
	if c.Remove {
		w.Storage = nil
		return
	}
	st := v1alpha1.StorageSpec{}
	if w.Storage != nil {
		st = *w.Storage
	}
	if c.Size != nil {
		st.Size = c.Size.DeepCopy()
	}
	if c.Class != nil {
		st.StorageClassName = *c.Class
	}
	if c.WhenDeleted != nil {
		st.WhenDeleted = *c.WhenDeleted
	}
	if c.WhenScaled != nil {
		st.WhenScaled = *c.WhenScaled
	}
	w.Storage = &st
}

// ParseStorageSize parses --storage-size: a quantity from 1Mi to 64Ti, or
// empty (remove).
func ParseStorageSize(s string) (q resource.Quantity, remove bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return resource.Quantity{}, true, nil
	}
	q, err = resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, false, fmt.Errorf("--storage-size %q: not a size such as 5Gi or 500Mi", s)
	}
	if q.Cmp(MinStorage) < 0 || q.Cmp(MaxStorage) > 0 {
		return resource.Quantity{}, false, fmt.Errorf("--storage-size %s: must be at least 1Mi and at most 64Ti", s)
	}
	return q, false, nil
}

// ParseRetention accepts retain or delete in any letter case.
func ParseRetention(flag, s string) (v1alpha1.RetentionPolicy, error) {
	for _, r := range []v1alpha1.RetentionPolicy{v1alpha1.RetentionRetain, v1alpha1.RetentionDelete} {
		if strings.EqualFold(strings.TrimSpace(s), string(r)) {
			return r, nil
		}
	}
	return "", fmt.Errorf("--%s %q: want retain or delete", flag, s)
}

// autoscalingBounds are the CRD's bounds of the autoscaling settings, by
// flag name.
var autoscalingBounds = map[string][2]int32{"min-replicas": {1, 100}, "max-replicas": {1, 100}, "target-cpu": {1, 1000}}

// checkAutoscaling checks v against the bounds of the flag's setting.
func checkAutoscaling(flag string, v int32) error {
	b := autoscalingBounds[flag]
	if v < b[0] || v > b[1] {
		return fmt.Errorf("--%s %d: must be from %d to %d", flag, v, b[0], b[1])
	}
	return nil
}

// ParseAutoscaling parses the text of an autoscaling setting, named by its
// flag (min-replicas, max-replicas or target-cpu), with the flag's bounds.
func ParseAutoscaling(flag, s string) (int32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("--%s %q: want a whole number", flag, s)
	}
	return int32(n), checkAutoscaling(flag, int32(n))
}

// AutoscalingChange changes spec.workload.autoscaling: nil fields keep
// theirs; Remove drops it (the Deployment then has spec.workload.replicas,
// default 1, and the operator deletes the HorizontalPodAutoscaler).
type AutoscalingChange struct {
	Min, Max, TargetCPU *int32
	Remove              bool
}

func (c *AutoscalingChange) applyTo(w *v1alpha1.WorkloadSpec) {
	if c.Remove {
		w.Autoscaling = nil
		return
	}
	a := v1alpha1.AutoscalingSpec{}
	if w.Autoscaling != nil {
		a = *w.Autoscaling
	}
	if c.Min != nil {
		v := *c.Min
		a.MinReplicas = &v
	}
	if c.Max != nil {
		a.MaxReplicas = *c.Max
	}
	if c.TargetCPU != nil {
		v := *c.TargetCPU
		a.TargetCPUUtilizationPercentage = &v
	}
	w.Autoscaling = &a
}

// validateWorkload checks storage and autoscaling as the CRD does, so a
// create says what is missing in terms of flags.
func validateWorkload(spec *v1alpha1.PipelineSpec) []string {
	var probs []string
	w := &spec.Workload
	if st := w.Storage; st != nil {
		if spec.WorkloadKind() != v1alpha1.WorkloadStatefulSet {
			probs = append(probs, fmt.Sprintf("storage needs workload kind StatefulSet (--workload statefulset), not %s: only a StatefulSet gives each pod its own PersistentVolumeClaim", spec.WorkloadKind()))
		}
		if st.Size.IsZero() {
			probs = append(probs, "storage needs a size (--storage-size, such as 5Gi)")
		}
	}
	if a := w.Autoscaling; a != nil {
		if spec.WorkloadKind() != v1alpha1.WorkloadDeployment {
			probs = append(probs, fmt.Sprintf("autoscaling needs workload kind Deployment, not %s", spec.WorkloadKind()))
		}
		if a.MaxReplicas == 0 {
			probs = append(probs, "autoscaling needs --max-replicas")
		}
		if a.MinReplicas != nil && a.MaxReplicas != 0 && *a.MinReplicas > a.MaxReplicas {
			probs = append(probs, fmt.Sprintf("autoscaling: --min-replicas %d is greater than --max-replicas %d", *a.MinReplicas, a.MaxReplicas))
		}
		if _, ok := spec.Resources.Requests["cpu"]; !ok {
			probs = append(probs, "autoscaling needs a cpu request (--cpu, such as --cpu 100m): the autoscaler's target is a percentage of it")
		}
		if w.Replicas != nil {
			probs = append(probs, "--replicas and autoscaling exclude each other: the autoscaler sets the replicas (remove autoscaling with --no-autoscaling)")
		}
	}
	return probs
}

// StorageText describes a pipeline's storage for pipeline get, or "".
func StorageText(st *v1alpha1.StorageSpec) string {
	if st == nil {
		return ""
	}
	class := st.StorageClassName
	if class == "" {
		class = "default class"
	}
	ret := func(r v1alpha1.RetentionPolicy) string {
		if r == "" {
			return strings.ToLower(string(v1alpha1.RetentionRetain))
		}
		return strings.ToLower(string(r))
	}
	return fmt.Sprintf("%s per pod (%s) at %s; claims: %s when deleted, %s when scaled down",
		st.Size.String(), class, v1alpha1.StorageDir, ret(st.WhenDeleted), ret(st.WhenScaled))
}

// AutoscalingText describes a pipeline's autoscaling for pipeline get, or "".
func AutoscalingText(a *v1alpha1.AutoscalingSpec) string {
	if a == nil {
		return ""
	}
	lo, target := int32(1), v1alpha1.DefaultTargetCPUUtilization
	if a.MinReplicas != nil {
		lo = *a.MinReplicas
	}
	if a.TargetCPUUtilizationPercentage != nil {
		target = *a.TargetCPUUtilizationPercentage
	}
	return fmt.Sprintf("%d to %d replicas at %d%% of the cpu request", lo, a.MaxReplicas, target)
}

var errNoAutoscalingFlags = errors.New("--no-autoscaling and --min-replicas/--max-replicas/--target-cpu exclude each other")
