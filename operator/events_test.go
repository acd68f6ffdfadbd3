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

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// eventLog records the reasons of the events a reconciler emits.
type eventLog struct {
	mu      sync.Mutex
	reasons []string
	// regarding and notes are the objects and notes of the events, in order.
	regarding []runtime.Object
	notes     []string
}

func (l *eventLog) Eventf(obj, _ runtime.Object, _, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reasons = append(l.reasons, reason)
	l.regarding = append(l.regarding, obj)
	l.notes = append(l.notes, fmt.Sprintf(note, args...))
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reasons
	l.reasons = nil
	return out
}

// TestNoRoutineAssignmentEvents: a frontend equal to its backend gets no
// event (thousands of new pipelines would make thousands of them); a
// frontend given elsewhere does.
func TestNoRoutineAssignmentEvents(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _, _ := applyRecorder(t)
	log := &eventLog{}
	r := &CoreInstanceReconciler{Client: c, Reserved: pipeline.NewPortSet(), Recorder: log}
	var members []*v1alpha1.Pipeline
	for i := range 3 {
		members = append(members, member(fmt.Sprintf("p%02d", i), t0.Add(time.Duration(i)*time.Second), tcp(6000)))
	}
	plans, _ := r.plan(testInstance(), members, r.Reserved, t0)
	_, errs := r.writePipelines(context.Background(), testInstance(), plans)
	require.Empty(t, errs)
	assert.Equal(t, []string{"FrontendReassigned", "FrontendReassigned"}, log.take(),
		"the first pipeline gets its backend as frontend (no event), the two others another one")
}

// TestAssignmentEventsBoundedPerReconcile: thousands of pipelines asking
// for one port make one event each for the first MaxAssignmentEvents and
// one summary on the instance for the rest, which counts them by reason;
// every pipeline's status is written all the same.
func TestAssignmentEventsBoundedPerReconcile(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _, calls := applyRecorder(t)
	log := &eventLog{}
	r := &CoreInstanceReconciler{Client: c, Reserved: pipeline.NewPortSet(), Recorder: log}
	const n = 3 * MaxAssignmentEvents
	var members []*v1alpha1.Pipeline
	for i := range n {
		members = append(members, member(fmt.Sprintf("p%03d", i), t0.Add(time.Duration(i)*time.Second), tcp(6000)))
	}
	inst := testInstance()
	plans, _ := r.plan(inst, members, r.Reserved, t0)
	_, errs := r.writePipelines(context.Background(), inst, plans)
	require.Empty(t, errs)
	assert.Equal(t, n, calls["status"], "every pipeline's ports are written")
	reasons := log.take()
	require.Len(t, reasons, MaxAssignmentEvents+1)
	for i, reason := range reasons[:MaxAssignmentEvents] {
		assert.Equal(t, "FrontendReassigned", reason)
		assert.IsType(t, &v1alpha1.Pipeline{}, log.regarding[i])
	}
	assert.Equal(t, ReasonAssignmentEventsSummarised, reasons[MaxAssignmentEvents])
	assert.Same(t, inst, log.regarding[MaxAssignmentEvents], "the summary is the instance's")
	assert.Contains(t, log.notes[MaxAssignmentEvents],
		fmt.Sprintf("%d more port event(s) of %d pipeline(s): FrontendReassigned ×%d", n-1-MaxAssignmentEvents, n-1-MaxAssignmentEvents, n-1-MaxAssignmentEvents))

	// A later reconcile with a few changes tells each of them again.
	var few []*v1alpha1.Pipeline
	for i := range 3 {
		few = append(few, member(fmt.Sprintf("q%d", i), t0.Add(time.Duration(i)*time.Second), tcp(7000)))
	}
	plans, _ = r.plan(inst, few, r.Reserved, t0)
	_, errs = r.writePipelines(context.Background(), inst, plans)
	require.Empty(t, errs)
	assert.Equal(t, []string{"FrontendReassigned", "FrontendReassigned"}, log.take())
}

