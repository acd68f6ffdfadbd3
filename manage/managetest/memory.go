// Package managetest holds Memory, an in-memory manage.API for model tests
// of the terminal UI and the commands (package testenv has the real thing).
package managetest

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

// Operations whose errors Memory.Fail can set.
const (
	OpList           = "list"
	OpWatch          = "watch"
	OpGet            = "get"
	OpCreate         = "create"
	OpUpdate         = "update"
	OpDelete         = "delete"
	OpEndpoints      = "endpoints"
	OpEvents         = "events"
	OpInstances      = "instances"
	OpUpdateInstance = "update-instance"
	OpSecrets        = "secrets"
	OpNodes          = "nodes" // ListNodes fails
	OpPods           = "pods"  // ListNodes cannot list the pods (NodeList.PodsErr)
)

// Memory is an in-memory manage.API. It validates like the real client
// (names, duplicate backends, unknown instances) and streams changes to
// watchers; it runs no operator, so statuses are what the test stores or
// what Assign writes.
type Memory struct {
	mu        sync.Mutex
	ns        string
	pipelines map[string]*v1alpha1.Pipeline
	instances map[string]*v1alpha1.CoreInstance
	endpoints map[string][]manage.Endpoint
	events    map[string][]manage.Event
	secrets   map[string]map[string][]byte // by pipeline
	nodes     []corev1.Node
	pods      []corev1.Pod
	fail      map[string]error
	watchers  []chan manage.PipelineEvent
	rv        int
	// Assign, when set, is called on every created or updated pipeline
	// before it is stored, standing in for the operator's status writes.
	Assign func(p *v1alpha1.Pipeline)
	// Now stamps creation times (a fixed clock keeps screens stable).
	Now func() time.Time
}

var _ manage.API = (*Memory)(nil)

// NewMemory returns an empty store for namespace.
func NewMemory(namespace string) *Memory {
	return &Memory{
		ns: namespace, pipelines: map[string]*v1alpha1.Pipeline{}, instances: map[string]*v1alpha1.CoreInstance{},
		endpoints: map[string][]manage.Endpoint{}, events: map[string][]manage.Event{}, fail: map[string]error{},
		secrets: map[string]map[string][]byte{},
		Now:     func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
}

// Namespace implements manage.API.
func (m *Memory) Namespace() string { return m.ns }

// Fail makes op return err until Fail(op, nil).
func (m *Memory) Fail(op string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.fail, op)
		return
	}
	m.fail[op] = err
}

func (m *Memory) failure(op string) error { return m.fail[op] }

// AddInstance stores an instance.
func (m *Memory) AddInstance(inst *v1alpha1.CoreInstance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := inst.DeepCopy()
	c.Namespace = m.ns
	m.instances[c.Name] = c
}

// AddPipeline stores a pipeline as it is (status included) and tells watchers.
func (m *Memory) AddPipeline(p *v1alpha1.Pipeline) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := p.DeepCopy()
	c.Namespace = m.ns
	_, existed := m.pipelines[c.Name]
	m.store(c)
	typ := manage.EventAdded
	if existed {
		typ = manage.EventModified
	}
	m.broadcast(manage.PipelineEvent{Type: typ, Pipeline: c.DeepCopy()})
}

// SetEndpoints stores what Endpoints returns for a pipeline.
func (m *Memory) SetEndpoints(name string, eps []manage.Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endpoints[name] = eps
}

// SetEvents stores what Events returns for an object.
func (m *Memory) SetEvents(kind, name string, evs []manage.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[kind+"/"+name] = evs
}

// Pipeline returns a copy of a stored pipeline, or nil.
func (m *Memory) Pipeline(name string) *v1alpha1.Pipeline {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pipelines[name]; ok {
		return p.DeepCopy()
	}
	return nil
}

func (m *Memory) store(p *v1alpha1.Pipeline) {
	m.rv++
	p.ResourceVersion = strconv.Itoa(m.rv)
	if p.CreationTimestamp.IsZero() {
		p.CreationTimestamp = metav1.NewTime(m.Now())
	}
	m.pipelines[p.Name] = p
}

func (m *Memory) broadcast(e manage.PipelineEvent) {
	for _, w := range m.watchers {
		select {
		case w <- e:
		default: // a slow watcher loses events, as a real watch would end
		}
	}
}

