package operator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// CoreInstanceReconciler assigns the frontends of all pipelines of an
// instance, owns its health-check pipeline and reports the instance status.
type CoreInstanceReconciler struct {
	// Client writes; it also reads the instance (from the cache).
	Client client.Client
	// Reader lists pipelines without a cache before the health-check
	// pipeline is created or updated, so that it never takes over a
	// pipeline of that name the cache does not show yet.
	Reader   client.Reader
	Recorder events.EventRecorder
	// Reserved are the node's own ports and those of the enabled packaged
	// components (see ReservedPorts). The frontends of other LoadBalancer
	// Services are added per reconcile, from the cache (see
	// IndexLoadBalancerServices).
	Reserved pipeline.PortSet
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Workers bounds the concurrent status writes of one reconcile (16 when 0).
	Workers int
	// Members holds the cached pipelines of each instance, kept by the
	// handler of the controller's pipeline watch (see memberHandler). Nil
	// lists them from Client instead (unit tests whose client is not a
	// cache).
	Members *memberIndex

	// resolved memoises port resolution per pipeline uid and generation.
	resolved resolveMemo
	// work tells the pipeline reconciler when port assignments are being
	// written (nil: it is not told).
	work *portWork
}

// resolveMemo remembers the effective ports of each pipeline, per instance,
// keyed by uid and valid for one generation: a reconcile parses only the
// configurations that changed. Entries of pipelines that left the instance
// are dropped on its next plan. The zero value is ready to use.
type resolveMemo struct {
	mu sync.Mutex
	m  map[string]map[string]resolvedPorts // instance key → pipeline key → ports
}

type resolvedPorts struct {
	generation int64
	res        pipeline.Resolved
	err        error
	// written is the ports status last written for writtenGeneration.
	written           *portsStatus
	writtenGeneration int64
}

// recordWrite remembers the ports status written to a pipeline.
func (m *resolveMemo) recordWrite(inst, key string, generation int64, st *portsStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if memo := m.m[inst]; memo != nil {
		e := memo[key]
		e.written, e.writtenGeneration = st, generation
		memo[key] = e
	}
}

// take removes and returns the memo of one instance.
func (m *resolveMemo) take(inst string) map[string]resolvedPorts {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.m[inst]
	delete(m.m, inst)
	return out
}

func (m *resolveMemo) put(inst string, memo map[string]resolvedPorts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]map[string]resolvedPorts{}
	}
	m.m[inst] = memo
}

// IndexLoadBalancerServices indexes Services by whether they are of type
// LoadBalancer, so that a reconcile reads only those from the cache.
const IndexLoadBalancerServices = "spec.type=LoadBalancer"

// IndexLoadBalancer is the index function of IndexLoadBalancerServices.
func IndexLoadBalancer(obj client.Object) []string {
	if svc, ok := obj.(*corev1.Service); ok && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return []string{"true"}
	}
	return nil
}

func (r *CoreInstanceReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *CoreInstanceReconciler) event(obj, related runtime.Object, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, related, typ, reason, action, note, args...)
	}
}

// portsStatus is the part of a pipeline's status that this reconciler owns.
type portsStatus struct {
	Ports       []v1alpha1.PortStatus `json:"ports,omitempty"`
	PortSummary string                `json:"portSummary,omitempty"`
	Conditions  []metav1.Condition    `json:"conditions,omitempty"`
}

// portPlan is what the reconcile decided for one pipeline.
type portPlan struct {
	p        *v1alpha1.Pipeline
	want     portsStatus
	result   *pipeline.Result
	warnings []string
	invalid  error
	// served is the generation whose frontends an invalid pipeline keeps
	// claiming (0 when it has none).
	served int64
}

