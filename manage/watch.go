package manage

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// WatchPipelines implements API: a list, sent as one Reset event, then a
// watch from the list's resource version.
func (c *Client) WatchPipelines(ctx context.Context) (<-chan PipelineEvent, error) {
	var list v1alpha1.PipelineList
	if err := c.c.List(ctx, &list, client.InNamespace(c.namespace)); err != nil {
		return nil, apiError(fmt.Sprintf("list pipelines in namespace %q", c.namespace), err)
	}
	w, err := c.c.Watch(ctx, &v1alpha1.PipelineList{}, client.InNamespace(c.namespace),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true}})
	if err != nil {
		return nil, apiError(fmt.Sprintf("watch pipelines in namespace %q", c.namespace), err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	out := make(chan PipelineEvent, 16)
	go func() {
		defer close(out)
		defer w.Stop()
		send := func(e PipelineEvent) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(PipelineEvent{Type: EventReset, Pipelines: list.Items}) {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					send(PipelineEvent{Type: EventError, Err: errors.New("the pipeline watch ended")})
					return
				}
				pe, ok := toPipelineEvent(ev)
				if !ok {
					continue
				}
				if !send(pe) || pe.Type == EventError {
					return
				}
			}
		}
	}()
	return out, nil
}

func toPipelineEvent(ev watch.Event) (PipelineEvent, bool) {
	switch ev.Type {
	case watch.Error:
		err := errors.New("the pipeline watch failed")
		if st, ok := ev.Object.(*metav1.Status); ok {
			err = fmt.Errorf("the pipeline watch failed: %s (%s)", st.Message, st.Reason)
		}
		return PipelineEvent{Type: EventError, Err: err}, true
	case watch.Bookmark:
		return PipelineEvent{}, false
	}
	p, ok := ev.Object.(*v1alpha1.Pipeline)
	if !ok {
		return PipelineEvent{}, false
	}
	switch ev.Type {
	case watch.Added:
		return PipelineEvent{Type: EventAdded, Pipeline: p}, true
	case watch.Modified:
		return PipelineEvent{Type: EventModified, Pipeline: p}, true
	case watch.Deleted:
		return PipelineEvent{Type: EventDeleted, Pipeline: p}, true
	}
	return PipelineEvent{}, false
}

// maxEvents bounds the recent events returned.
const maxEvents = 10

// Events implements API with core/v1 events (which include those written
// through events.k8s.io) whose involved object is kind/name.
func (c *Client) Events(ctx context.Context, kind, name string) ([]Event, error) {
	var list corev1.EventList
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.kind", kind),
		fields.OneTermEqualSelector("involvedObject.name", name))
	if err := c.c.List(ctx, &list, client.InNamespace(c.namespace), client.MatchingFieldsSelector{Selector: sel}); err != nil {
		return nil, apiError(fmt.Sprintf("list events of %s %q", kind, name), err)
	}
	return RecentEvents(list.Items, maxEvents), nil
}

// RecentEvents converts events, newest first, keeping at most n.
func RecentEvents(items []corev1.Event, n int) []Event {
	out := make([]Event, 0, len(items))
	for _, e := range items {
		last := e.LastTimestamp.Time
		if e.Series != nil && !e.Series.LastObservedTime.IsZero() {
			last = e.Series.LastObservedTime.Time
		}
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if last.IsZero() {
			last = e.CreationTimestamp.Time
		}
		count := e.Count
		if e.Series != nil && e.Series.Count > count {
			count = e.Series.Count
		}
		out = append(out, Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: count, Last: last})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Last.After(out[j].Last) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}
