package manage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// logPod is a pod of pipeline with one container "pipeline" running as
// container id (none yet when id is empty).
func logPod(name, pipeline, id string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, Labels: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pipeline"}}},
	}
	if pipeline != "" {
		p.Labels[v1alpha1.LabelPipeline] = pipeline
	}
	cs := corev1.ContainerStatus{Name: "pipeline"}
	if id != "" {
		cs.ContainerID = id
		cs.State.Running = &corev1.ContainerStateRunning{}
	} else {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	return p
}

// stamp is a log line as the kubelet sends it with timestamps.
func stamp(sec int, text string) string {
	return t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano) + " " + text + "\n"
}

type openCall struct {
	pod  string
	opts *corev1.PodLogOptions
}

// fakeLogs serves log streams: fixed text for the containers in static,
// an error for those in errs, else a pipe whose writing end the test takes
// from writer(pod/container).
type fakeLogs struct {
	static map[string]string
	errs   map[string]error
	opened chan openCall

	mu      sync.Mutex
	writers map[string]chan *io.PipeWriter
}

func newFakeLogs() *fakeLogs {
	return &fakeLogs{static: map[string]string{}, errs: map[string]error{}, opened: make(chan openCall, 100),
		writers: map[string]chan *io.PipeWriter{}}
}

func (f *fakeLogs) writerChan(key string) chan *io.PipeWriter {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.writers[key]
	if !ok {
		ch = make(chan *io.PipeWriter, 10)
		f.writers[key] = ch
	}
	return ch
}

func (f *fakeLogs) open(_ context.Context, ns, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	if ns != testNS {
		return nil, fmt.Errorf("namespace %q", ns)
	}
	f.opened <- openCall{pod: pod, opts: opts.DeepCopy()}
	key := pod + "/" + opts.Container
	if err := f.errs[key]; err != nil {
		return nil, err
	}
	if text, ok := f.static[key]; ok {
		return io.NopCloser(strings.NewReader(text)), nil
	}
	r, w := io.Pipe()
	f.writerChan(key) <- w
	return r, nil
}

// writer waits for the next stream opened for key.
func (f *fakeLogs) writer(t *testing.T, key string) *io.PipeWriter {
	t.Helper()
	select {
	case w := <-f.writerChan(key):
		return w
	case <-time.After(5 * time.Second):
		t.Fatalf("no log stream opened for %s", key)
		return nil
	}
}

func (f *fakeLogs) nextOpen(t *testing.T) openCall {
	t.Helper()
	select {
	case c := <-f.opened:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no log stream opened")
		return openCall{}
	}
}

func collect(t *testing.T, r *LogReader, name string, o LogOptions) ([]LogLine, error) {
	t.Helper()
	var got []LogLine
	err := r.PipelineLogs(context.Background(), name, o, func(l LogLine) { got = append(got, l) })
	return got, err
}

func texts(lines []LogLine) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, l.String())
	}
	return out
}

func TestPipelineLogsReadsOnlyThePipelinesPodsWithPrefixes(t *testing.T) {
	cs := fake.NewClientset(logPod("a-2", "a", "c2"), logPod("a-1", "a", "c1"), logPod("b-1", "b", "c3"), logPod("lone", "", "c4"))
	fl := newFakeLogs()
	fl.static["a-1/pipeline"] = stamp(1, "one") + stamp(2, "two")
	fl.static["a-2/pipeline"] = stamp(1, "three")
	fl.static["b-1/pipeline"] = stamp(1, "not mine")
	fl.static["lone/pipeline"] = stamp(1, "not mine")
	r := NewLogReader(cs.CoreV1(), testNS, fl.open)

	got, err := collect(t, r, "a", LogOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"[a-1] one", "[a-1] two", "[a-2] three"}, texts(got), "pods in name order, each prefixed")
	assert.Equal(t, t0.Add(2*time.Second), got[1].Time, "the kubelet's timestamp is parsed off the text")
	assert.Equal(t, "pipeline", got[0].Container)
	assert.Len(t, fl.opened, 2, "only the pipeline's pods are read")
}

