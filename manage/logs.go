package manage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Defaults of LogOptions.
const (
	// DefaultLogBuffer is how many lines wait between the streams and the
	// callback before the streams stop reading (and the API server's
	// connections apply back-pressure).
	DefaultLogBuffer = 256
	// DefaultMaxLogStreams caps the container log streams one follow keeps
	// open, as kubectl's --max-log-requests and stern do.
	DefaultMaxLogStreams = 50
	// DefaultLogReconnect is how long a follow waits before it reopens a
	// stream that ended while its container still runs.
	DefaultLogReconnect = time.Second
	// MaxLogLine is the longest line delivered; the rest of a longer line is
	// dropped and the line ends with LogTruncated.
	MaxLogLine = 64 << 10
	// LogTruncated ends a line cut at MaxLogLine.
	LogTruncated = " …[truncated]"
	// maxStreamFailures is how many times in a row a follow reopens a
	// running container's stream that fails before it gives up on it.
	maxStreamFailures = 5
)

// LogOptions choose which logs PipelineLogs reads.
type LogOptions struct {
	// Follow keeps reading: new lines, restarted containers and new pods
	// (a rollout, a scale-up) until the context ends.
	Follow bool
	// Previous reads the previous, terminated container of each pod
	// instead of the current one. It cannot be followed.
	Previous bool
	// Since starts at lines this recent (rounded up to whole seconds); zero
	// reads from the beginning.
	Since time.Duration
	// Tail starts at the last Tail lines of each container; nil reads
	// every line. Since and Tail apply to the containers running when the
	// read starts: containers that start later are read from their first line.
	Tail *int64
	// Pod reads only the pod of that name (it must belong to the pipeline).
	Pod string
	// Buffer is the number of lines buffered before the callback; 0 is
	// DefaultLogBuffer.
	Buffer int
	// MaxStreams caps the streams a follow keeps open; 0 is
	// DefaultMaxLogStreams.
	MaxStreams int
	// Reconnect is the wait before a follow reopens a stream; 0 is
	// DefaultLogReconnect.
	Reconnect time.Duration
}

// Validate checks the options without the cluster.
func (o LogOptions) Validate() error {
	var errs []error
	if o.Follow && o.Previous {
		errs = append(errs, errors.New("--previous reads a terminated container, which cannot be followed: drop --follow or --previous"))
	}
	if o.Since < 0 {
		errs = append(errs, fmt.Errorf("--since %s: must not be negative", o.Since))
	}
	if o.Tail != nil && *o.Tail < 0 {
		errs = append(errs, fmt.Errorf("--tail %d: must be a number of lines (or -1 for all)", *o.Tail))
	}
	if o.Buffer < 0 || o.MaxStreams < 0 || o.Reconnect < 0 {
		errs = append(errs, errors.New("log buffer, stream limit and reconnect wait must not be negative"))
	}
	return errors.Join(errs...)
}

func (o LogOptions) buffer() int {
	if o.Buffer == 0 {
		return DefaultLogBuffer
	}
	return o.Buffer
}

func (o LogOptions) maxStreams() int {
	if o.MaxStreams == 0 {
		return DefaultMaxLogStreams
	}
	return o.MaxStreams
}

func (o LogOptions) reconnect() time.Duration {
	if o.Reconnect == 0 {
		return DefaultLogReconnect
	}
	return o.Reconnect
}

// LogLine is one line of a container's log, or a notice about the read
// itself (a pod appeared, went away, a stream failed).
type LogLine struct {
	Pod       string
	Container string
	// Time is the kubelet's timestamp of the line; zero for notices.
	Time time.Time
	Text string
	// Prefix names the line's pod (pod/container when the pod has several
	// containers) once the read covers more than one pod; empty before.
	Prefix string
	// Notice marks a message of the reader, not of the container.
	Notice bool
}

// String is the line as `tpctl pipeline logs` prints it: the text, after
// "[prefix] " when there is a prefix.
func (l LogLine) String() string {
	if l.Prefix == "" {
		return l.Text
	}
	return "[" + l.Prefix + "] " + l.Text
}

// UnknownPodError is a --pod that is not one of the pipeline's pods.
type UnknownPodError struct {
	Pod, Pipeline, Namespace string
	Existing                 []string
}