// Reconcile implements reconcile.Reconciler.
func (r *CoreInstanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	inst := &v1alpha1.CoreInstance{}
	if err := r.Client.Get(ctx, req.NamespacedName, inst); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if inst.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	// Plan from the cache. Where the cache has not yet seen this
	// reconciler's last status write to a pipeline, the plan uses what was
	// written (see resolveMemo), so an assignment never rests on a lagging
	// cache; a change the cache has not seen yet brings its own event
	// later. Only creating or updating the health-check pipeline looks past
	// the cache first, so that it never takes over a pipeline of that name
	// the cache does not show yet.
	now := r.now().UTC().Truncate(time.Second)
	taken, err := r.taken(ctx, inst)
	if err != nil {
		return ctrl.Result{}, err
	}
	members, health, err := r.members(ctx, inst, true)
	if err != nil {
		return ctrl.Result{}, err
	}
	plans, assigned := r.plan(inst, members, taken, now)
	if healthNeedsWrite(inst, health) {
		if members, health, err = r.members(ctx, inst, false); err != nil {
			return ctrl.Result{}, err
		}
		plans, assigned = r.plan(inst, members, taken, now)
	}

	var errs []error
	hcName := HealthCheckPipelineName(inst.Name)
	hcOwned, err := r.ensureHealthCheck(ctx, inst, health)
	if err != nil {
		errs = append(errs, err)
	}
	if !hcOwned {
		r.event(inst, health, "Warning", "HealthCheckNameTaken", "Skip",
			"pipeline %s exists and is not this instance's health-check pipeline; the health check does not run", hcName)
	}

	owners, werrs := r.writePipelines(ctx, inst, plans)
	errs = append(errs, werrs...)
	if err := r.writeInstance(ctx, inst, plans, assigned, hcOwned && health == nil, now); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		log.Error(errors.Join(errs...), "reconcile instance")
		return ctrl.Result{}, errors.Join(errs...)
	}
	if owners {
		// Port statuses were written and owner references wait for a
		// reconcile that writes none (see writePipelines).
		return ctrl.Result{RequeueAfter: ownerRetry}, nil
	}
	return ctrl.Result{}, nil
}

// ownerRetry is when an instance reconcile that deferred owner references
// runs again if nothing else brings it back sooner.
const ownerRetry = time.Second

