package operator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

func TestSamePorts(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := []v1alpha1.PortStatus{{Protocol: v1alpha1.ProtocolTCP, Frontend: 6001, Backend: 6000, Name: "n",
		Reassigned: true, Since: metav1.NewTime(at), Source: "ports[0]"}}
	stored := []v1alpha1.PortStatus{a[0]}
	stored[0].Since = metav1.NewTime(at.Add(400 * time.Millisecond).In(time.FixedZone("x", 3600)))
	assert.True(t, samePorts(a, stored), "the API server keeps Since to the second, in any zone")
	assert.True(t, samePorts(nil, []v1alpha1.PortStatus{}), "nil and empty")
	for name, change := range map[string]func(*v1alpha1.PortStatus){
		"frontend":   func(p *v1alpha1.PortStatus) { p.Frontend++ },
		"backend":    func(p *v1alpha1.PortStatus) { p.Backend++ },
		"protocol":   func(p *v1alpha1.PortStatus) { p.Protocol = v1alpha1.ProtocolUDP },
		"name":       func(p *v1alpha1.PortStatus) { p.Name = "m" },
		"reassigned": func(p *v1alpha1.PortStatus) { p.Reassigned = false },
		"source":     func(p *v1alpha1.PortStatus) { p.Source = "x" },
		"since":      func(p *v1alpha1.PortStatus) { p.Since = metav1.NewTime(at.Add(time.Second)) },
	} {
		b := []v1alpha1.PortStatus{a[0]}
		change(&b[0])
		assert.False(t, samePorts(a, b), name)
	}
	assert.False(t, samePorts(a, append(a, a[0])), "length")
}

// applyRecorder counts the status applies and the object applies (owner
// references) a reconciler makes, accepting all of them.
func applyRecorder(t *testing.T) (client.Client, *sync.Mutex, map[string]int) {
	t.Helper()
	scheme, err := NewScheme()
	require.NoError(t, err)
	var mu sync.Mutex
	calls := map[string]int{}
	c := interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).Build(), interceptor.Funcs{
		Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
			mu.Lock()
			defer mu.Unlock()
			calls["owner"]++
			return nil
		},
		SubResourceApply: func(context.Context, client.Client, string, runtime.ApplyConfiguration, ...client.SubResourceApplyOption) error {
			mu.Lock()
			defer mu.Unlock()
			calls["status"]++
			return nil
		},
	})
	return c, &mu, calls
}

// TestOwnerReferencesWaitForPortStatuses: a reconcile that writes port
// statuses adds no owner reference (assignments of a burst of new
// pipelines are not held up behind them) and asks to run again; the next
// one, with nothing to assign, adds them all.
func TestOwnerReferencesWaitForPortStatuses(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c, mu, calls := applyRecorder(t)
	r := &CoreInstanceReconciler{Client: c, Reserved: pipeline.NewPortSet()}
	inst := testInstance()
	var members []*v1alpha1.Pipeline
	for i := range 40 {
		members = append(members, member(fmt.Sprintf("p%02d", i), t0, tcp(6000)))
	}
	plans, _ := r.plan(inst, members, r.Reserved, t0)
	deferred, errs := r.writePipelines(context.Background(), inst, plans)
	require.Empty(t, errs)
	mu.Lock()
	assert.Equal(t, map[string]int{"status": 40}, calls, "port statuses only")
	mu.Unlock()
	assert.True(t, deferred, "owner references are due")

	feedBack(plans)
	plans, _ = r.plan(inst, members, r.Reserved, t0)
	deferred, errs = r.writePipelines(context.Background(), inst, plans)
	require.Empty(t, errs)
	mu.Lock()
	assert.Equal(t, map[string]int{"status": 40, "owner": 40}, calls, "then owner references, no status")
	mu.Unlock()
	assert.False(t, deferred)
}

// TestIdleReturnerFreesOnceAfterABurst: memory is returned once when a
// burst of reconciles is over, never while they run nor again at rest.
func TestIdleReturnerFreesOnceAfterABurst(t *testing.T) {
	frees := 0
	i := newIdleReturner(time.Hour, func() { frees++ })
	r := i.wrap(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		return reconcile.Result{}, nil
	}))
	reconcileOnce := func() {
		_, err := r.Reconcile(context.Background(), reconcile.Request{})
		require.NoError(t, err)
	}
	i.step()
	i.step()
	assert.Zero(t, frees, "nothing happened: nothing to return")
	for range 3 { // a burst over several periods
		reconcileOnce()
		reconcileOnce()
		i.step()
	}
	assert.Zero(t, frees, "not while reconciles run")
	i.step()
	assert.Equal(t, 1, frees, "a quiet period after the burst")
	i.step()
	i.step()
	assert.Equal(t, 1, frees, "once per burst")
	reconcileOnce()
	i.step()
	i.step()
	assert.Equal(t, 2, frees, "and once after the next")
}

func TestIdleReturnerStops(t *testing.T) {
	i := newIdleReturner(time.Millisecond, func() {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- i.Start(ctx) }()
	cancel()
	require.NoError(t, <-done)
}

// TestIdleReturnerFreesAtStart: what start-up touched is returned when the
// operator starts, before any burst (whose peak it would otherwise add to).
func TestIdleReturnerFreesAtStart(t *testing.T) {
	freed := make(chan struct{}, 1)
	i := newIdleReturner(time.Hour, func() { freed <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- i.Start(ctx) }()
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not free at once")
	}
	cancel()
	require.NoError(t, <-done)
}

func TestPprofAddressMustBeLoopback(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		assert.NoError(t, checkLoopback(ok), ok)
	}
	for _, bad := range []string{":6060", "0.0.0.0:6060", "10.0.0.1:6060", "example.com:6060", "127.0.0.1"} {
		assert.Error(t, checkLoopback(bad), bad)
	}
}

// TestPipelineReconcilerReadsInstanceSpecOnly: a pipeline reconcile takes
// the instance's metadata and spec, copied (changing them changes nothing
// in the client's object), and leaves its status behind.
func TestPipelineReconcilerReadsInstanceSpecOnly(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	stored := testInstance()
	stored.Status.FrontendPorts = []v1alpha1.FrontendPort{{Protocol: v1alpha1.ProtocolTCP, Port: 6000, Pipeline: "p", Backend: 6000}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(stored.DeepCopy()).Build()
	r := &PipelineReconciler{Client: c}
	got, err := r.instance(context.Background(), client.ObjectKeyFromObject(stored))
	require.NoError(t, err)
	assert.Equal(t, stored.Spec, got.Spec)
	assert.Equal(t, stored.Name, got.Name)
	assert.Equal(t, stored.UID, got.UID)
	assert.Empty(t, got.Status.FrontendPorts, "the status is not copied")
	got.Spec.NoProxy = "changed"
	again, err := r.instance(context.Background(), client.ObjectKeyFromObject(stored))
	require.NoError(t, err)
	assert.Equal(t, stored.Spec.NoProxy, again.Spec.NoProxy)
}
