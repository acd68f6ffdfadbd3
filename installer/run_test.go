package installer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeStep is done when its file exists; Run creates the file, or fails
// while failRuns > 0.
type fakeStep struct {
	name     string
	path     string
	failRuns int
	runs     int
}

func (s *fakeStep) Name() string { return s.name }

func (s *fakeStep) Done(context.Context) (bool, error) {
	_, err := os.Stat(s.path)
	return err == nil, nil
}

func (s *fakeStep) Run(_ context.Context, ev Events) error {
	s.runs++
	if s.failRuns > 0 {
		s.failRuns--
		return errors.New("disk on fire")
	}
	ev.Emit(Event{Type: EventProgress, Message: "working"})
	return os.WriteFile(s.path, []byte(s.name), 0o600)
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) of(t EventType) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e.Step)
		}
	}
	return out
}

func fakePlan(t *testing.T, root string, steps ...Step) *Plan {
	t.Helper()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	return &Plan{Name: "install", Steps: steps, Root: root, State: NewStateStore(filepath.Join(root, StatePath), now), PID: 4242, Now: now}
}

func threeSteps(dir string) []*fakeStep {
	return []*fakeStep{
		{name: "one", path: filepath.Join(dir, "one")},
		{name: "two", path: filepath.Join(dir, "two")},
		{name: "three", path: filepath.Join(dir, "three")},
	}
}

func asSteps(fs []*fakeStep) []Step {
	out := make([]Step, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

func TestRunSkipsDoneStepsOnRerun(t *testing.T) {
	root := t.TempDir()
	fs := threeSteps(t.TempDir())
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), fakePlan(t, root, asSteps(fs)...), rec))
	assert.Equal(t, []string{"one", "two", "three"}, rec.of(EventDone))
	assert.Empty(t, rec.of(EventSkipped))
	assert.Equal(t, []string{"one", "two", "three"}, rec.of(EventProgress), "a step's own events carry its name")
	for _, e := range rec.events {
		assert.NotZero(t, e.Index)
		assert.Equal(t, 3, e.Total)
		assert.False(t, e.Time.IsZero())
	}
	st, err := LoadState(filepath.Join(root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, StatusDone, st.Get().Steps["three"].Status)
	info, err := os.Stat(filepath.Join(root, StatePath))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// Second run: every step says "no change", nothing runs, and the
	// state file is not rewritten.
	rec2 := &recorder{}
	require.NoError(t, Run(context.Background(), fakePlan(t, root, asSteps(fs)...), rec2))
	assert.Equal(t, []string{"one", "two", "three"}, rec2.of(EventSkipped))
	assert.Empty(t, rec2.of(EventDone))
	for _, f := range fs {
		assert.Equal(t, 1, f.runs, f.name)
	}
	info2, err := os.Stat(filepath.Join(root, StatePath))
	require.NoError(t, err)
	assert.Equal(t, info.ModTime(), info2.ModTime())
}

func TestRunResumesAfterAFailedStep(t *testing.T) {
	root := t.TempDir()
	fs := threeSteps(t.TempDir())
	fs[1].failRuns = 1
	rec := &recorder{}
	err := Run(context.Background(), fakePlan(t, root, asSteps(fs)...), rec)
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "two", se.Step)
	assert.Equal(t, []string{"two"}, rec.of(EventFailed))
	assert.Equal(t, 0, fs[2].runs, "nothing after the failed step runs")
	st, err := LoadState(filepath.Join(root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, StepRecord{Status: StatusFailed, At: st.Get().Steps["two"].At, Error: "disk on fire"}, st.Get().Steps["two"])

	rec2 := &recorder{}
	require.NoError(t, Run(context.Background(), fakePlan(t, root, asSteps(fs)...), rec2))
	assert.Equal(t, []string{"one"}, rec2.of(EventSkipped))
	assert.Equal(t, []string{"two", "three"}, rec2.of(EventDone))
	assert.Equal(t, 1, fs[0].runs)
	st, err = LoadState(filepath.Join(root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, StatusDone, st.Get().Steps["two"].Status)
}

func TestRunRefusesConcurrentRun(t *testing.T) {
	root := t.TempDir()
	held, err := AcquireLock(filepath.Join(root, LockPath), 777)
	require.NoError(t, err)
	fs := threeSteps(t.TempDir())
	err = Run(context.Background(), fakePlan(t, root, asSteps(fs)...), &recorder{})
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 777, le.PID)
	assert.Contains(t, err.Error(), "another tpctl (pid 777) is installing or uninstalling")
	assert.Equal(t, 0, fs[0].runs)
	require.NoError(t, held.Unlock())

	// Released: the next run goes ahead.
	require.NoError(t, Run(context.Background(), fakePlan(t, root, asSteps(fs)...), &recorder{}))
}

func TestRunLockIsHeldDuringTheRun(t *testing.T) {
	root := t.TempDir()
	probe := &probeStep{check: func() error {
		_, err := AcquireLock(filepath.Join(root, LockPath), 1)
		return err
	}}
	require.NoError(t, Run(context.Background(), fakePlan(t, root, probe), &recorder{}))
	var le *LockedError
	require.ErrorAs(t, probe.err, &le)
	assert.Equal(t, 4242, le.PID, "the lock names the running plan's PID")
}

type probeStep struct {
	check func() error
	err   error
}

func (p *probeStep) Name() string                       { return "probe" }
func (p *probeStep) Done(context.Context) (bool, error) { return false, nil }
func (p *probeStep) Run(context.Context, Events) error  { p.err = p.check(); return nil }

func TestRunStopsWhenCancelled(t *testing.T) {
	root := t.TempDir()
	fs := threeSteps(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, fakePlan(t, root, asSteps(fs)...), &recorder{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, fs[0].runs)
}

func TestRunOnFinish(t *testing.T) {
	root := t.TempDir()
	p := fakePlan(t, root, asSteps(threeSteps(t.TempDir()))...)
	called := 0
	p.OnFinish = func(context.Context, Events) error { called++; return nil }
	require.NoError(t, Run(context.Background(), p, &recorder{}))
	assert.Equal(t, 1, called)
}