// TestNoEventForTheFirstProgressingStatus: a new pipeline's first Ready
// status (Progressing) makes no event; later changes of Ready do.
func TestNoEventForTheFirstProgressingStatus(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _, calls := applyRecorder(t)
	log := &eventLog{}
	r := &PipelineReconciler{Client: c, Recorder: log, Now: func() time.Time { return t0 }}
	p := member("p", t0, tcp(6000))
	progressing := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonProgressing, Message: "0/1 pod(s) ready"}
	require.NoError(t, r.writeStatus(context.Background(), p, progressing, 0, v1alpha1.ServiceTypeLoadBalancer))
	assert.Empty(t, log.take(), "the first status of a new pipeline is routine")
	assert.Equal(t, 1, calls["status"], "the status is written all the same")

	p.Status.Conditions = []metav1.Condition{progressing}
	p.Status.ObservedGeneration, p.Status.ServiceType = p.Generation, v1alpha1.ServiceTypeLoadBalancer
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Available", Message: "1/1"}
	require.NoError(t, r.writeStatus(context.Background(), p, ready, 1, v1alpha1.ServiceTypeLoadBalancer))
	assert.Equal(t, []string{"Available"}, log.take(), "becoming ready is told")

	// A new pipeline's pods not ready yet after its workload was created
	// is routine too; becoming ready or a cause read from the pods is told.
	n := member("n", t0, tcp(6000))
	n.Status.Conditions = []metav1.Condition{ReadyCondition(v1alpha1.WorkloadDeployment, 0, 0, false, false)}
	n.Status.Conditions[0].ObservedGeneration = n.Generation
	starting := ReadyCondition(v1alpha1.WorkloadDeployment, 0, 1, true, true)
	require.Equal(t, v1alpha1.ReasonUnavailable, starting.Reason)
	require.NoError(t, r.writeStatus(context.Background(), n, starting, 0, v1alpha1.ServiceTypeLoadBalancer))
	assert.Empty(t, log.take(), "pods of a new workload not ready yet")
	crash := n.DeepCopy()
	crashing := starting
	crashing.Reason = "CrashLoopBackOff"
	require.NoError(t, r.writeStatus(context.Background(), crash, crashing, 0, v1alpha1.ServiceTypeLoadBalancer))
	assert.Equal(t, []string{"CrashLoopBackOff"}, log.take(), "a cause read from the pods is told")
	// After a rollout that had ready pods, none ready is told.
	rolling := n.DeepCopy()
	rolling.Status.Conditions = []metav1.Condition{ReadyCondition(v1alpha1.WorkloadDeployment, 1, 2, false, true)}
	require.Equal(t, v1alpha1.ReasonProgressing, rolling.Status.Conditions[0].Reason)
	require.NoError(t, r.writeStatus(context.Background(), rolling, starting, 0, v1alpha1.ServiceTypeLoadBalancer))
	assert.Equal(t, []string{v1alpha1.ReasonUnavailable}, log.take())

	q := member("q", t0, tcp(6000))
	failed := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "ConfigInvalid", Message: "bad"}
	require.NoError(t, r.writeStatus(context.Background(), q, failed, 0, v1alpha1.ServiceTypeLoadBalancer))
	assert.Equal(t, []string{"ConfigInvalid"}, log.take(), "a first status that is not Progressing is told")
}

// TestNoEventForACreatedService: creating a pipeline's Service is routine
// and makes no event.
func TestNoEventForACreatedService(t *testing.T) {
	c, _, calls := applyRecorder(t)
	log := &eventLog{}
	r := &PipelineReconciler{Client: c, Recorder: log}
	p := testPipeline(v1alpha1.WorkloadDeployment, v1alpha1.ServiceTypeLoadBalancer)
	objs := &Objects{Pipeline: p, Instance: testInstance(), NodePortRange: DefaultNodePortRange}
	require.NotNil(t, objs.Service())
	require.NoError(t, r.applyService(context.Background(), p, objs, nil))
	assert.Equal(t, 1, calls["owner"], "the Service is applied")
	assert.Empty(t, log.take())
}
