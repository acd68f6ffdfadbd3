package operator

import (
	"context"
	"sync/atomic"
)

// portWork lets pipelines build their objects one at a time while the
// instance reconciler writes port assignments. Both reconcilers write to
// the same API server: when thousands of pipelines are created at once,
// the writes that build each pipeline's ConfigMap, workload and Service
// (several per pipeline) would otherwise take the API server's capacity
// from the port assignments (one per pipeline), which come first: a
// pipeline is built only once its ports are assigned, and its frontends
// are what its users wait for. Builds never stop: one runs at a time
// while assignments are written, all run otherwise. Make it with
// newPortWork; a nil *portWork never holds a build back.
type portWork struct {
	writing atomic.Int32
	// one admits one build at a time while assignments are written.
	one chan struct{}
}

func newPortWork() *portWork {
	return &portWork{one: make(chan struct{}, 1)}
}

// begin marks port assignments as being written until end is called.
func (w *portWork) begin() (end func()) {
	if w == nil {
		return func() {}
	}
	w.writing.Add(1)
	return func() { w.writing.Add(-1) }
}

// build waits, while port assignments are being written, until no other
// build holds the turn, or ctx ends (an error). release ends the turn.
func (w *portWork) build(ctx context.Context) (release func(), err error) {
	if w == nil || w.writing.Load() == 0 {
		return func() {}, nil
	}
	select {
	case w.one <- struct{}{}:
		return func() { <-w.one }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