// taken returns the ports no pipeline of inst may be given: Reserved and
// the frontends of every other LoadBalancer Service in the cluster (read
// from the cache, which holds every Service).
func (r *CoreInstanceReconciler) taken(ctx context.Context, inst *v1alpha1.CoreInstance) (pipeline.PortSet, error) {
	var list corev1.ServiceList
	if err := r.Client.List(ctx, &list, client.MatchingFields{IndexLoadBalancerServices: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list LoadBalancer Services: %w", err)
	}
	svcs := make([]*corev1.Service, len(list.Items))
	for i := range list.Items {
		svcs[i] = &list.Items[i]
	}
	set := make(pipeline.PortSet, len(r.Reserved))
	set.Merge(r.Reserved)
	return set.Merge(LoadBalancerFrontends(svcs, inst)), nil
}

// members returns the pipelines of inst that are not being deleted, and its
// health-check pipeline (deleted or not), from the cache or listed directly.
func (r *CoreInstanceReconciler) members(ctx context.Context, inst *v1alpha1.CoreInstance, cached bool) ([]*v1alpha1.Pipeline, *v1alpha1.Pipeline, error) {
	if cached && r.Members != nil {
		members, health := splitMembers(inst, r.Members.of(client.ObjectKeyFromObject(inst)))
		return members, health, nil
	}
	var list v1alpha1.PipelineList
	var err error
	if cached {
		// The plan only reads the pipelines: no copies of the cache.
		err = r.Client.List(ctx, &list, client.InNamespace(inst.Namespace), client.MatchingFields{indexInstance: inst.Name},
			client.UnsafeDisableDeepCopy)
	} else {
		err = r.Reader.List(ctx, &list, client.InNamespace(inst.Namespace))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list pipelines of instance %s/%s: %w", inst.Namespace, inst.Name, err)
	}
	all := make([]*v1alpha1.Pipeline, len(list.Items))
	for i := range list.Items {
		all[i] = &list.Items[i]
	}
	members, health := splitMembers(inst, all)
	return members, health, nil
}

// splitMembers returns the pipelines of inst among all that are not being
// deleted, and its health-check pipeline (deleted or not).
func splitMembers(inst *v1alpha1.CoreInstance, all []*v1alpha1.Pipeline) (members []*v1alpha1.Pipeline, health *v1alpha1.Pipeline) {
	hcName := HealthCheckPipelineName(inst.Name)
	members = make([]*v1alpha1.Pipeline, 0, len(all))
	for _, p := range all {
		if p.Spec.Instance != inst.Name {
			continue
		}
		if p.Name == hcName {
			health = p
		}
		if p.DeletionTimestamp == nil {
			members = append(members, p)
		}
	}
	return members, health
}

// healthNeedsWrite reports whether the health-check pipeline must be
// created or updated.
func healthNeedsWrite(inst *v1alpha1.CoreInstance, health *v1alpha1.Pipeline) bool {
	if health == nil {
		return inst.Spec.HealthCheckEnabled()
	}
	return metav1.IsControlledBy(health, inst) && !healthUpToDate(health, inst)
}

// plan resolves every member's ports (memoised per uid and generation) and
// assigns the instance's frontends; taken are the ports no pipeline may get
// (see taken), to which the instance's health-check port is added.
//
// A pipeline whose new generation is invalid keeps claiming the frontends
// it has: its old workload and Service keep serving them, so no other
// pipeline may be given them. Its condition names the generation served.
func (r *CoreInstanceReconciler) plan(inst *v1alpha1.CoreInstance, members []*v1alpha1.Pipeline, taken pipeline.PortSet, now time.Time) ([]*portPlan, []pipeline.Assignment) {
	plans := make([]*portPlan, 0, len(members))
	var claims []pipeline.Claim
	instKey := inst.Namespace + "/" + inst.Name
	before := r.resolved.take(instKey)
	memo := make(map[string]resolvedPorts, len(members))
	defer r.resolved.put(instKey, memo)
	for _, p := range members {
		pl := &portPlan{p: p}
		plans = append(plans, pl)
		if isHealthCheck(p, inst) {
			continue
		}
		key := memoKey(p)
		rp, ok := before[key]
		if w := rp.written; ok && w != nil && rp.writtenGeneration == p.Generation {
			if statusSays(p, w) {
				// The cache shows the last write: no copy is kept, and a
				// later change by someone else is planned from the cache.
				rp.written = nil
			} else {
				// The cache has not caught up with the last write.
				p = withPortsStatus(p, w)
				pl.p = p
			}
		}
		if !ok || rp.generation != p.Generation {
			written, writtenGen := rp.written, rp.writtenGeneration
			rp = resolvedPorts{generation: p.Generation, written: written, writtenGeneration: writtenGen}
			rp.res, rp.err = pipeline.ResolvePorts(&p.Spec)
		}
		memo[key] = rp
		if rp.err != nil {
			pl.invalid = rp.err
			if kept := servedPorts(p.Status.Ports); len(kept) > 0 {
				pl.served = servedGeneration(p)
				claims = append(claims, pipeline.Claims(p.Name, pipeline.EntriesFromStatus(kept), kept, now)...)
			}
			continue
		}
		pl.warnings = rp.res.Warnings
		claims = append(claims, pipeline.Claims(p.Name, rp.res.Ports, p.Status.Ports, now)...)
	}
	reserved := pipeline.Reserved(&inst.Spec, taken)
	holdHostListeners(reserved, members)
	assigned, conflicts := pipeline.Assign(claims, reserved)
	groups := pipeline.Group(assigned, conflicts)
	for _, pl := range plans {
		p := pl.p
		var cond metav1.Condition
		switch {
		case isHealthCheck(p, inst):
			pl.want.Ports = []v1alpha1.PortStatus{healthPortStatus(inst, p, now)}
			cond = metav1.Condition{Type: v1alpha1.ConditionPortsAssigned, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonAssigned, Message: fmt.Sprintf("health-check port tcp/%d of instance %s", inst.Spec.HealthCheckPort(), inst.Name)}
		case pl.invalid != nil:
			msg := pl.invalid.Error()
			if res := groups[p.Name]; res != nil && len(res.Assigned) > 0 {
				pl.want.Ports = res.Ports
				msg = refusedMessage(p.Generation, pl.served, pipeline.Summary(res.Ports)) + msg
			}
			cond = metav1.Condition{Type: v1alpha1.ConditionPortsAssigned, Status: metav1.ConditionFalse,
				Reason: invalidReason(pl.invalid), Message: limit(msg)}
		default:
			pl.result = groups[p.Name]
			cond = pl.result.Condition()
			if pl.result != nil {
				pl.want.Ports = pl.result.Ports
			}
		}
		cond.ObservedGeneration = p.Generation
		// When nothing moved, keep the message that explained the
		// assignment when it was made ("held by pipeline a") rather than
		// the later "keeps frontend" wording: status stays put.
		// A refusal or a newer holder asking for a frontend is always told.
		if old := meta.FindStatusCondition(p.Status.Conditions, cond.Type); old != nil && pl.invalid == nil && !pl.result.Contested() &&
			old.Status == cond.Status && old.Reason == cond.Reason &&
			samePorts(p.Status.Ports, pl.want.Ports) {
			cond.Message = old.Message
		}
		pl.want.PortSummary = pipeline.Summary(pl.want.Ports)
		pl.want.Conditions = []metav1.Condition{withTransition(p.Status.Conditions, cond, now)}
	}
	return plans, assigned
}

// holdHostListeners adds the host listeners `tpctl pipeline create`
// recorded on members (see pipeline.HoldHostListeners).
func holdHostListeners(reserved pipeline.PortSet, members []*v1alpha1.Pipeline) {
	for _, p := range members {
		if v := p.Annotations[v1alpha1.AnnotationHostListeners]; v != "" {
			pipeline.HoldHostListeners(reserved, p.Name, p.CreationTimestamp.Time, v)
		}
	}
}

func memoKey(p *v1alpha1.Pipeline) string { return string(p.UID) + "/" + p.Name }

// statusSays reports whether p's status holds what st says.
func statusSays(p *v1alpha1.Pipeline, st *portsStatus) bool {
	return p.Status.PortSummary == st.PortSummary && sameCondition(p.Status.Conditions, st.Conditions[0]) &&
		samePorts(p.Status.Ports, st.Ports)
}

// withPortsStatus returns a copy of p (sharing everything but its status
// slices) whose ports status is st.
func withPortsStatus(p *v1alpha1.Pipeline, st *portsStatus) *v1alpha1.Pipeline {
	cp := *p
	cp.Status.Ports = st.Ports
	cp.Status.PortSummary = st.PortSummary
	conds := make([]metav1.Condition, 0, len(p.Status.Conditions)+1)
	for _, c := range p.Status.Conditions {
		if c.Type != v1alpha1.ConditionPortsAssigned {
			conds = append(conds, c)
		}
	}
	cp.Status.Conditions = append(conds, st.Conditions...)
	return &cp
}

// servedPorts are the ports of a status that hold a frontend.
func servedPorts(ports []v1alpha1.PortStatus) []v1alpha1.PortStatus {
	var out []v1alpha1.PortStatus
	for _, st := range ports {
		if st.Frontend != 0 {
			out = append(out, st)
		}
	}
	return out
}

// refusedRE reads the served generation back from a refusal message.
var refusedRE = regexp.MustCompile(`^generation \d+ is refused; generation (\d+) keeps its frontends`)

// refusedMessage starts the PortsAssigned message of an invalid generation
// whose predecessor's frontends stay claimed.
func refusedMessage(generation, served int64, summary string) string {
	if served == 0 {
		return fmt.Sprintf("generation %d is refused; the frontends it had stay claimed (%s): ", generation, summary)
	}
	return fmt.Sprintf("generation %d is refused; generation %d keeps its frontends (%s): ", generation, served, summary)
}

// servedGeneration is the last generation whose ports were assigned: the
// PortsAssigned condition's generation when it was True, else the one an
// earlier refusal named.
func servedGeneration(p *v1alpha1.Pipeline) int64 {
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	switch {
	case c == nil:
		return 0
	case c.Status == metav1.ConditionTrue || c.Reason == v1alpha1.ReasonPortsExhausted:
		return c.ObservedGeneration
	}
	if m := refusedRE.FindStringSubmatch(c.Message); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	return 0
}

func healthPortStatus(inst *v1alpha1.CoreInstance, p *v1alpha1.Pipeline, now time.Time) v1alpha1.PortStatus {
	return pipeline.HealthCheckPortStatus(&inst.Spec, p.Status.Ports, now)
}

// invalidReason tells a configuration problem from a ports problem.
func invalidReason(err error) string {
	var ve *pipeline.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			if p.Field == "config" || strings.HasPrefix(p.Field, "config.") {
				return v1alpha1.ReasonInvalidConfig
			}
		}
	}
	return v1alpha1.ReasonInvalidPorts
}