func TestPipelineLogsOnePodNoPrefixAndOptionsPassed(t *testing.T) {
	cs := fake.NewClientset(logPod("a-1", "a", "c1"))
	fl := newFakeLogs()
	fl.static["a-1/pipeline"] = stamp(1, "hello") + "no timestamp\n" + stamp(2, "last without newline")[:len(stamp(2, "last without newline"))-1]
	r := NewLogReader(cs.CoreV1(), testNS, fl.open)

	got, err := collect(t, r, "a", LogOptions{Since: 90*time.Second + time.Millisecond, Tail: ptr.To[int64](20), Previous: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"hello", "no timestamp", "last without newline"}, texts(got))
	call := fl.nextOpen(t)
	assert.Equal(t, "a-1", call.pod)
	assert.Equal(t, &corev1.PodLogOptions{Container: "pipeline", Previous: true, Timestamps: true,
		SinceSeconds: ptr.To[int64](91), TailLines: ptr.To[int64](20)}, call.opts, "since rounds up to whole seconds")
}

func TestPipelineLogsPodFilter(t *testing.T) {
	cs := fake.NewClientset(logPod("a-1", "a", "c1"), logPod("a-2", "a", "c2"), logPod("b-1", "b", "c3"))
	fl := newFakeLogs()
	fl.static["a-1/pipeline"] = stamp(1, "one")
	fl.static["a-2/pipeline"] = stamp(1, "two")
	r := NewLogReader(cs.CoreV1(), testNS, fl.open)

	got, err := collect(t, r, "a", LogOptions{Pod: "a-2"})
	require.NoError(t, err)
	assert.Equal(t, []string{"two"}, texts(got), "one pod: no prefix")

	_, err = collect(t, r, "a", LogOptions{Pod: "b-1"})
	var up *UnknownPodError
	require.ErrorAs(t, err, &up)
	assert.EqualError(t, err, `pod "b-1" is not a pod of pipeline "a" in namespace "tp"; its pods: a-1, a-2`)

	_, err = collect(t, r, "none", LogOptions{Pod: "x", Follow: true})
	assert.EqualError(t, err, `pod "x" is not a pod of pipeline "none" in namespace "tp" (the pipeline has no pods)`, "a follow refuses it too")
}

