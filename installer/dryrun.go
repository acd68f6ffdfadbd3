package installer

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Describer is a step that says in words what it does.
type Describer interface{ Describe() string }

// FileLister is a step that writes files the dry run can show.
type FileLister interface{ Files() []FilePreview }

// deferrer is a step that waits for something the user does first (the
// charts while cni: cilium has no network plugin yet).
type deferrer interface{ Deferred() string }

// blocker is a step that would stop the run (preflight with failing
// checks).
type blocker interface{ Blocks() error }

// StepPreview is one step of a dry run.
type StepPreview struct {
	Name string `json:"name"`
	// Would is "run", "no change", "deferred" (Note says until when), "fail"
	// or "unknown" (Error says why).
	Would       string        `json:"would"`
	Description string        `json:"description,omitempty"`
	Note        string        `json:"note,omitempty"`
	Error       string        `json:"error,omitempty"`
	Files       []FilePreview `json:"files,omitempty"`
}

// DryRunReport is what a plan would do.
type DryRunReport struct {
	Plan  string        `json:"plan"`
	Steps []StepPreview `json:"steps"`
	// StateError says why the install state could not be read; steps then
	// judge "done" without it.
	StateError string `json:"stateError,omitempty"`
}

// DryRun runs every gate's check (a read of the host), asks every step
// whether it is done (a read) and what it would write; it changes nothing
// and takes no lock. Secrets are redacted.
func DryRun(ctx context.Context, p *Plan) DryRunReport {
	rep := DryRunReport{Plan: p.Name}
	// Steps judge "done" partly from the recorded state, as Run does.
	if p.State != nil {
		if err := p.State.Load(); err != nil {
			rep.StateError = err.Error()
		}
	}
	for _, s := range p.Steps {
		sp := StepPreview{Name: s.Name(), Would: "run"}
		if d, ok := s.(Describer); ok {
			sp.Description = d.Describe()
		}
		// A gate checks the host here as in Run: what it finds (preflight's
		// facts) shapes what the later steps would write.
		var err error
		if g, ok := s.(Gate); ok {
			err = g.Check(ctx)
		}
		done := false
		if err == nil {
			done, err = s.Done(ctx)
		}
		switch {
		case err != nil:
			sp.Would, sp.Error = "unknown", err.Error()
		case done:
			sp.Would = "no change"
		}
		if b, ok := s.(blocker); ok && b.Blocks() != nil {
			sp.Would, sp.Error = "fail", b.Blocks().Error()
		}
		if n, ok := s.(Noter); ok {
			sp.Note = n.Note()
		}
		if d, ok := s.(deferrer); ok {
			sp.Would, sp.Note = "deferred", d.Deferred()
		}
		if f, ok := s.(FileLister); ok {
			sp.Files = f.Files()
		}
		rep.Steps = append(rep.Steps, sp)
	}
	return rep
}

// WriteDryRun renders a dry run as text.
func WriteDryRun(w io.Writer, rep DryRunReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Dry run of %s: %d steps, nothing is changed.\n", rep.Plan, len(rep.Steps))
	if rep.StateError != "" {
		fmt.Fprintf(&b, "Warning: cannot read the install state (%s); steps are judged without it.\n", rep.StateError)
	}
	for i, s := range rep.Steps {
		would := "would run"
		if s.Would != "run" {
			would = s.Would
		}
		fmt.Fprintf(&b, "\n%d. %s — %s\n", i+1, s.Name, would)
		if s.Description != "" {
			fmt.Fprintf(&b, "   %s\n", s.Description)
		}
		if s.Note != "" {
			fmt.Fprintf(&b, "   %s\n", s.Note)
		}
		switch {
		case s.Error != "" && s.Would == "fail":
			fmt.Fprintf(&b, "   %s\n", s.Error)
		case s.Error != "":
			fmt.Fprintf(&b, "   cannot tell: %s\n", s.Error)
		}
		for _, f := range s.Files {
			fmt.Fprintf(&b, "   %s", f.Path)
			if f.Mode != 0 {
				fmt.Fprintf(&b, " (%04o)", f.Mode.Perm())
			}
			switch {
			case f.Content != "":
				b.WriteString(":\n")
				for _, line := range strings.SplitAfter(strings.TrimSuffix(f.Content, "\n"), "\n") {
					fmt.Fprintf(&b, "     | %s", line)
				}
				b.WriteString("\n")
			case f.Source != "":
				fmt.Fprintf(&b, " ← %s", f.Source)
				if f.Size > 0 {
					fmt.Fprintf(&b, ", %s", formatBytes(f.Size))
				}
				if f.SHA256 != "" {
					fmt.Fprintf(&b, ", sha256 %s", f.SHA256)
				}
				b.WriteString("\n")
			default:
				b.WriteString("\n")
			}
			if f.Note != "" {
				fmt.Fprintf(&b, "     %s\n", f.Note)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
