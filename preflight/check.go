package preflight

import (
	"context"
	"errors"
)

// errNotFound marks facts that are absent rather than unreadable.
var errNotFound = errors.New("not found")

func (r Result) with(s Severity, msg, remedy string) Result {
	r.Severity, r.Message, r.Remedy = s, msg, remedy
	return r
}

func (r Result) pass(msg string) Result           { return r.with(Pass, msg, "") }
func (r Result) warn(msg, remedy string) Result   { return r.with(Warn, msg, remedy) }
func (r Result) fail(msg, remedy string) Result   { return r.with(Fail, msg, remedy) }
func (r Result) passNote(msg, note string) Result { return r.with(Pass, msg, note) }

// checkFunc is a Check that yields one result under its own name.
type checkFunc struct {
	name string
	run  func(ctx context.Context, h *Host, r Result) Result
}

func (c checkFunc) Name() string { return c.name }

func (c checkFunc) Run(ctx context.Context, h *Host) []Result {
	return []Result{c.run(ctx, h, Result{Name: c.name})}
}
