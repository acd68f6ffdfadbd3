package manage

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func withCondition(p *v1alpha1.Pipeline, typ string, status metav1.ConditionStatus, reason string, gen int64) *v1alpha1.Pipeline {
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason,
		Message: reason + " message", ObservedGeneration: gen})
	return p
}

func TestCheckWait(t *testing.T) {
	fresh := func() *v1alpha1.Pipeline {
		p := assigned("a", "", false, tcp(1))
		p.Status.Conditions = nil
		p.Generation = 2
		return p
	}
	for _, tc := range []struct {
		name    string
		p       *v1alpha1.Pipeline
		cond    WaitCondition
		done    bool
		errPart string
	}{
		{"nothing reported", fresh(), WaitPorts, false, ""},
		{"older generation", withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionTrue, v1alpha1.ReasonAssigned, 1), WaitPorts, false, ""},
		{"ports assigned", withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionTrue, v1alpha1.ReasonReassigned, 2), WaitPorts, true, ""},
		{"ports assigned is not ready", withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionTrue, v1alpha1.ReasonAssigned, 2), WaitReady, false, ""},
		{"invalid ports fail", withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionFalse, v1alpha1.ReasonInvalidPorts, 2), WaitReady, false, "InvalidPorts"},
		{"exhausted fails a ports wait", withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionFalse, v1alpha1.ReasonPortsExhausted, 2), WaitPorts, false, "PortsExhausted"},
		{"ready", withCondition(withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionTrue, v1alpha1.ReasonAssigned, 2),
			v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAvailable, 2), WaitReady, true, ""},
		{"exhausted may still become ready", withCondition(withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionFalse, v1alpha1.ReasonPortsExhausted, 2),
			v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProgressing, 2), WaitReady, false, ""},
		{"no instance fails", withCondition(withCondition(fresh(), v1alpha1.ConditionPortsAssigned, metav1.ConditionTrue, v1alpha1.ReasonAssigned, 2),
			v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInstanceNotFound, 2), WaitReady, false, "InstanceNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, err := CheckWait(tc.p, tc.cond)
			assert.Equal(t, tc.done, done)
			if tc.errPart == "" {
				assert.NoError(t, err)
				return
			}
			var we *WaitError
			require.ErrorAs(t, err, &we)
			assert.Contains(t, err.Error(), tc.errPart)
		})
	}
}

func TestWaitPipelineSeesTheOperatorsWrite(t *testing.T) {
	ctx := context.Background()
	p := assigned("a", "", false, tcp(1))
	p.Status.Conditions = nil
	c, raw := fakeClient(t, nil, p)
	go func() {
		time.Sleep(30 * time.Millisecond)
		cur := &v1alpha1.Pipeline{}
		if err := raw.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			return
		}
		withCondition(cur, v1alpha1.ConditionPortsAssigned, metav1.ConditionTrue, v1alpha1.ReasonAssigned, cur.Generation)
		_ = raw.Status().Update(ctx, cur)
	}()
	got, err := c.WaitPipeline(ctx, "a", WaitPorts, 10*time.Millisecond)
	require.NoError(t, err)
	assert.NotNil(t, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionPortsAssigned))
}

func TestWaitPipelineTimeoutSaysWhatItSaw(t *testing.T) {
	p := assigned("a", "", false, tcp(1))
	withCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProgressing, 1)
	c, _ := fakeClient(t, nil, p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.WaitPipeline(ctx, "a", WaitReady, 10*time.Millisecond)
	var we *WaitError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, "timeout", we.Reason)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "last Ready=False Progressing: Progressing message")

	_, err = c.WaitPipeline(context.Background(), "missing", WaitReady, time.Millisecond)
	var nf *NotFoundError
	assert.ErrorAs(t, err, &nf)
}
