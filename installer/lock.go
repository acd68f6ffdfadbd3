package installer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock is an exclusive flock on the lock file, held for a whole run.
type Lock struct{ f *os.File }

// LockedError says another tpctl holds the lock.
type LockedError struct {
	Path string
	PID  int // 0 when the holder did not write its PID yet
}

func (e *LockedError) Error() string {
	who := "another tpctl"
	if e.PID > 0 {
		who = fmt.Sprintf("another tpctl (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s is installing or uninstalling on this host (lock %s); wait for it to finish, or stop it, then run again", who, e.Path)
}

// AcquireLock takes the lock at path without waiting, and writes this
// process's PID into it. The lock is released by Unlock or by the process's
// death, so a killed run never leaves a stale lock behind.
func AcquireLock(path string, pid int) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			raw, _ := os.ReadFile(path)
			holder, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			return nil, &LockedError{Path: path, PID: holder}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. The file stays (removing it would race with a
// run that just opened it).
func (l *Lock) Unlock() error {
	if err := l.f.Truncate(0); err != nil {
		l.f.Close()
		return fmt.Errorf("clear lock: %w", err)
	}
	return l.f.Close()
}