// unchanged reports whether p's status already says what pl.want says.
func unchanged(pl *portPlan) bool {
	st := &pl.p.Status
	return samePorts(st.Ports, pl.want.Ports) &&
		st.PortSummary == pl.want.PortSummary &&
		sameCondition(st.Conditions, pl.want.Conditions[0])
}

// samePorts compares port statuses as the API server keeps them: Since to
// the second. It runs for every pipeline of an instance on every
// reconcile, so it compares fields rather than reflecting.
func samePorts(a, b []v1alpha1.PortStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Since.Unix() != y.Since.Unix() {
			return false
		}
		x.Since, y.Since = metav1.Time{}, metav1.Time{}
		if x != y {
			return false
		}
	}
	return true
}

// writePipelines writes the changed statuses with at most Workers writes at
// a time, and records the events that explain them. Only when no status
// needed writing does it add the missing owner references: port
// assignments land first, however many pipelines arrive at once (an owner
// reference only matters when the instance is deleted). It reports whether
// owner references are missing and were left for a later reconcile.
func (r *CoreInstanceReconciler) writePipelines(ctx context.Context, inst *v1alpha1.CoreInstance, plans []*portPlan) (ownersDeferred bool, _ []error) {
	workers := r.Workers
	if workers <= 0 {
		workers = 16
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	parallel := func(plans []*portPlan, do func(pl *portPlan)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, workers)
		for _, pl := range plans {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				do(pl)
			}()
		}
		wg.Wait()
	}
	var changed, needOwner []*portPlan
	for _, pl := range plans {
		switch {
		case !unchanged(pl):
			changed = append(changed, pl)
		case !isHealthCheck(pl.p, inst) && !hasOwner(pl.p, inst):
			needOwner = append(needOwner, pl)
		}
	}
	if len(changed) > 0 {
		defer r.work.begin()()
		// The events are decided in plan order (by name), before the
		// writes that run in parallel.
		budget := &eventBudget{left: MaxAssignmentEvents}
		events := make(map[*portPlan][]portEvent, len(changed))
		for _, pl := range changed {
			if evs := explain(pl); budget.take(evs) {
				events[pl] = evs
			}
		}
		parallel(changed, func(pl *portPlan) {
			if err := applyStatus(ctx, r.Client, v1alpha1.KindPipeline, client.ObjectKeyFromObject(pl.p), &pl.want, FieldManagerPorts); err != nil {
				fail(err)
				return
			}
			if !isHealthCheck(pl.p, inst) {
				r.resolved.recordWrite(inst.Namespace+"/"+inst.Name, memoKey(pl.p), pl.p.Generation, &pl.want)
			}
			for _, e := range events[pl] {
				r.event(pl.p, nil, e.typ, e.reason, "AssignPorts", "%s", e.note)
			}
		})
		if typ, note := budget.summary(); note != "" {
			r.event(inst, nil, typ, ReasonAssignmentEventsSummarised, "AssignPorts", "%s", note)
		}
		return len(needOwner) > 0 || ownersMissing(changed, inst), errs
	}
	parallel(needOwner, func(pl *portPlan) {
		if err := r.addOwner(ctx, inst, client.ObjectKeyFromObject(pl.p)); err != nil {
			fail(err)
		}
	})
	return false, errs
}

