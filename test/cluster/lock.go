package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLockPath serialises Nodes (and other host-wide harnesses, such as a
// booted systemd host sharing the host network) across test processes.
const DefaultLockPath = "/tmp/tpctl-harness.lock"

// HostLock is an exclusive flock(2) on a file; the kernel drops it when the
// holding process dies, so a crashed test never leaves it held.
type HostLock struct {
	f *os.File
}

// AcquireHostLock blocks until the lock at path is held or ctx ends.
func AcquireHostLock(ctx context.Context, path string) (*HostLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open harness lock %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &HostLock{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for harness lock %s (another node harness runs): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Release drops the lock.
func (l *HostLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	cerr := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock harness lock: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("close harness lock: %w", cerr)
	}
	return nil
}