func TestPipelineLogsNoPodsAndFailedStreams(t *testing.T) {
	cs := fake.NewClientset(logPod("a-1", "a", "c1"), logPod("a-2", "a", "c2"))
	fl := newFakeLogs()
	fl.errs["a-1/pipeline"] = errors.New(`previous terminated container "pipeline" in pod "a-1" not found`)
	fl.static["a-2/pipeline"] = stamp(1, "two")
	r := NewLogReader(cs.CoreV1(), testNS, fl.open)

	got, err := collect(t, r, "a", LogOptions{Previous: true})
	var le *LogsError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 2, le.Total)
	assert.Contains(t, err.Error(), "could not read the logs of 1 of 2 containers: a-1: previous terminated container")
	require.Len(t, got, 2)
	assert.True(t, got[0].Notice)
	assert.Equal(t, "[a-2] two", got[1].String(), "the other pod is still read")

	got, err = collect(t, r, "empty", LogOptions{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.True(t, got[0].Notice)
	assert.Contains(t, got[0].Text, `pipeline "empty" has no pods in namespace "tp"`)
}

func TestLogOptionsValidate(t *testing.T) {
	assert.NoError(t, LogOptions{Follow: true, Tail: ptr.To[int64](0)}.Validate())
	err := LogOptions{Follow: true, Previous: true, Since: -time.Second, Tail: ptr.To[int64](-2)}.Validate()
	require.Error(t, err)
	for _, want := range []string{"cannot be followed", "--since -1s: must not be negative", "--tail -2"} {
		assert.Contains(t, err.Error(), want)
	}
	r := NewLogReader(fake.NewClientset().CoreV1(), testNS, newFakeLogs().open)
	called := false
	err = r.PipelineLogs(context.Background(), "a", LogOptions{Follow: true, Previous: true}, func(LogLine) { called = true })
	require.Error(t, err)
	assert.False(t, called)
}

func TestReadLinesCutsLongLines(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	var got []string
	require.NoError(t, readLines(strings.NewReader("a\r\n"+long+"\nb"), 1000, func(b []byte) bool {
		got = append(got, string(b))
		return true
	}))
	require.Len(t, got, 3)
	assert.Equal(t, "a", got[0])
	assert.Equal(t, strings.Repeat("x", 1000)+LogTruncated, got[1])
	assert.Equal(t, "b", got[2], "the rest of the long line is skipped, the next line is whole")
}

// followEnv is a follow running in the background with a pod watch the
// test drives.
type followEnv struct {
	fl     *fakeLogs
	events *watch.FakeWatcher
	lines  chan LogLine
	cancel context.CancelFunc
	done   chan struct{} // closed when PipelineLogs returned err
	err    error
}

func startFollow(t *testing.T, o LogOptions, pods ...runtime.Object) *followEnv {
	t.Helper()
	cs := fake.NewClientset(pods...)
	e := &followEnv{fl: newFakeLogs(), events: watch.NewFakeWithChanSize(10, false), lines: make(chan LogLine, 100), done: make(chan struct{})}
	watched := make(chan struct{}, 10)
	cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		watched <- struct{}{}
		return true, e.events, nil
	})
	r := NewLogReader(cs.CoreV1(), testNS, e.fl.open)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	o.Follow = true
	if o.Reconnect == 0 {
		o.Reconnect = 10 * time.Millisecond
	}
	go func() {
		defer close(e.done)
		e.err = r.PipelineLogs(ctx, "a", o, func(l LogLine) { e.lines <- l })
	}()
	t.Cleanup(func() {
		cancel()
		<-e.done
	})
	select {
	case <-watched:
	case <-time.After(5 * time.Second):
		t.Fatal("the follow never watched the pods")
	}
	return e
}

func (e *followEnv) next(t *testing.T) LogLine {
	t.Helper()
	select {
	case l := <-e.lines:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no line arrived")
		return LogLine{}
	}
}

func write(w *io.PipeWriter, s string) { _, _ = io.WriteString(w, s) }

func TestFollowPicksUpNewPodsAndEndsGoneOnes(t *testing.T) {
	e := startFollow(t, LogOptions{Tail: ptr.To[int64](5)}, logPod("a-1", "a", "c1"), logPod("b-1", "b", "c9"))
	first := e.fl.nextOpen(t)
	assert.Equal(t, "a-1", first.pod)
	assert.Equal(t, ptr.To[int64](5), first.opts.TailLines, "--tail applies to the pods running at the start")
	assert.True(t, first.opts.Follow)
	w1 := e.fl.writer(t, "a-1/pipeline")
	write(w1, stamp(1, "alone"))
	assert.Equal(t, "alone", e.next(t).String(), "one pod: no prefix")

	// A rollout: a second pod appears, first without a container, then running.
	e.events.Add(logPod("a-2", "a", ""))
	n := e.next(t)
	assert.True(t, n.Notice)
	assert.Contains(t, n.Text, "pod a-2 of pipeline a appeared")
	e.events.Modify(logPod("a-2", "a", "c2"))
	second := e.fl.nextOpen(t)
	assert.Equal(t, "a-2", second.pod)
	assert.Nil(t, second.opts.TailLines, "a pod that starts later is read from its first line")
	w2 := e.fl.writer(t, "a-2/pipeline")
	write(w2, stamp(2, "from the new pod"))
	assert.Equal(t, "[a-2] from the new pod", e.next(t).String())
	write(w1, stamp(3, "old pod again"))
	assert.Equal(t, "[a-1] old pod again", e.next(t).String(), "with several pods every line is prefixed")

	// The old pod goes away: its stream ends, the command does not.
	e.events.Delete(logPod("a-1", "a", "c1"))
	n = e.next(t)
	assert.True(t, n.Notice)
	assert.Contains(t, n.Text, "pod a-1 of pipeline a is gone")
	write(w1, stamp(4, "after delete"))
	write(w2, stamp(5, "still here"))
	assert.Equal(t, "[a-2] still here", e.next(t).String(), "the gone pod's stream delivers nothing more")

	e.cancel()
	select {
	case <-e.done:
		assert.NoError(t, e.err, "cancelling is the normal end of a follow")
	case <-time.After(5 * time.Second):
		t.Fatal("the follow did not end on cancel")
	}
	_, err := io.WriteString(w2, stamp(6, "after cancel"))
	assert.ErrorIs(t, err, io.ErrClosedPipe, "every stream is closed on cancel")
}

