package operator

import (
	"context"
	"sync/atomic"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// DefaultIdleAfter is how long the reconcilers must have been quiet after
// a burst of work before the operator returns its free heap to the system.
const DefaultIdleAfter = 5 * time.Second

// idleReturner gives the memory a burst of reconciles used back to the
// system once they are over. The Go runtime would keep the heap it grew
// to for minutes (until a periodic collection and its gradual scavenger
// bring it down), so after a thousand pipelines are created the operator
// would hold at rest the memory the burst needed. Here, when reconciles
// ran during one period of quiet and none during the next, free (a full
// collection that releases all free memory: debug.FreeOSMemory, and the
// resident pages of the binary's code and read-only data that start-up
// and the burst touched: DropBinaryPages) runs once.
type idleReturner struct {
	quiet time.Duration
	free  func()
	// reconciles counts reconciles (see wrap).
	reconciles atomic.Int64
	// seen and busy are step's: the count at the last step, and whether
	// it had changed since the step before.
	seen int64
	busy bool
}

func newIdleReturner(quiet time.Duration, free func()) *idleReturner {
	if quiet <= 0 {
		quiet = DefaultIdleAfter
	}
	return &idleReturner{quiet: quiet, free: free}
}

// wrap counts the reconciles of r.
func (i *idleReturner) wrap(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
		i.reconciles.Add(1)
		return r.Reconcile(ctx, req)
	})
}

// Start implements manager.Runnable: it frees once at once (what start-up
// touched: package initialisation, the first lists) and then after every
// burst, until ctx ends.
func (i *idleReturner) Start(ctx context.Context) error {
	i.free()
	t := time.NewTicker(i.quiet)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			i.step()
		}
	}
}

// step is one period of Start: it frees when the previous period saw
// reconciles and this one none.
func (i *idleReturner) step() {
	now := i.reconciles.Load()
	switch {
	case now != i.seen:
		i.busy = true
	case i.busy:
		i.busy = false
		i.free()
	}
	i.seen = now
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: a
// stand-by replica has nothing to return.
func (i *idleReturner) NeedLeaderElection() bool { return true }
