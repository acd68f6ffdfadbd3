package operator

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// withTransition returns c with its LastTransitionTime: the previous one
// when the condition's status did not change, now otherwise.
func withTransition(prev []metav1.Condition, c metav1.Condition, now time.Time) metav1.Condition {
	if old := meta.FindStatusCondition(prev, c.Type); old != nil && old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	} else {
		c.LastTransitionTime = metav1.NewTime(now).Rfc3339Copy()
	}
	return c
}

// sameCondition compares what a condition says, ignoring its transition time.
func sameCondition(prev []metav1.Condition, c metav1.Condition) bool {
	old := meta.FindStatusCondition(prev, c.Type)
	return old != nil && old.Status == c.Status && old.Reason == c.Reason &&
		old.Message == c.Message && old.ObservedGeneration == c.ObservedGeneration
}

// applyStatus server-side applies status (a partial status struct: only the
// fields that fieldManager owns are set) to the status subresource of the
// named object of kind. Fields the manager owned before and leaves out are
// removed.
func applyStatus(ctx context.Context, c client.Client, kind string, key client.ObjectKey, status any, fieldManager string) error {
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return fmt.Errorf("encode %s %s status: %w", kind, key, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": key.Name, "namespace": key.Namespace},
		"status":     st,
	}}
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s status as %s: %w", kind, key, fieldManager, err)
	}
	return nil
}

// limit keeps messages well inside the 32 KiB limit of a condition message.
func limit(s string) string {
	const max = 4096
	if len(s) <= max {
		return s
	}
	return s[:max-3] + "..."
}