func (m *Memory) sortedPipelines() []v1alpha1.Pipeline {
	out := make([]v1alpha1.Pipeline, 0, len(m.pipelines))
	for _, p := range m.pipelines {
		out = append(out, *p.DeepCopy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ListPipelines implements manage.API.
func (m *Memory) ListPipelines(context.Context) ([]v1alpha1.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpList); err != nil {
		return nil, err
	}
	return m.sortedPipelines(), nil
}

// GetPipeline implements manage.API.
func (m *Memory) GetPipeline(_ context.Context, name string) (*v1alpha1.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpGet); err != nil {
		return nil, err
	}
	return m.get(name)
}

func (m *Memory) get(name string) (*v1alpha1.Pipeline, error) {
	p, ok := m.pipelines[name]
	if !ok {
		e := &manage.NotFoundError{Kind: v1alpha1.KindPipeline, Name: name, Namespace: m.ns}
		for _, q := range m.sortedPipelines() {
			e.Existing = append(e.Existing, q.Name)
		}
		return nil, e
	}
	return p.DeepCopy(), nil
}

func (m *Memory) instanceList() []v1alpha1.CoreInstance {
	out := make([]v1alpha1.CoreInstance, 0, len(m.instances))
	for _, i := range m.instances {
		out = append(out, *i.DeepCopy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreatePipeline implements manage.API.
func (m *Memory) CreatePipeline(_ context.Context, p *v1alpha1.Pipeline, texts []string, o manage.WriteOptions) (*v1alpha1.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpCreate); err != nil {
		return nil, err
	}
	p = p.DeepCopy()
	p.Namespace = m.ns
	inst, err := manage.ResolveInstance(p.Spec.Instance, m.ns, m.instanceList())
	if err != nil {
		return nil, err
	}
	p.Spec.Instance = inst
	if err := manage.ValidatePipeline(p, texts); err != nil {
		return nil, err
	}
	if _, taken := m.pipelines[p.Name]; taken {
		return nil, &manage.AlreadyExistsError{Kind: v1alpha1.KindPipeline, Name: p.Name, Namespace: m.ns}
	}
	if o.DryRun {
		return p, nil
	}
	p.Generation = 1
	if m.Assign != nil {
		m.Assign(p)
	}
	m.store(p)
	m.broadcast(manage.PipelineEvent{Type: manage.EventAdded, Pipeline: p.DeepCopy()})
	return p.DeepCopy(), nil
}

// UpdatePipeline implements manage.API.
func (m *Memory) UpdatePipeline(_ context.Context, name string, ch manage.PipelineChange, o manage.WriteOptions) (*v1alpha1.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpUpdate); err != nil {
		return nil, err
	}
	p, err := m.get(name)
	if err != nil {
		return nil, err
	}
	if err := ch.Apply(p); err != nil {
		return nil, err
	}
	if err := manage.ValidatePipeline(p, ch.PortTexts); err != nil {
		return nil, err
	}
	if o.DryRun {
		return p, nil
	}
	p.Generation++
	if m.Assign != nil {
		m.Assign(p)
	}
	m.store(p)
	m.broadcast(manage.PipelineEvent{Type: manage.EventModified, Pipeline: p.DeepCopy()})
	return p.DeepCopy(), nil
}

// DeletePipeline implements manage.API.
func (m *Memory) DeletePipeline(_ context.Context, name string, o manage.WriteOptions) (*v1alpha1.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpDelete); err != nil {
		return nil, err
	}
	p, err := m.get(name)
	if err != nil {
		return nil, err
	}
	if !o.DryRun {
		delete(m.pipelines, name)
		delete(m.secrets, name) // Kubernetes collects the Secret the pipeline owns
		m.broadcast(manage.PipelineEvent{Type: manage.EventDeleted, Pipeline: p.DeepCopy()})
	}
	return p, nil
}

// WatchPipelines implements manage.API.
func (m *Memory) WatchPipelines(ctx context.Context) (<-chan manage.PipelineEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpWatch); err != nil {
		return nil, err
	}
	in := make(chan manage.PipelineEvent, 256)
	in <- manage.PipelineEvent{Type: manage.EventReset, Pipelines: m.sortedPipelines()}
	m.watchers = append(m.watchers, in)
	out := make(chan manage.PipelineEvent)
	go func() {
		defer close(out)
		defer m.unwatch(in)
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-in:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (m *Memory) unwatch(c chan manage.PipelineEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.watchers {
		if w == c {
			m.watchers = append(m.watchers[:i], m.watchers[i+1:]...)
			return
		}
	}
}

// Endpoints implements manage.API with what SetEndpoints stored, or
// endpoints without addresses derived from the status.
func (m *Memory) Endpoints(_ context.Context, name string) ([]manage.Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpEndpoints); err != nil {
		return nil, err
	}
	if eps, ok := m.endpoints[name]; ok {
		return eps, nil
	}
	p, err := m.get(name)
	if err != nil {
		return nil, err
	}
	return manage.ComputeEndpoints(p, nil, nil), nil
}

// Events implements manage.API.
func (m *Memory) Events(_ context.Context, kind, name string) ([]manage.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpEvents); err != nil {
		return nil, err
	}
	return m.events[kind+"/"+name], nil
}

