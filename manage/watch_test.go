package manage

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func next(t *testing.T, ch <-chan PipelineEvent) PipelineEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		require.True(t, ok, "watch closed")
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}
	return PipelineEvent{}
}

func TestWatchPipelinesResetThenChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := fakeClient(t, nil, instance("core"), assigned("b", "", false), assigned("a", "", false))
	ch, err := c.WatchPipelines(ctx)
	require.NoError(t, err)

	e := next(t, ch)
	require.Equal(t, EventReset, e.Type)
	require.Len(t, e.Pipelines, 2)
	assert.Equal(t, "a", e.Pipelines[0].Name, "sorted by name")

	_, err = c.CreatePipeline(ctx, NewPipeline(testNS, "c", "core", PipelineChange{}), nil, WriteOptions{})
	require.NoError(t, err)
	e = next(t, ch)
	assert.Equal(t, EventAdded, e.Type)
	assert.Equal(t, "c", e.Pipeline.Name)

	_, err = c.DeletePipeline(ctx, "a", WriteOptions{})
	require.NoError(t, err)
	e = next(t, ch)
	assert.Equal(t, EventDeleted, e.Type)
	assert.Equal(t, "a", e.Pipeline.Name)

	cancel()
	require.Eventually(t, func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	}, 5*time.Second, 10*time.Millisecond, "the channel closes when the context ends")
}

func TestEventsNewestFirst(t *testing.T) {
	ev := func(name, reason string, at time.Time, kind string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Name: "a", Namespace: testNS},
			Type:           "Normal", Reason: reason, Message: reason + " happened", LastTimestamp: metav1.NewTime(at)}
	}
	c, _ := fakeClient(t, nil,
		ev("e1", "Old", t0, v1alpha1.KindPipeline),
		ev("e2", "New", t0.Add(time.Minute), v1alpha1.KindPipeline),
		ev("e3", "Other", t0.Add(time.Hour), "Deployment"))
	got, err := c.Events(context.Background(), v1alpha1.KindPipeline, "a")
	require.NoError(t, err)
	require.Len(t, got, 2, "only events about the pipeline")
	assert.Equal(t, "New", got[0].Reason)
	assert.Equal(t, "Old", got[1].Reason)

	series := corev1.Event{Reason: "S", Count: 1, Series: &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(t0.Add(time.Hour))}}
	plain := corev1.Event{Reason: "P", EventTime: metav1.NewMicroTime(t0)}
	out := RecentEvents([]corev1.Event{plain, series}, 1)
	require.Len(t, out, 1, "limited")
	assert.Equal(t, "S", out[0].Reason)
	assert.Equal(t, int32(7), out[0].Count)
}
