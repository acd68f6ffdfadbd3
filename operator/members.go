package operator

import (
	"context"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// memberIndex is the CoreInstance reconciler's view of the pipelines of
// each instance: the cache's own objects (never copied, never modified),
// kept up to date by the handler of its pipeline watch (see memberHandler)
// before that handler queues the instance. A plan reads the members of one
// instance without listing: a list from the cache copies every pipeline
// into a new slice, megabytes per reconcile with thousands of pipelines.
// The zero value is ready to use.
type memberIndex struct {
	mu sync.RWMutex
	// byInstance maps an instance to its pipelines by name.
	byInstance map[types.NamespacedName]map[string]*v1alpha1.Pipeline
	// instanceOf is the instance each indexed pipeline is filed under.
	instanceOf map[types.NamespacedName]types.NamespacedName
}

func instanceKeyOf(p *v1alpha1.Pipeline) types.NamespacedName {
	return types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.Instance}
}

// set files p (the cache's object) under its instance.
func (x *memberIndex) set(p *v1alpha1.Pipeline) {
	key := client.ObjectKeyFromObject(p)
	inst := instanceKeyOf(p)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byInstance == nil {
		x.byInstance = map[types.NamespacedName]map[string]*v1alpha1.Pipeline{}
		x.instanceOf = map[types.NamespacedName]types.NamespacedName{}
	}
	if old, ok := x.instanceOf[key]; ok && old != inst {
		x.dropLocked(old, key.Name)
	}
	m := x.byInstance[inst]
	if m == nil {
		m = map[string]*v1alpha1.Pipeline{}
		x.byInstance[inst] = m
	}
	m[key.Name] = p
	x.instanceOf[key] = inst
}

// remove forgets the pipeline key.
func (x *memberIndex) remove(key types.NamespacedName) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if inst, ok := x.instanceOf[key]; ok {
		x.dropLocked(inst, key.Name)
		delete(x.instanceOf, key)
	}
}

func (x *memberIndex) dropLocked(inst types.NamespacedName, name string) {
	m := x.byInstance[inst]
	delete(m, name)
	if len(m) == 0 {
		delete(x.byInstance, inst)
	}
}

// of returns the pipelines of inst, deleted or not, sorted by name. They
// are the cache's objects: read-only.
func (x *memberIndex) of(inst types.NamespacedName) []*v1alpha1.Pipeline {
	x.mu.RLock()
	m := x.byInstance[inst]
	out := make([]*v1alpha1.Pipeline, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	x.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DefaultReadyDelay is how long a pipeline's change of Ready waits before
// its instance is reconciled for it: the instance's Ready condition sums up
// its pipelines, and when thousands of pipelines become ready one after the
// other, one reconcile per DefaultReadyDelay sums up all of them instead of
// one reconcile (a plan of every pipeline) per change.
const DefaultReadyDelay = time.Second

// memberHandler is the CoreInstance controller's handler of pipeline
// events. It files every pipeline in index (whatever changed) and then
// queues the pipeline's instance when the instance reconciler has to act:
// at once for a creation, a deletion, a spec change, a lost port status or
// a lost owner reference (see pipelineMembershipChanged); after readyDelay
// for a change of Ready alone.
type memberHandler struct {
	index      *memberIndex
	readyDelay time.Duration
}

type requestQueue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func instanceRequest(p *v1alpha1.Pipeline) (reconcile.Request, bool) {
	if p.Spec.Instance == "" {
		return reconcile.Request{}, false
	}
	return reconcile.Request{NamespacedName: instanceKeyOf(p)}, true
}

func (h *memberHandler) Create(_ context.Context, e event.CreateEvent, q requestQueue) {
	if p, ok := e.Object.(*v1alpha1.Pipeline); ok {
		h.index.set(p)
		h.add(q, p, 0)
	}
}

func (h *memberHandler) Update(_ context.Context, e event.UpdateEvent, q requestQueue) {
	o, okOld := e.ObjectOld.(*v1alpha1.Pipeline)
	n, okNew := e.ObjectNew.(*v1alpha1.Pipeline)
	if !okOld || !okNew {
		return
	}
	h.index.set(n)
	switch {
	case membershipChanged(o, n):
		h.add(q, o, 0)
		h.add(q, n, 0)
	case readyStatus(o) != readyStatus(n):
		h.add(q, n, h.readyDelay)
	}
}

func (h *memberHandler) Delete(_ context.Context, e event.DeleteEvent, q requestQueue) {
	if p, ok := e.Object.(*v1alpha1.Pipeline); ok {
		h.index.remove(client.ObjectKeyFromObject(p))
		h.add(q, p, 0)
	}
}

func (h *memberHandler) Generic(_ context.Context, e event.GenericEvent, q requestQueue) {
	if p, ok := e.Object.(*v1alpha1.Pipeline); ok {
		h.add(q, p, 0)
	}
}

func (h *memberHandler) add(q requestQueue, p *v1alpha1.Pipeline, after time.Duration) {
	req, ok := instanceRequest(p)
	switch {
	case !ok:
	case after > 0:
		q.AddAfter(req, after)
	default:
		q.Add(req)
	}
}

// membershipChanged reports a pipeline change the instance reconciler acts
// on at once: a spec change, the start of its deletion, a lost port status
// (someone removed ports this reconciler wrote) or a lost owner reference.
// Its own writes (ports assigned, the instance added as owner) are not
// among them: the reconcile that wrote them already planned with them.
func membershipChanged(o, n *v1alpha1.Pipeline) bool {
	return o.Generation != n.Generation ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
		len(n.Status.Ports) < len(o.Status.Ports) ||
		len(n.OwnerReferences) < len(o.OwnerReferences)
}