// ListInstances implements manage.API.
func (m *Memory) ListInstances(context.Context) ([]v1alpha1.CoreInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpInstances); err != nil {
		return nil, err
	}
	return m.instanceList(), nil
}

// GetInstance implements manage.API.
func (m *Memory) GetInstance(_ context.Context, name string) (*v1alpha1.CoreInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpInstances); err != nil {
		return nil, err
	}
	inst, ok := m.instances[name]
	if !ok {
		_, err := manage.ResolveInstance(name, m.ns, m.instanceList())
		return nil, err
	}
	return inst.DeepCopy(), nil
}

// UpdateInstance implements manage.API.
func (m *Memory) UpdateInstance(_ context.Context, name string, ch manage.InstanceChange, o manage.WriteOptions) (*v1alpha1.CoreInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpUpdateInstance); err != nil {
		return nil, err
	}
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	inst, ok := m.instances[name]
	if !ok {
		_, err := manage.ResolveInstance(name, m.ns, m.instanceList())
		return nil, err
	}
	c := inst.DeepCopy()
	ch.ApplyTo(&c.Spec)
	if !o.DryRun {
		c.Generation++
		m.instances[name] = c
	}
	return c.DeepCopy(), nil
}

// AssignAsOperator returns an Assign function that does what the operator
// does for a created or updated pipeline, with the operator's own rules
// (pipeline.Claims and pipeline.Assign): the pipeline's effective ports
// claim frontends against the frontends the instance's other pipelines
// hold (their status), the instance's health-check port and reserved;
// unchanged entries keep theirs, new ones move up past taken numbers and
// never past 65535. It writes the status the operator would: ports,
// summary, Service type and PortsAssigned. A pipeline labelled as its
// instance's health check gets the health-check port, as the operator
// gives it. The function reads m's pipelines and instances without locking:
// Memory calls it with its lock held; call it directly only while nothing
// else uses m.
func (m *Memory) AssignAsOperator(reserved pipeline.PortSet) func(p *v1alpha1.Pipeline) {
	return func(p *v1alpha1.Pipeline) {
		now := m.Now()
		var spec *v1alpha1.CoreInstanceSpec
		if inst, ok := m.instances[p.Spec.Instance]; ok {
			spec = &inst.Spec
		}
		var claims []pipeline.Claim
		taken := pipeline.Reserved(spec, reserved)
		pipeline.HoldHostListeners(taken, p.Name, creation(p, now), p.Annotations[v1alpha1.AnnotationHostListeners])
		for _, o := range m.pipelines {
			if o.Name == p.Name || o.Spec.Instance != p.Spec.Instance {
				continue
			}
			pipeline.HoldHostListeners(taken, o.Name, o.CreationTimestamp.Time, o.Annotations[v1alpha1.AnnotationHostListeners])
			if manage.IsHealthCheck(o) {
				continue
			}
			held := heldPorts(o.Status.Ports)
			claims = append(claims, pipeline.Claims(o.Name, pipeline.EntriesFromStatus(held), held, now)...)
		}
		cond := metav1.Condition{Type: v1alpha1.ConditionPortsAssigned}
		res, err := pipeline.ResolvePorts(&p.Spec)
		switch {
		case manage.IsHealthCheck(p) && spec != nil:
			p.Status.Ports = []v1alpha1.PortStatus{pipeline.HealthCheckPortStatus(spec, p.Status.Ports, now)}
			cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonAssigned
			cond.Message = "health-check port tcp/" + strconv.Itoa(int(spec.HealthCheckPort()))
		case err != nil:
			// As the operator does: an invalid generation keeps the
			// frontends the pipeline holds.
			held := heldPorts(p.Status.Ports)
			claims = append(claims, pipeline.Claims(p.Name, pipeline.EntriesFromStatus(held), held, now)...)
			assigned, conflicts := pipeline.Assign(claims, taken)
			p.Status.Ports = nil
			if r := pipeline.Group(assigned, conflicts)[p.Name]; r != nil {
				p.Status.Ports = r.Ports
			}
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalidPorts, err.Error()
		default:
			claims = append(claims, pipeline.Claims(p.Name, res.Ports, p.Status.Ports, now)...)
			assigned, conflicts := pipeline.Assign(claims, taken)
			r := pipeline.Group(assigned, conflicts)[p.Name]
			cond = r.Condition()
			p.Status.Ports = nil
			if r != nil {
				p.Status.Ports = r.Ports
			}
		}
		p.Status.PortSummary = pipeline.Summary(p.Status.Ports)
		cond.ObservedGeneration, cond.LastTransitionTime = p.Generation, metav1.NewTime(now)
		meta.SetStatusCondition(&p.Status.Conditions, cond)
		p.Status.ServiceType = p.Spec.EffectiveServiceType(spec)
	}
}

