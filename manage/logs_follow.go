package manage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// follower keeps one stream open per running container of the pipeline's
// pods, as stern does: a pod watch says which containers run (by container
// ID, so a restart is a new stream), a pod that goes away has its streams
// ended, and a stream that ends while its container still runs (a dropped
// connection) is reopened from the last line seen.
type follower struct {
	r        *LogReader
	o        LogOptions
	pipeline string
	out      chan<- LogLine
	ctx      context.Context
	wg       sync.WaitGroup

	mu      sync.Mutex
	pods    map[string]*corev1.Pod         // latest state of each pod, by name
	scopes  map[string]podScope            // the streams of each pod end with its scope
	started map[string]map[string]struct{} // pod → "container/containerID" streamed
	active  int                            // open streams
	several bool                           // more than one pod seen: lines carry a prefix
	capped  bool                           // the MaxStreams notice was sent
}

type podScope struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (r *LogReader) follow(ctx context.Context, pipeline string, o LogOptions, out chan<- LogLine) error {
	f := &follower{r: r, o: o, pipeline: pipeline, out: out, ctx: ctx,
		pods: map[string]*corev1.Pod{}, scopes: map[string]podScope{}, started: map[string]map[string]struct{}{}}
	defer f.wg.Wait()
	pods := r.pods.Pods(r.namespace)
	selector := PodSelector(pipeline).String()
	first := true
	for {
		list, err := r.listPods(ctx, pipeline, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if first {
				return err
			}
			f.notice(fmt.Sprintf("%v; retrying", err))
			if !sleep(ctx, o.reconnect()) {
				return nil
			}
			continue
		}
		if first && len(list.Items) == 0 {
			f.notice(noPods(pipeline, r.namespace) + "; waiting for them")
		}
		f.sync(list.Items, first)
		first = false
		w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
		if err == nil {
			f.consume(w)
			w.Stop()
		} else if ctx.Err() == nil {
			f.notice(fmt.Sprintf("watch the pods of pipeline %q: %v; retrying", pipeline, err))
		}
		// The watch ended (a server timeout, a lost connection, an expired
		// resource version): list again, then watch from there.
		if !sleep(ctx, o.reconnect()) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// consume applies the watch's events until it ends.
func (f *follower) consume(w watch.Interface) {
	for {
		select {
		case <-f.ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if pod, ok := ev.Object.(*corev1.Pod); ok {
					f.update(pod, false)
				}
			case watch.Deleted:
				if pod, ok := ev.Object.(*corev1.Pod); ok {
					f.remove(pod.Name, true)
				}
			case watch.Error:
				return
			}
		}
	}
}

// sync applies a fresh list: pods no longer in it are gone.
func (f *follower) sync(items []corev1.Pod, initial bool) {
	present := map[string]bool{}
	for i := range items {
		present[items[i].Name] = true
	}
	f.mu.Lock()
	var gone []string
	for name := range f.pods {
		if !present[name] {
			gone = append(gone, name)
		}
	}
	if initial && len(items) > 1 {
		f.several = true
	}
	f.mu.Unlock()
	for _, name := range gone {
		f.remove(name, true)
	}
	for i := range items {
		f.update(&items[i], initial)
	}
}

// containerID is the container whose log the kubelet serves for cs: the
// running one, else the terminated one, else the last terminated one (a
// container waiting to restart). Empty when none has run yet.
func containerID(cs corev1.ContainerStatus) string {
	switch {
	case cs.State.Running != nil:
		return cs.ContainerID
	case cs.State.Terminated != nil && cs.State.Terminated.ContainerID != "":
		return cs.State.Terminated.ContainerID
	case cs.LastTerminationState.Terminated != nil:
		return cs.LastTerminationState.Terminated.ContainerID
	}
	return ""
}

// update records pod's state and starts a stream for each of its
// containers that has a run not streamed yet.
func (f *follower) update(pod *corev1.Pod, initial bool) {
	if f.o.Pod != "" && pod.Name != f.o.Pod {
		return
	}
	var notices []string
	f.mu.Lock()
	_, known := f.pods[pod.Name]
	f.pods[pod.Name] = pod.DeepCopy()
	if len(f.pods) > 1 {
		f.several = true
	}
	if !known && !initial {
		notices = append(notices, fmt.Sprintf("pod %s of pipeline %s appeared; following it", pod.Name, f.pipeline))
	}
	scope, ok := f.scopes[pod.Name]
	if !ok {
		scope.ctx, scope.cancel = context.WithCancel(f.ctx)
		f.scopes[pod.Name] = scope
	}
	runs := f.started[pod.Name]
	if runs == nil {
		runs = map[string]struct{}{}
		f.started[pod.Name] = runs
	}
	for _, cs := range pod.Status.ContainerStatuses {
		id := containerID(cs)
		if id == "" {
			continue
		}
		key := cs.Name + "/" + id
		if _, done := runs[key]; done {
			continue
		}
		if f.active >= f.o.maxStreams() {
			if !f.capped {
				f.capped = true
				notices = append(notices, fmt.Sprintf("not following more than %d containers at once; %s/%s and later ones are left out (choose one with --pod)",
					f.o.maxStreams(), pod.Name, cs.Name))
			}
			continue
		}
		// Earlier runs of this container never come back (a waiting
		// container points at its last run, already streamed): forget
		// them, so a crash loop does not grow the map.
		restarted := false
		for k := range runs {
			if strings.HasPrefix(k, cs.Name+"/") {
				restarted = true
				delete(runs, k)
			}
		}
		if restarted {
			notices = append(notices, fmt.Sprintf("container %s of pod %s restarted (restart count %d); following the new one", cs.Name, pod.Name, cs.RestartCount))
		}
		runs[key] = struct{}{}
		f.active++
		f.wg.Add(1)
		go f.run(scope.ctx, newTarget(pod, cs.Name, id), logOptions(cs.Name, f.o, initial && !restarted))
	}
	f.mu.Unlock()
	for _, n := range notices {
		f.notice(n)
	}
}

// remove ends the streams of a pod that went away.
func (f *follower) remove(name string, tell bool) {
	f.mu.Lock()
	_, known := f.pods[name]
	if scope, ok := f.scopes[name]; ok {
		scope.cancel()
	}
	delete(f.pods, name)
	delete(f.scopes, name)
	delete(f.started, name)
	f.mu.Unlock()
	if known && tell {
		f.notice(fmt.Sprintf("pod %s of pipeline %s is gone; its log ended", name, f.pipeline))
	}
}

func (f *follower) notice(text string) {
	send(f.ctx, f.out, LogLine{Notice: true, Text: text})
}

// prefix returns t's label once lines of several pods are possible.
func (f *follower) prefix(t target) func() string {
	return func() string {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.several {
			return t.label
		}
		return ""
	}
}

// running reports whether t's container run is still the pod's running one.
func (f *follower) running(t target) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	pod, ok := f.pods[t.pod]
	if !ok {
		return false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == t.container {
			return cs.State.Running != nil && cs.ContainerID == t.id
		}
	}
	return false
}

// run streams one container run. When the stream ends while the container
// still runs (the connection dropped, the API server timed it out), it
// reopens it after o.Reconnect from the second of the last line, skipping
// the lines already sent.
func (f *follower) run(ctx context.Context, t target, opts *corev1.PodLogOptions) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	var after time.Time
	failures := 0
	for {
		last, err := f.r.stream(ctx, t, opts, f.out, after, f.prefix(t))
		if ctx.Err() != nil {
			return
		}
		if last.After(after) {
			after, failures = last, 0
		}
		if err != nil {
			failures++
		}
		if !sleep(ctx, f.o.reconnect()) {
			return
		}
		if !f.running(t) {
			if err != nil {
				f.notice(fmt.Sprintf("cannot read the log of %s: %v", t.label, err))
			}
			return
		}
		if failures >= maxStreamFailures {
			f.notice(fmt.Sprintf("giving up on the log of %s after %d failures in a row: %v", t.label, failures, err))
			return
		}
		if !after.IsZero() {
			// Without a line seen the first options still hold (a --since
			// or --tail that selected nothing yet).
			opts = opts.DeepCopy()
			opts.TailLines, opts.SinceSeconds = nil, nil
			opts.SinceTime = &metav1.Time{Time: after}
		}
	}
}
