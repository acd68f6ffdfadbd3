package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Step is one idempotent piece of a plan.
type Step interface {
	// Name is short and stable: it names the step in events and in the
	// state file.
	Name() string
	// Done reports whether the host is already as the step would leave
	// it. It only reads.
	Done(ctx context.Context) (bool, error)
	// Run makes the change, reporting progress on ev.
	Run(ctx context.Context, ev Events) error
}

// Gate is a step that checks the host before the plan changes anything.
// Check runs on every run of the plan (and in a dry run), whether or not the
// step turns out to be done: it reads the host and records what it found
// (preflight: its report and the host facts later steps act on). Done then
// reads that record.
type Gate interface {
	Check(ctx context.Context) error
}

// Noter is a step with a remark for its "no change" line (preflight names
// its warnings there).
type Noter interface{ Note() string }

// Plan is an ordered list of steps run against one root.
type Plan struct {
	// Name is "install" or "uninstall".
	Name  string
	Steps []Step
	// Root stands for "/" ("/" in production).
	Root  string
	State *StateStore
	// PID is written into the lock file; Now stamps events and state.
	PID int
	Now func() time.Time
	// Begin runs under the lock once the state is loaded, before the first
	// step: install checks its data dir and saves its configuration there,
	// before anything on the host is written.
	Begin func(ctx context.Context) error
	// OnFinish runs, still under the lock, after the last step succeeded.
	OnFinish func(ctx context.Context, ev Events) error
}

// StepError is the failure of one step.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Run takes the lock (refusing while another run holds it), loads the state,
// and runs the plan's steps in order: a step that is already done is skipped
// ("no change"), the first failing step stops the run. Progress is recorded
// in the state file after every step, so a run that was killed resumes where
// it stopped.
func Run(ctx context.Context, p *Plan, ev Events) error {
	lock, err := AcquireLock(p.Root+LockPath, p.PID)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := p.State.Load(); err != nil {
		var se *StateError
		if errors.As(err, &se) {
			// Kept as it is, and copied aside for whoever repairs it.
			se.KeepCopy(p.Now)
		}
		return err
	}
	// Paths a killed run recorded before creating them.
	if err := p.State.ResolvePending(func(path string) bool {
		_, err := os.Lstat(filepath.Join(p.Root, path))
		return err == nil
	}); err != nil {
		return err
	}
	if p.Begin != nil {
		if err := p.Begin(ctx); err != nil {
			return err
		}
	}
	total := len(p.Steps)
	for i, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s interrupted before %s: %w", p.Name, s.Name(), err)
		}
		sev := &stepEvents{ev: ev, step: s.Name(), index: i + 1, total: total, now: p.Now}
		start := p.Now()
		sev.Emit(Event{Type: EventStarted})
		var err error
		if g, ok := s.(Gate); ok {
			err = g.Check(ctx)
		}
		done := false
		if err == nil {
			done, err = s.Done(ctx)
		}
		if err == nil && done {
			note := ""
			if n, ok := s.(Noter); ok {
				note = n.Note()
			}
			sev.Emit(Event{Type: EventSkipped, Message: note, Elapsed: p.Now().Sub(start)})
			if err := p.record(s.Name(), nil); err != nil {
				return err
			}
			continue
		}
		if err == nil {
			err = s.Run(ctx, sev)
		}
		if err != nil {
			sev.Emit(Event{Type: EventFailed, Error: err.Error(), Elapsed: p.Now().Sub(start)})
			if rerr := p.record(s.Name(), err); rerr != nil {
				return errors.Join(&StepError{Step: s.Name(), Err: err}, rerr)
			}
			return &StepError{Step: s.Name(), Err: err}
		}
		sev.Emit(Event{Type: EventDone, Message: sev.summary, Elapsed: p.Now().Sub(start)})
		if err := p.record(s.Name(), nil); err != nil {
			return err
		}
	}
	if p.OnFinish != nil {
		return p.OnFinish(ctx, ev)
	}
	return nil
}

// record notes a step's outcome; a step already recorded done is not
// rewritten, so a run that changes nothing leaves the state file alone.
func (p *Plan) record(step string, err error) error {
	prev, had := p.State.Get().Steps[step]
	if err == nil && had && prev.Status == StatusDone {
		return nil
	}
	return p.State.Update(func(s *State) {
		r := StepRecord{Status: StatusDone, At: p.Now()}
		if err != nil {
			r.Status, r.Error = StatusFailed, err.Error()
		}
		s.Steps[step] = r
	})
}

// stepEvents stamps a step's events with its name, place and time. A step
// sets the message of its "done" event with Summary.
type stepEvents struct {
	ev           Events
	step         string
	index, total int
	now          func() time.Time
	summary      string
}

func (s *stepEvents) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.Step == "" {
		e.Step, e.Index, e.Total = s.step, s.index, s.total
	}
	s.ev.Emit(e)
}

// Summary sets the message of the step's "done" event.
func (s *stepEvents) Summary(msg string) { s.summary = msg }

// summarize sets the done message when ev belongs to a running step.
func summarize(ev Events, format string, args ...any) {
	if s, ok := ev.(*stepEvents); ok {
		s.Summary(fmt.Sprintf(format, args...))
	}
}

// logf emits a log line.
func logf(ev Events, warning bool, format string, args ...any) {
	ev.Emit(Event{Type: EventLog, Message: fmt.Sprintf(format, args...), Warning: warning})
}