// ownersMissing reports whether any of plans lacks the instance as owner.
func ownersMissing(plans []*portPlan, inst *v1alpha1.CoreInstance) bool {
	for _, pl := range plans {
		if !isHealthCheck(pl.p, inst) && !hasOwner(pl.p, inst) {
			return true
		}
	}
	return false
}

// addOwner makes inst an owner of the pipeline, so deleting the instance
// deletes it. Owner references are a list keyed by uid, so this apply adds
// one entry and leaves the others alone.
func (r *CoreInstanceReconciler) addOwner(ctx context.Context, inst *v1alpha1.CoreInstance, key client.ObjectKey) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.KindPipeline,
		"metadata": map[string]any{
			"name": key.Name, "namespace": key.Namespace,
			"ownerReferences": []any{instanceOwnerRef(inst, false)},
		},
	}}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("add instance %s as owner of pipeline %s: %w", inst.Name, key, err)
	}
	return nil
}

// portEvent is one event explain would record on a pipeline.
type portEvent struct {
	typ, reason, note string
}

// explain returns an event for every frontend that was moved or given
// elsewhere than its backend in this write, and for every port without
// one. A frontend equal to its backend, the routine case, gets none: the
// pipeline's status shows it, and an event per port of thousands of new
// pipelines would cost the API server a write and the operator's event
// recorder a cached copy (kept for minutes) each.
func explain(pl *portPlan) []portEvent {
	p := pl.p
	if pl.invalid != nil {
		return []portEvent{{"Warning", invalidReason(pl.invalid), limit(pl.invalid.Error())}}
	}
	var out []portEvent
	for _, w := range pl.warnings {
		out = append(out, portEvent{"Warning", "PortDetection", w})
	}
	if pl.result == nil {
		return out
	}
	before := map[pipeline.Port]int32{}
	for _, st := range p.Status.Ports {
		before[pipeline.Port{Protocol: st.Protocol, Number: st.Backend}] = st.Frontend
	}
	for _, a := range pl.result.Assigned {
		prev, had := before[a.Port()]
		switch {
		case had && prev != 0 && prev != a.Frontend:
			out = append(out, portEvent{"Normal", "FrontendMoved",
				fmt.Sprintf("frontend %s → %d (was %d): %s", a.Port(), a.Frontend, prev, a.Message())})
		case (!had || prev == 0) && a.Reassigned():
			out = append(out, portEvent{"Normal", "FrontendReassigned",
				fmt.Sprintf("frontend %s → %d: %s", a.Port(), a.Frontend, a.Message())})
		}
	}
	for _, c := range pl.result.Conflicts {
		out = append(out, portEvent{"Warning", string(c.Reason), c.Error()})
	}
	return out
}

