package operator

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// applyAutoscaler applies the pipeline's HorizontalPodAutoscaler when it
// has autoscaling, and otherwise deletes the one it controls. An
// autoscaler of the pipeline's name that someone else made is left alone
// (a *NameTakenError).
func (r *PipelineReconciler) applyAutoscaler(ctx context.Context, p *v1alpha1.Pipeline, objs *Objects) error {
	ac := objs.HorizontalPodAutoscaler()
	if ac == nil {
		deleted, err := r.deleteOwned(ctx, p, &autoscalingv2.HorizontalPodAutoscaler{}, p.Name)
		if deleted {
			r.event(p, nil, "Normal", "AutoscalingRemoved", "Delete",
				"no autoscaling: deleted HorizontalPodAutoscaler %s", p.Name)
		}
		return err
	}
	current := &autoscalingv2.HorizontalPodAutoscaler{}
	exists, err := r.claim(ctx, p, current, "HorizontalPodAutoscaler", p.Name)
	if err != nil {
		return err
	}
	if !exists {
		return r.applyOnce(ctx, ac, nil, "HorizontalPodAutoscaler", p.Namespace, p.Name)
	}
	return r.applyOnce(ctx, ac, current, "HorizontalPodAutoscaler", p.Namespace, p.Name)
}
