package operator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func indexPipeline(name, instance string) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Generation: 1},
		Spec: v1alpha1.PipelineSpec{Instance: instance}}
}

func names(ps []*v1alpha1.Pipeline) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestMemberIndex(t *testing.T) {
	var x memberIndex
	core := types.NamespacedName{Namespace: "ns", Name: "core"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	b, a := indexPipeline("b", "core"), indexPipeline("a", "core")
	x.set(b)
	x.set(a)
	x.set(indexPipeline("c", "other"))
	assert.Equal(t, []string{"a", "b"}, names(x.of(core)), "sorted by name")
	assert.Same(t, a, x.of(core)[0], "the cache's object, not a copy")

	// A newer object replaces the older; a pipeline that moves to another
	// instance leaves the first.
	a2 := indexPipeline("a", "core")
	x.set(a2)
	assert.Same(t, a2, x.of(core)[0])
	x.set(indexPipeline("b", "other"))
	assert.Equal(t, []string{"a"}, names(x.of(core)))
	assert.Equal(t, []string{"b", "c"}, names(x.of(other)))

	x.remove(types.NamespacedName{Namespace: "ns", Name: "a"})
	assert.Empty(t, x.of(core))
	assert.NotContains(t, x.byInstance, core, "an instance without pipelines is dropped")
	x.remove(types.NamespacedName{Namespace: "ns", Name: "missing"})
}

// The instance reconciler is queued at once for what it acts on, not for
// its own writes, and a change of Ready alone waits readyDelay so that
// many of them make one reconcile.
func TestMemberHandlerQueues(t *testing.T) {
	ctx := context.Background()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	h := &memberHandler{index: &memberIndex{}, readyDelay: 100 * time.Millisecond}
	core := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "core"}}
	drain := func() []reconcile.Request {
		var out []reconcile.Request
		for q.Len() > 0 {
			r, _ := q.Get()
			q.Done(r)
			q.Forget(r)
			out = append(out, r)
		}
		return out
	}

	p := indexPipeline("a", "core")
	h.Create(ctx, event.CreateEvent{Object: p}, q)
	assert.Equal(t, []reconcile.Request{core}, drain(), "creation")
	assert.Len(t, h.index.of(core.NamespacedName), 1)

	// The reconciler's own writes: ports assigned, then the owner added.
	withPorts := p.DeepCopy()
	withPorts.Status.Ports = []v1alpha1.PortStatus{{Protocol: v1alpha1.ProtocolTCP, Backend: 80, Frontend: 80}}
	h.Update(ctx, event.UpdateEvent{ObjectOld: p, ObjectNew: withPorts}, q)
	withOwner := withPorts.DeepCopy()
	withOwner.OwnerReferences = []metav1.OwnerReference{{Kind: v1alpha1.KindCoreInstance, Name: "core", UID: "u"}}
	h.Update(ctx, event.UpdateEvent{ObjectOld: withPorts, ObjectNew: withOwner}, q)
	assert.Empty(t, drain(), "its own writes do not queue the instance")
	assert.Same(t, withOwner, h.index.of(core.NamespacedName)[0], "but the index has the newest object")

	// Lost ports or owner, and spec changes, queue at once.
	h.Update(ctx, event.UpdateEvent{ObjectOld: withOwner, ObjectNew: withPorts}, q)
	assert.Equal(t, []reconcile.Request{core}, drain(), "lost owner reference")
	h.Update(ctx, event.UpdateEvent{ObjectOld: withPorts, ObjectNew: p}, q)
	assert.Equal(t, []reconcile.Request{core}, drain(), "lost ports")
	moved := p.DeepCopy()
	moved.Generation, moved.Spec.Instance = 2, "other"
	h.Update(ctx, event.UpdateEvent{ObjectOld: p, ObjectNew: moved}, q)
	assert.ElementsMatch(t, []reconcile.Request{core, {NamespacedName: types.NamespacedName{Namespace: "ns", Name: "other"}}}, drain(),
		"both instances of a pipeline that moved")

	// Ready changes wait, and several make one request.
	ready := func(in *v1alpha1.Pipeline, s metav1.ConditionStatus) *v1alpha1.Pipeline {
		out := in.DeepCopy()
		out.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: s}}
		return out
	}
	b := indexPipeline("b", "core")
	c := indexPipeline("c", "core")
	h.Update(ctx, event.UpdateEvent{ObjectOld: b, ObjectNew: ready(b, metav1.ConditionTrue)}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: c, ObjectNew: ready(c, metav1.ConditionFalse)}, q)
	assert.Empty(t, drain(), "a change of Ready waits")
	require.Eventually(t, func() bool { return q.Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []reconcile.Request{core}, drain(), "two changes of Ready, one request")

	h.Delete(ctx, event.DeleteEvent{Object: b}, q)
	assert.Equal(t, []reconcile.Request{core}, drain(), "deletion")
}