// MaxAssignmentEvents bounds the pipeline events of one instance
// reconcile. When thousands of pipelines ask for one port at once, all but
// one get another frontend; an event each would mean thousands of event
// writes competing with the status writes, and as many copies held by the
// event recorder for minutes (it drops what it cannot queue anyway). The
// first MaxAssignmentEvents are recorded on their pipelines, the rest are
// counted in one ReasonAssignmentEventsSummarised event on the instance:
// every pipeline's PortsAssigned condition says the same.
const MaxAssignmentEvents = 20

// ReasonAssignmentEventsSummarised is the reason of the instance event that
// counts the port events not recorded one by one.
const ReasonAssignmentEventsSummarised = "PortEventsSummarised"

// eventBudget hands out the events of one reconcile: the first
// MaxAssignmentEvents are recorded, the rest counted by reason.
type eventBudget struct {
	mu        sync.Mutex
	left      int
	pipelines int
	events    int
	warning   bool
	byReason  map[string]int
}

// take reports whether the events of one pipeline are recorded one by one;
// when not, they are counted.
func (b *eventBudget) take(evs []portEvent) bool {
	if len(evs) == 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left >= len(evs) {
		b.left -= len(evs)
		return true
	}
	b.left = 0
	b.pipelines++
	for _, e := range evs {
		b.events++
		b.warning = b.warning || e.typ == "Warning"
		if b.byReason == nil {
			b.byReason = map[string]int{}
		}
		b.byReason[e.reason]++
	}
	return false
}