func TestFollowRestartedContainerAndDroppedConnection(t *testing.T) {
	e := startFollow(t, LogOptions{Since: time.Minute}, logPod("a-1", "a", "c1"))
	call := e.fl.nextOpen(t)
	assert.Equal(t, ptr.To[int64](60), call.opts.SinceSeconds)
	w := e.fl.writer(t, "a-1/pipeline")
	write(w, stamp(1, "one")+stamp(2, "two"))
	assert.Equal(t, "one", e.next(t).Text)
	assert.Equal(t, "two", e.next(t).Text)

	// The connection drops while the container runs: the stream is reopened
	// from the last line's second and lines already shown are skipped.
	require.NoError(t, w.Close())
	call = e.fl.nextOpen(t)
	require.NotNil(t, call.opts.SinceTime)
	assert.True(t, call.opts.SinceTime.Time.Equal(t0.Add(2*time.Second)))
	assert.Nil(t, call.opts.SinceSeconds)
	w = e.fl.writer(t, "a-1/pipeline")
	write(w, stamp(1, "one")+stamp(2, "two")+stamp(3, "three"))
	assert.Equal(t, "three", e.next(t).Text)

	// The container restarts: a new container ID is a new stream from its
	// start, and the old run's stream, once ended, is not reopened.
	restarted := logPod("a-1", "a", "c1b")
	restarted.Status.ContainerStatuses[0].RestartCount = 1
	e.events.Modify(restarted)
	n := e.next(t)
	assert.True(t, n.Notice)
	assert.Contains(t, n.Text, "container pipeline of pod a-1 restarted (restart count 1)")
	require.NoError(t, w.Close())
	call = e.fl.nextOpen(t)
	assert.Nil(t, call.opts.SinceSeconds, "--since applies to the first run only")
	assert.Nil(t, call.opts.SinceTime)
	w = e.fl.writer(t, "a-1/pipeline")
	write(w, stamp(1, "fresh start"))
	assert.Equal(t, "fresh start", e.next(t).String())
}

func TestFollowWaitsForPodsAndHonoursPodFilter(t *testing.T) {
	e := startFollow(t, LogOptions{Pod: "a-1"}, logPod("a-1", "a", ""), logPod("a-2", "a", "c2"))
	select {
	case c := <-e.fl.opened:
		t.Fatalf("opened %s before its container ran", c.pod)
	case <-time.After(50 * time.Millisecond):
	}
	e.events.Modify(logPod("a-2", "a", "c2b"))
	e.events.Modify(logPod("a-1", "a", "c1"))
	call := e.fl.nextOpen(t)
	assert.Equal(t, "a-1", call.pod, "only --pod is read")
	write(e.fl.writer(t, "a-1/pipeline"), stamp(1, "mine"))
	assert.Equal(t, "mine", e.next(t).String())
	assert.Empty(t, e.fl.opened)
}

