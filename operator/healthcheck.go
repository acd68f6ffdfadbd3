package operator

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// HealthCheckConfig is the Fluent Bit configuration of a health-check
// pipeline: the built-in HTTP server with health checks on port, fed by a
// dummy input so that the engine has work to report on.
func HealthCheckConfig(port int32) string {
	return fmt.Sprintf(`service:
  http_server: on
  http_listen: 0.0.0.0
  http_port: %d
  health_check: on
pipeline:
  inputs:
    - name: dummy
      tag: health
      rate: 1
  outputs:
    - name: "null"
      match: health
`, port)
}

// healthCheckPortName names the health-check pipeline's only port.
const healthCheckPortName = pipeline.HealthCheckPortName

// HealthCheckPipeline returns the fields of inst's health-check pipeline
// that the operator owns, as an object for server-side apply.
func HealthCheckPipeline(inst *v1alpha1.CoreInstance) *unstructured.Unstructured {
	port := inst.Spec.HealthCheckPort()
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.KindPipeline,
		"metadata": map[string]any{
			"name":      HealthCheckPipelineName(inst.Name),
			"namespace": inst.Namespace,
			"labels": map[string]any{
				LabelRole:      RoleHealthCheck,
				LabelCore:      inst.Name,
				LabelManagedBy: ManagedBy,
			},
			"ownerReferences": []any{instanceOwnerRef(inst, true)},
		},
		"spec": map[string]any{
			"instance": inst.Name,
			"config": map[string]any{
				"format":  string(v1alpha1.ConfigFormatYAML),
				"content": HealthCheckConfig(port),
			},
			"ports": []any{map[string]any{
				"protocol": string(v1alpha1.ProtocolTCP),
				"port":     int64(port),
				"name":     healthCheckPortName,
			}},
			"autoDetectPorts": false,
			"serviceType":     string(inst.Spec.HealthCheckServiceType()),
		},
	}}
}

// instanceOwnerRef is an owner reference to inst in unstructured form; the
// health-check pipeline has inst as its controller, other pipelines have a
// plain owner reference so that deleting the instance deletes them.
func instanceOwnerRef(inst *v1alpha1.CoreInstance, controller bool) map[string]any {
	ref := map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.KindCoreInstance,
		"name":       inst.Name,
		"uid":        string(inst.UID),
	}
	if controller {
		ref["controller"] = true
		ref["blockOwnerDeletion"] = true
	}
	return ref
}

// healthUpToDate reports whether p (inst's health-check pipeline) already
// has every field HealthCheckPipeline sets, so applying it would change nothing.
func healthUpToDate(p *v1alpha1.Pipeline, inst *v1alpha1.CoreInstance) bool {
	if !inst.Spec.HealthCheckEnabled() || p.DeletionTimestamp != nil || !metav1.IsControlledBy(p, inst) {
		return false
	}
	port := inst.Spec.HealthCheckPort()
	s := &p.Spec
	return p.Labels[LabelRole] == RoleHealthCheck && p.Labels[LabelCore] == inst.Name && p.Labels[LabelManagedBy] == ManagedBy &&
		s.Instance == inst.Name && s.Config.Format == v1alpha1.ConfigFormatYAML && s.Config.Content == HealthCheckConfig(port) &&
		len(s.Ports) == 1 && s.Ports[0].Protocol == v1alpha1.ProtocolTCP && s.Ports[0].Port == port &&
		s.Ports[0].Name == healthCheckPortName && s.AutoDetectPorts != nil && !*s.AutoDetectPorts &&
		s.ServiceType == inst.Spec.HealthCheckServiceType()
}

// isHealthCheck reports whether p is inst's health-check pipeline.
func isHealthCheck(p *v1alpha1.Pipeline, inst *v1alpha1.CoreInstance) bool {
	return p.Name == HealthCheckPipelineName(inst.Name) && metav1.IsControlledBy(p, inst)
}

// hasOwner reports whether obj lists uid among its owners.
func hasOwner(obj metav1.Object, inst *v1alpha1.CoreInstance) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == inst.UID {
			return true
		}
	}
	return false
}

// ensureHealthCheck creates or updates inst's health-check pipeline, or
// deletes it when the health check is disabled. existing is the pipeline of
// that name, if any. It returns false when the name belongs to a pipeline
// the instance does not control (then nothing is written).
func (r *CoreInstanceReconciler) ensureHealthCheck(ctx context.Context, inst *v1alpha1.CoreInstance, existing *v1alpha1.Pipeline) (bool, error) {
	if existing != nil && !metav1.IsControlledBy(existing, inst) {
		return false, nil
	}
	if !inst.Spec.HealthCheckEnabled() {
		if existing == nil {
			return true, nil
		}
		if err := r.Client.Delete(ctx, existing); client.IgnoreNotFound(err) != nil {
			return true, fmt.Errorf("delete health-check pipeline %s: %w", existing.Name, err)
		}
		r.event(inst, nil, "Normal", "HealthCheckDisabled", "Delete",
			"health check disabled: deleted pipeline %s", existing.Name)
		return true, nil
	}
	if existing != nil && healthUpToDate(existing, inst) {
		return true, nil
	}
	obj := HealthCheckPipeline(inst)
	err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
		client.FieldOwner(FieldManager), client.ForceOwnership)
	if err != nil && !apierrors.IsNotFound(err) {
		return true, fmt.Errorf("apply health-check pipeline %s: %w", obj.GetName(), err)
	}
	if existing == nil {
		r.event(inst, nil, "Normal", "HealthCheckCreated", "Create",
			"created health-check pipeline %s on tcp/%d", obj.GetName(), inst.Spec.HealthCheckPort())
	}
	return true, nil
}
