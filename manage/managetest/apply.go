package managetest

import (
	"context"
	"reflect"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// OpApply is the operation of ApplyPipeline for Fail.
const OpApply = "apply"

var _ manage.Applier = (*Memory)(nil)

// ApplyPipeline implements manage.Applier as server-side apply does for a
// single field manager: the applied spec replaces the stored one, the
// applied labels and annotations are set (others stay), and an unchanged
// object is not written (its resourceVersion and generation stay). Like the
// CRD it refuses a changed instance. It records no field ownership, so it
// never reports a conflict.
func (m *Memory) ApplyPipeline(_ context.Context, p *v1alpha1.Pipeline, o manage.ApplyOptions) (*v1alpha1.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpApply); err != nil {
		return nil, err
	}
	p = p.DeepCopy()
	p.Namespace = m.ns
	inst, err := manage.ResolveInstance(p.Spec.Instance, m.ns, m.instanceList())
	if err != nil {
		return nil, err
	}
	p.Spec.Instance = inst
	if err := manage.ValidatePipeline(p, nil); err != nil {
		return nil, err
	}
	old, exists := m.pipelines[p.Name]
	if !exists {
		p.Generation = 1
		if o.DryRun {
			return p, nil
		}
		if m.Assign != nil {
			m.Assign(p)
		}
		m.store(p)
		m.broadcast(manage.PipelineEvent{Type: manage.EventAdded, Pipeline: p.DeepCopy()})
		return p.DeepCopy(), nil
	}
	if old.Spec.Instance != p.Spec.Instance {
		return nil, &manage.InvalidError{Kind: v1alpha1.KindPipeline, Name: p.Name, Problems: []string{"spec.instance: instance is immutable; create a new pipeline instead"}}
	}
	c := old.DeepCopy()
	c.Spec = p.Spec
	c.Labels = merge(c.Labels, p.Labels)
	c.Annotations = merge(c.Annotations, p.Annotations)
	specChanged := !reflect.DeepEqual(old.Spec, c.Spec)
	if !specChanged && reflect.DeepEqual(old.Labels, c.Labels) && reflect.DeepEqual(old.Annotations, c.Annotations) {
		return c, nil
	}
	if specChanged {
		c.Generation++
	}
	if o.DryRun {
		return c, nil
	}
	if specChanged && m.Assign != nil {
		m.Assign(c)
	}
	m.store(c)
	m.broadcast(manage.PipelineEvent{Type: manage.EventModified, Pipeline: c.DeepCopy()})
	return c.DeepCopy(), nil
}

func merge(into, from map[string]string) map[string]string {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		into = map[string]string{}
	}
	for k, v := range from {
		into[k] = v
	}
	return into
}
