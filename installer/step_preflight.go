package installer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tpctl/tpctl/preflight"
)

// PreflightError is a preflight run with failing checks; nothing was
// changed.
type PreflightError struct{ Report preflight.Report }

func (e *PreflightError) Error() string {
	var names []string
	for _, r := range e.Report.Results {
		if r.Severity == preflight.Fail {
			names = append(names, r.Name)
		}
	}
	return fmt.Sprintf("%d preflight check(s) fail: %s (run `tpctl preflight` for details and remedies, or pass --ignore-preflight-errors=NAME)",
		len(names), strings.Join(names, ", "))
}

// preflightStep is the gate: it changes nothing, and it is "done" when no
// check fails. Its Check records the host facts the later steps act on.
type preflightStep struct {
	env  *Env
	rep  *preflight.Report
	note string
}

var _ Gate = (*preflightStep)(nil)

func (s *preflightStep) Name() string { return "preflight" }

func (s *preflightStep) Describe() string {
	return "check the host (kernel, cgroups, resources, ports, existing installs) with this configuration"
}

// Done reads the report Check made: the gate is "done" when no check fails.
func (s *preflightStep) Done(context.Context) (bool, error) {
	if s.rep == nil {
		return false, errNotChecked
	}
	return !s.rep.Failed(), nil
}

// errNotChecked is Done or Run of a preflight step whose Check has not run.
var errNotChecked = errors.New("preflight has not run")

// Note is shown with "no change".
func (s *preflightStep) Note() string { return s.note }

// Check runs the preflight with this configuration and records its report,
// its note and the host facts (env.Facts) the later steps act on. It reads
// the host only; the plan runs it every time, before Done.
func (s *preflightStep) Check(ctx context.Context) error {
	if s.env.Preflight == nil {
		return fmt.Errorf("no preflight configured")
	}
	rep, err := s.env.Preflight(ctx, s.env.Config, s.ownEvidence()...)
	if err != nil {
		return err
	}
	s.rep = &rep
	facts := FactsFrom(rep.Facts)
	s.env.Facts = facts
	var warned, failed []string
	for _, r := range rep.Results {
		switch r.Severity {
		case preflight.Warn:
			warned = append(warned, r.Name)
		case preflight.Fail:
			failed = append(failed, r.Name)
		}
	}
	s.note = fmt.Sprintf("%d checks pass", rep.Summary.Pass)
	if len(warned) > 0 {
		s.note += fmt.Sprintf(", %d warn: %s", len(warned), strings.Join(warned, ", "))
	}
	if len(failed) > 0 {
		s.note += fmt.Sprintf(", %d FAIL: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// existingInstallCheck is preflight's check for another K3s or Kubernetes.
const existingInstallCheck = "ExistingInstall"

// ownEvidence names the checks whose failures tpctl itself explains, so they
// are shown as warnings instead of stopping the run: the K3s files of an
// install tpctl began but did not finish (a resumed run), or the K3s the
// user asked tpctl to drive (one already at /usr/local/bin/k3s).
func (s *preflightStep) ownEvidence() []string {
	st := s.env.State.Get()
	if s.env.reuseK3s {
		return []string{existingInstallCheck}
	}
	if st.Completed {
		return nil
	}
	for _, c := range st.Created {
		if c.Path == K3sBinaryPath || c.Path == UnitPath || c.Path == AgentUnitPath || inside(c.Path, "/etc/rancher") || c.Path == s.env.Config.DataDir {
			return []string{existingInstallCheck}
		}
	}
	return nil
}

// Blocks returns the failure a run would stop on (after Check).
func (s *preflightStep) Blocks() error {
	if s.rep != nil && s.rep.Failed() {
		return &PreflightError{Report: *s.rep}
	}
	return nil
}

func (s *preflightStep) Run(ctx context.Context, ev Events) error {
	if s.rep == nil {
		return errNotChecked
	}
	for _, r := range s.rep.Results {
		if r.Severity == preflight.Fail {
			logf(ev, true, "%s: %s", r.Name, r.Message)
		}
	}
	if s.rep.Failed() {
		return &PreflightError{Report: *s.rep}
	}
	summarize(ev, "%s", s.note)
	return nil
}