// creation is p's creation time, or now for one not stored yet.
func creation(p *v1alpha1.Pipeline, now time.Time) time.Time {
	if p.CreationTimestamp.IsZero() {
		return now
	}
	return p.CreationTimestamp.Time
}

// heldPorts are the entries of a status that hold a frontend.
func heldPorts(ports []v1alpha1.PortStatus) []v1alpha1.PortStatus {
	var out []v1alpha1.PortStatus
	for _, st := range ports {
		if st.Frontend != 0 {
			out = append(out, st)
		}
	}
	return out
}

// WaitPipeline polls the store like manage.Client.WaitPipeline does.
func (m *Memory) WaitPipeline(ctx context.Context, name string, cond manage.WaitCondition, interval time.Duration) (*v1alpha1.Pipeline, error) {
	if interval <= 0 {
		interval = 10 * time.Millisecond
	}
	for {
		p, err := m.GetPipeline(ctx, name)
		if err != nil {
			return nil, err
		}
		done, err := manage.CheckWait(p, cond)
		if err != nil || done {
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, &manage.WaitError{Name: name, Condition: cond, Reason: "timeout", Message: "not reached", Pipeline: p, Err: ctx.Err()}
		case <-time.After(interval):
		}
	}
}

// SecretValues returns a copy of a pipeline's secrets with their values,
// for tests (nil when it has no Secret).
func (m *Memory) SecretValues(name string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.secrets[name]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(data))
	for k, v := range data {
		out[k] = string(v)
	}
	return out
}

// PipelineSecrets implements manage.API.
func (m *Memory) PipelineSecrets(_ context.Context, name string) ([]manage.SecretKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpSecrets); err != nil {
		return nil, err
	}
	if _, err := m.get(name); err != nil {
		return nil, err
	}
	return manage.SecretKeys(m.secrets[name]), nil
}

// ChangePipelineSecrets implements manage.API as the real client does:
// validation, missing keys, and a new revision label when the data changes.
func (m *Memory) ChangePipelineSecrets(_ context.Context, name string, ch manage.SecretChange, o manage.WriteOptions) ([]manage.SecretKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpSecrets); err != nil {
		return nil, err
	}
	if err := ch.Validate(name); err != nil {
		return nil, err
	}
	p, err := m.get(name)
	if err != nil {
		return nil, err
	}
	if err := manage.CheckSecretsAllowed(p); err != nil {
		return nil, err
	}
	old, exists := m.secrets[name]
	data, changed, err := manage.ApplySecretChange(name, old, ch)
	if err != nil {
		return nil, err
	}
	keys := manage.SecretKeys(data)
	if o.DryRun {
		return keys, nil
	}
	changed = changed || !exists
	m.secrets[name] = data
	rev := ch.Revision
	if rev == "" {
		rev = manage.NewSecretsRevision()
	}
	current := p.Labels[v1alpha1.LabelSecretsRevision]
	if (changed && current != rev) || current == "" {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[v1alpha1.LabelSecretsRevision] = rev
		m.store(p)
		m.broadcast(manage.PipelineEvent{Type: manage.EventModified, Pipeline: p.DeepCopy()})
	}
	return keys, nil
}

// SetNodes replaces the cluster's nodes.
func (m *Memory) SetNodes(nodes ...corev1.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes = nil
	for i := range nodes {
		m.nodes = append(m.nodes, *nodes[i].DeepCopy())
	}
}

// SetPods replaces the namespace's pods (those of pipelines carry
// v1alpha1.LabelPipeline).
func (m *Memory) SetPods(pods ...corev1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pods = nil
	for i := range pods {
		c := pods[i].DeepCopy()
		c.Namespace = m.ns
		m.pods = append(m.pods, *c)
	}
}

// ListNodes implements manage.API with the real client's rules
// (manage.DescribeNodes).
func (m *Memory) ListNodes(context.Context) (manage.NodeList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpNodes); err != nil {
		return manage.NodeList{}, err
	}
	if err := m.failure(OpPods); err != nil {
		out := manage.DescribeNodes(m.nodes, nil)
		out.PodsErr = err
		return out, nil
	}
	return manage.DescribeNodes(m.nodes, m.pods), nil
}