func TestFollowCapsStreams(t *testing.T) {
	e := startFollow(t, LogOptions{MaxStreams: 1}, logPod("a-1", "a", "c1"), logPod("a-2", "a", "c2"))
	n := e.next(t)
	assert.True(t, n.Notice)
	assert.Contains(t, n.Text, "not following more than 1 containers at once; a-2/pipeline")
	assert.Equal(t, "a-1", e.fl.nextOpen(t).pod)
	assert.Empty(t, e.fl.opened)
}

func TestFollowSlowReaderBoundsTheBuffer(t *testing.T) {
	cs := fake.NewClientset(logPod("a-1", "a", "c1"))
	fl := newFakeLogs()
	r := NewLogReader(cs.CoreV1(), testNS, fl.open)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	done := make(chan error, 1)
	first := true
	go func() {
		done <- r.PipelineLogs(ctx, "a", LogOptions{Follow: true, Buffer: 2}, func(LogLine) {
			if first {
				first = false
				<-release
			}
		})
	}()
	w := fl.writer(t, "a-1/pipeline")
	written := make(chan int, 20)
	go func() {
		for i := 1; i <= 10; i++ {
			if _, err := io.WriteString(w, stamp(i, "x")); err != nil {
				return
			}
			written <- i
		}
	}()
	// The callback holds line 1, the buffer takes 2 more and the stream one
	// in hand: the writer is stuck well before 10 lines.
	time.Sleep(200 * time.Millisecond)
	got := 0
	for len(written) > 0 {
		got = <-written
	}
	assert.Less(t, got, 6, "a slow reader stops the stream instead of buffering without bound")
	close(release)
	cancel()
	require.NoError(t, <-done)
}

// A watch that ends (a server timeout, an expired resource version) is
// followed by a fresh list: pods deleted meanwhile end, new ones start.
func TestFollowRelistsAfterTheWatchEnds(t *testing.T) {
	cs := fake.NewClientset(logPod("a-1", "a", "c1"))
	watchers := make(chan *watch.FakeWatcher, 10)
	cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		w := watch.NewFakeWithChanSize(10, false)
		watchers <- w
		return true, w, nil
	})
	fl := newFakeLogs()
	r := NewLogReader(cs.CoreV1(), testNS, fl.open)
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan LogLine, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.PipelineLogs(ctx, "a", LogOptions{Follow: true, Reconnect: 10 * time.Millisecond}, func(l LogLine) { lines <- l })
	}()
	next := func() LogLine {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no line arrived")
			return LogLine{}
		}
	}
	var w *watch.FakeWatcher
	select {
	case w = <-watchers:
	case <-time.After(5 * time.Second):
		t.Fatal("no watch")
	}
	w1 := fl.writer(t, "a-1/pipeline")
	write(w1, stamp(1, "first"))
	assert.Equal(t, "first", next().String())

	// While no watch runs, a-1 is replaced by a-2.
	pods := cs.CoreV1().Pods(testNS)
	require.NoError(t, pods.Delete(context.Background(), "a-1", metav1.DeleteOptions{}))
	_, err := pods.Create(context.Background(), logPod("a-2", "a", "c2"), metav1.CreateOptions{})
	require.NoError(t, err)
	w.Stop()

	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		l := next()
		require.True(t, l.Notice, l.Text)
		got[l.Text] = true
	}
	assert.True(t, got["pod a-1 of pipeline a is gone; its log ended"], got)
	assert.True(t, got["pod a-2 of pipeline a appeared; following it"], got)
	write(fl.writer(t, "a-2/pipeline"), stamp(2, "second"))
	assert.Equal(t, "second", next().String(), "a-1 went before a-2 came: one pod at a time, no prefix")
	cancel()
	require.NoError(t, <-done)
}
