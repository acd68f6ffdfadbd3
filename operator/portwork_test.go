package operator

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildsOneAtATimeWhilePortsAreWritten: without port writes, builds
// run side by side; while the instance reconciler writes port
// assignments, a second build waits for the first one's turn to end; a
// cancelled wait returns the context's error.
func TestBuildsOneAtATimeWhilePortsAreWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newPortWork()
		r1, err := w.build(ctx)
		require.NoError(t, err)
		r2, err := w.build(ctx)
		require.NoError(t, err, "no port writes: a second build runs beside the first")
		r1()
		r2()

		end := w.begin()
		first, err := w.build(ctx)
		require.NoError(t, err)
		second := make(chan struct{})
		go func() {
			release, err := w.build(ctx)
			assert.NoError(t, err)
			close(second)
			release()
		}()
		synctest.Wait()
		select {
		case <-second:
			t.Fatal("a second build started while the first held the turn during port writes")
		default:
		}
		first()
		synctest.Wait()
		select {
		case <-second:
		default:
			t.Fatal("the second build did not start after the first ended its turn")
		}

		held, err := w.build(ctx)
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := w.build(cctx)
			done <- err
		}()
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		held()
		end()

		var nilWork *portWork
		release, err := nilWork.build(ctx)
		require.NoError(t, err)
		release()
		nilWork.begin()()
	})
}