func (e *UnknownPodError) Error() string {
	msg := fmt.Sprintf("pod %q is not a pod of pipeline %q in namespace %q", e.Pod, e.Pipeline, e.Namespace)
	if len(e.Existing) == 0 {
		return msg + " (the pipeline has no pods)"
	}
	if len(e.Existing) > maxListed {
		return msg + "; its pods: " + strings.Join(e.Existing[:maxListed], ", ") + fmt.Sprintf(", … (%d in all)", len(e.Existing))
	}
	return msg + "; its pods: " + strings.Join(e.Existing, ", ")
}

// LogsError reports the containers whose logs could not be read (the
// lines of the others were delivered).
type LogsError struct {
	Failed []string // "pod/container: reason"
	Total  int
}

func (e *LogsError) Error() string {
	return fmt.Sprintf("could not read the logs of %d of %d containers: %s", len(e.Failed), e.Total, strings.Join(e.Failed, "; "))
}

// LogOpener opens the log stream of one container. NewLogReader's default
// asks the API server (the pods/log subresource).
type LogOpener func(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)

// LogReader reads the logs of pipelines' pods in one namespace.
type LogReader struct {
	pods      corev1client.PodsGetter
	namespace string
	open      LogOpener
}

// NewLogReader reads through pods (a clientset's CoreV1()) in namespace.
// open opens each container's stream; nil uses pods' pods/log.
func NewLogReader(pods corev1client.PodsGetter, namespace string, open LogOpener) *LogReader {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if open == nil {
		open = func(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
			return pods.Pods(namespace).GetLogs(pod, opts).Stream(ctx)
		}
	}
	return &LogReader{pods: pods, namespace: namespace, open: open}
}

// Namespace is the namespace the reader works in.
func (r *LogReader) Namespace() string { return r.namespace }

// PodSelector selects the pods of a pipeline: the operator labels each
// with the pipeline's name.
func PodSelector(pipeline string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1alpha1.LabelPipeline: pipeline})
}

// PipelineLogs reads the logs of every container of the pipeline's pods
// and calls fn for each line, from one goroutine, in the order the lines
// arrive. Without Follow it reads the pods one after the other, sorted by
// name, and returns at the end; a *LogsError names the containers that
// could not be read. With Follow it reads all pods at once, picks up pods
// and containers that start later, ends the stream of a pod that goes away,
// and returns when ctx ends.
//
// The end of ctx is the normal end of a read: PipelineLogs then returns
// nil. Lines wait in a buffer of o.Buffer lines; while fn is slow the
// streams stop reading.
func (r *LogReader) PipelineLogs(ctx context.Context, pipeline string, o LogOptions, fn func(LogLine)) error {
	if err := o.Validate(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan LogLine, o.buffer())
	errc := make(chan error, 1)
	go func() {
		defer close(lines)
		if o.Follow {
			errc <- r.follow(runCtx, pipeline, o, lines)
		} else {
			errc <- r.dump(runCtx, pipeline, o, lines)
		}
	}()
	for l := range lines {
		fn(l)
	}
	err := <-errc
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// listPods returns the pipeline's pods sorted by name, only o.Pod when set.
func (r *LogReader) listPods(ctx context.Context, pipeline string, o LogOptions) (*corev1.PodList, error) {
	list, err := r.pods.Pods(r.namespace).List(ctx, metav1.ListOptions{LabelSelector: PodSelector(pipeline).String()})
	if err != nil {
		return nil, apiError(fmt.Sprintf("list the pods of pipeline %q", pipeline), err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	if o.Pod == "" {
		return list, nil
	}
	names := make([]string, 0, len(list.Items))
	for i := range list.Items {
		if list.Items[i].Name == o.Pod {
			list.Items = list.Items[i : i+1]
			return list, nil
		}
		names = append(names, list.Items[i].Name)
	}
	return nil, &UnknownPodError{Pod: o.Pod, Pipeline: pipeline, Namespace: r.namespace, Existing: names}
}

func noPods(pipeline, namespace string) string {
	return fmt.Sprintf("pipeline %q has no pods in namespace %q yet (`tpctl pipeline get %s` says why)", pipeline, namespace, pipeline)
}

// dump reads each container once, pod after pod.
func (r *LogReader) dump(ctx context.Context, pipeline string, o LogOptions, out chan<- LogLine) error {
	list, err := r.listPods(ctx, pipeline, o)
	if err != nil {
		return err
	}
	if len(list.Items) == 0 {
		send(ctx, out, LogLine{Notice: true, Text: noPods(pipeline, r.namespace)})
		return nil
	}
	several := len(list.Items) > 1
	lerr := &LogsError{}
	for i := range list.Items {
		pod := &list.Items[i]
		for _, c := range pod.Spec.Containers {
			t := newTarget(pod, c.Name, "")
			prefix := ""
			if several {
				prefix = t.label
			}
			lerr.Total++
			_, err := r.stream(ctx, t, logOptions(c.Name, o, true), out, time.Time{}, func() string { return prefix })
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				lerr.Failed = append(lerr.Failed, fmt.Sprintf("%s: %v", t.label, err))
				send(ctx, out, LogLine{Pod: t.pod, Container: t.container, Notice: true, Prefix: prefix,
					Text: fmt.Sprintf("cannot read the logs of %s: %v", t.label, err)})
			}
		}
	}
	if len(lerr.Failed) > 0 {
		return lerr
	}
	return nil
}

// logOptions are the pods/log options for a container; Since and Tail
// apply to the containers found when the read starts (initial).
func logOptions(container string, o LogOptions, initial bool) *corev1.PodLogOptions {
	opts := &corev1.PodLogOptions{Container: container, Follow: o.Follow, Previous: o.Previous, Timestamps: true}
	if initial {
		if o.Since > 0 {
			s := int64((o.Since + time.Second - 1) / time.Second)
			opts.SinceSeconds = &s
		}
		if o.Tail != nil {
			n := *o.Tail
			opts.TailLines = &n
		}
	}
	return opts
}

// target is one container of one pod (one run of it: id is its container
// ID, empty when reading without following).
type target struct {
	pod, container, id string
	label              string
}

func newTarget(pod *corev1.Pod, container, id string) target {
	label := pod.Name
	if len(pod.Spec.Containers) > 1 {
		label += "/" + container
	}
	return target{pod: pod.Name, container: container, id: id, label: label}
}

// send delivers l unless ctx has ended (checked first, so nothing of a
// stream is delivered once its pod is gone).
func send(ctx context.Context, out chan<- LogLine, l LogLine) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case out <- l:
		return true
	case <-ctx.Done():
		return false
	}
}

