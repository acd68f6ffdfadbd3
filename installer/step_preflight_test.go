package installer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight"
)

// newPreflightGate is a preflight step whose preflight finds a cgroup v1 host
// and counts its runs.
func newPreflightGate(t *testing.T, sev preflight.Severity) (*preflightStep, *int) {
	t.Helper()
	runs := 0
	env := &Env{State: NewStateStore(filepath.Join(t.TempDir(), "state.json"), time.Now)}
	env.Preflight = func(context.Context, Config, ...string) (preflight.Report, error) {
		runs++
		rep := preflight.Report{Results: []preflight.Result{{Name: "Swap", Severity: sev, Message: "swap is on"}},
			Facts: preflight.Facts{CgroupVersion: 1, KubeletArgs: []string{"fail-cgroupv1=false"}}}
		rep.Summary.Pass = 37
		if sev == preflight.Fail {
			rep.Summary.Fail = 1
		}
		return rep, nil
	}
	return &preflightStep{env: env}, &runs
}

func TestPreflightDoneOnlyReads(t *testing.T) {
	s, runs := newPreflightGate(t, preflight.Warn)
	ctx := context.Background()

	done, err := s.Done(ctx)
	require.ErrorIs(t, err, errNotChecked)
	assert.False(t, done)
	assert.Equal(t, 0, *runs, "Done runs no preflight")
	assert.Equal(t, Facts{}, s.env.Facts, "Done writes no host facts")

	require.NoError(t, s.Check(ctx))
	assert.Equal(t, 1, *runs)
	assert.Equal(t, Facts{CgroupV1: true, KubeletArgs: []string{"fail-cgroupv1=false"}}, s.env.Facts)
	assert.Equal(t, "37 checks pass, 1 warn: Swap", s.Note())

	s.env.Facts = Facts{}
	done, err = s.Done(ctx)
	require.NoError(t, err)
	assert.True(t, done, "a warning does not stop the run")
	assert.Equal(t, 1, *runs, "Done reads what Check recorded")
	assert.Equal(t, Facts{}, s.env.Facts, "Done writes no host facts")
	assert.NoError(t, s.Blocks())
}

func TestPlanRunsTheGateCheckBeforeDone(t *testing.T) {
	s, runs := newPreflightGate(t, preflight.Warn)
	root := t.TempDir()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &Plan{Name: "install", Steps: []Step{s}, Root: root, PID: 1,
		State: NewStateStore(filepath.Join(root, "state.json"), time.Now),
		Now:   func() time.Time { return clock }}
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), p, rec))
	assert.Equal(t, 1, *runs)
	assert.Equal(t, []string{"preflight"}, rec.of(EventSkipped))
	assert.True(t, s.env.Facts.CgroupV1, "the facts come from the plan's check")

	// A failing check: Check records it, Done reads it, Run stops on it.
	s, _ = newPreflightGate(t, preflight.Fail)
	p.Steps = []Step{s}
	err := Run(context.Background(), p, &recorder{})
	var pe *PreflightError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), "1 preflight check(s) fail: Swap")

	// The dry run runs the same check, so the later steps see the facts.
	s, runs = newPreflightGate(t, preflight.Warn)
	p.Steps = []Step{s}
	rep := DryRun(context.Background(), p)
	assert.Equal(t, 1, *runs)
	assert.True(t, s.env.Facts.CgroupV1)
	require.Len(t, rep.Steps, 1)
	assert.Equal(t, "no change", rep.Steps[0].Would)
	assert.Equal(t, "37 checks pass, 1 warn: Swap", rep.Steps[0].Note)
}