// summary is the note of the instance event for the counted events, empty
// when there are none.
func (b *eventBudget) summary() (typ, note string) {
	if b.events == 0 {
		return "", ""
	}
	reasons := make([]string, 0, len(b.byReason))
	for r := range b.byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s ×%d", r, b.byReason[r])
	}
	typ = "Normal"
	if b.warning {
		typ = "Warning"
	}
	return typ, fmt.Sprintf("%d more port event(s) of %d pipeline(s): %s; each pipeline's PortsAssigned condition says why",
		b.events, b.pipelines, strings.Join(parts, ", "))
}

// instanceStatus is the CoreInstance status the reconciler writes.
type instanceStatus struct {
	ObservedGeneration int64                   `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition      `json:"conditions,omitempty"`
	PipelineCount      int32                   `json:"pipelineCount"`
	FrontendPorts      []v1alpha1.FrontendPort `json:"frontendPorts,omitempty"`
}

func (r *CoreInstanceReconciler) writeInstance(ctx context.Context, inst *v1alpha1.CoreInstance, plans []*portPlan,
	assigned []pipeline.Assignment, healthPending bool, now time.Time) error {
	want, cond := wantInstanceStatus(inst, plans, assigned, healthPending, now)
	st := &inst.Status
	if st.ObservedGeneration == want.ObservedGeneration && st.PipelineCount == want.PipelineCount &&
		equality.Semantic.DeepEqual(st.FrontendPorts, want.FrontendPorts) && sameCondition(st.Conditions, cond) {
		return nil
	}
	if old := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); old == nil || old.Status != cond.Status {
		r.event(inst, nil, "Normal", "Ready"+string(cond.Status), "Reconcile", "%s", cond.Message)
	}
	return applyStatus(ctx, r.Client, v1alpha1.KindCoreInstance, client.ObjectKeyFromObject(inst), &want, FieldManager)
}

// wantInstanceStatus is the instance status a plan leads to, and its Ready
// condition.
func wantInstanceStatus(inst *v1alpha1.CoreInstance, plans []*portPlan, assigned []pipeline.Assignment,
	healthPending bool, now time.Time) (instanceStatus, metav1.Condition) {
	fronts := pipeline.FrontendPorts(assigned)
	var notReady []string
	for _, pl := range plans {
		if isHealthCheck(pl.p, inst) {
			port := inst.Spec.HealthCheckPort()
			fronts = append(fronts, v1alpha1.FrontendPort{Protocol: v1alpha1.ProtocolTCP, Port: port, Pipeline: pl.p.Name, Backend: port})
		}
		if !meta.IsStatusConditionTrue(pl.p.Status.Conditions, v1alpha1.ConditionReady) {
			notReady = append(notReady, pl.p.Name)
		}
	}
	count := len(plans)
	if healthPending {
		notReady = append(notReady, HealthCheckPipelineName(inst.Name))
		count++
	}
	sort.Slice(fronts, func(i, j int) bool {
		if fronts[i].Protocol != fronts[j].Protocol {
			return fronts[i].Protocol < fronts[j].Protocol
		}
		return fronts[i].Port < fronts[j].Port
	})
	sort.Strings(notReady)
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: inst.Generation}
	if len(notReady) == 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonAvailable
		cond.Message = fmt.Sprintf("%d pipeline(s) ready", count)
	} else {
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonProgressing
		cond.Message = limit(fmt.Sprintf("%d of %d pipeline(s) not ready: %s", len(notReady), count, listSome(notReady, 10)))
	}
	// The status stays small however many pipelines there are: past a
	// limit it lists the lowest frontends and says how many there are.
	if n := len(fronts); n > MaxFrontendPortsListed {
		fronts = fronts[:MaxFrontendPortsListed]
		cond.Message += fmt.Sprintf("; %d frontend port(s) in use, the lowest %d listed in frontendPorts (each pipeline's status has its own)",
			n, MaxFrontendPortsListed)
	}
	want := instanceStatus{ObservedGeneration: inst.Generation, PipelineCount: int32(count), FrontendPorts: fronts,
		Conditions: []metav1.Condition{withTransition(inst.Status.Conditions, cond, now)}}
	return want, cond
}

// MaxFrontendPortsListed bounds the instance's status.frontendPorts.
const MaxFrontendPortsListed = 256

// listSome joins the first n names and counts the rest.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}