// stream reads one container's log until its end (or ctx's) and sends its
// lines, skipping those stamped at or before after (a reopened stream
// starts at the whole second of the last line seen). It returns the time
// of the last line sent.
func (r *LogReader) stream(ctx context.Context, t target, opts *corev1.PodLogOptions, out chan<- LogLine,
	after time.Time, prefix func() string) (time.Time, error) {
	rc, err := r.open(ctx, r.namespace, t.pod, opts)
	if err != nil {
		return after, err
	}
	stop := context.AfterFunc(ctx, func() { _ = rc.Close() })
	defer func() {
		stop()
		_ = rc.Close()
	}()
	last := after
	err = readLines(rc, MaxLogLine, func(b []byte) bool {
		ts, text := splitTimestamp(b)
		if !after.IsZero() && !ts.IsZero() && !ts.After(after) {
			return true
		}
		if !ts.IsZero() {
			last = ts
		}
		return send(ctx, out, LogLine{Pod: t.pod, Container: t.container, Time: ts, Text: text, Prefix: prefix()})
	})
	if ctx.Err() != nil {
		return last, nil
	}
	return last, err
}

// splitTimestamp splits the RFC 3339 timestamp the kubelet puts before
// each line (PodLogOptions.Timestamps) from the text.
func splitTimestamp(b []byte) (time.Time, string) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 {
		return time.Time{}, string(b)
	}
	ts, err := time.Parse(time.RFC3339Nano, string(b[:i]))
	if err != nil {
		return time.Time{}, string(b)
	}
	return ts, string(b[i+1:])
}

// readLines calls fn with each line of r (without its line end) until fn
// returns false or r ends. A line longer than max is cut there and ends
// with LogTruncated; the rest of it is skipped, so memory stays bounded.
func readLines(r io.Reader, max int, fn func([]byte) bool) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var line []byte
	truncated := false
	for {
		chunk, err := br.ReadSlice('\n')
		if room := max - len(line); len(chunk) <= room {
			line = append(line, chunk...)
		} else {
			if room > 0 {
				line = append(line, chunk[:room]...)
			}
			truncated = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 || err == nil {
			l := bytes.TrimRight(line, "\r\n")
			if truncated {
				l = append(l, LogTruncated...)
			}
			if !fn(l) {
				return nil
			}
		}
		line, truncated = line[:0], false
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
