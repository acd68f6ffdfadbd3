package installer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// StateVersion is the state.json schema.
const StateVersion = 1

// Step statuses in the state file.
const (
	StatusDone   = "done"
	StatusFailed = "failed"
)

// Path kinds recorded in the state.
const (
	KindFile    = "file"
	KindDir     = "dir"
	KindSymlink = "symlink"
	// KindRuntime is a path K3s creates at run time that did not exist
	// before the install (its kubelet, CNI and run directories).
	KindRuntime = "runtime"
)

// Created is one path the install brought into existence.
type Created struct {
	Path string `json:"path"` // absolute host path (without the root prefix)
	Kind string `json:"kind"`
	Step string `json:"step,omitempty"`
	// Data marks cluster data that uninstall --keep-data leaves in place.
	Data bool `json:"data,omitempty"`
}

// StepRecord is the last outcome of a step.
type StepRecord struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Error  string    `json:"error,omitempty"`
}

// State is /var/lib/tpctl/state.json: what the install did, for resuming,
// for status, and for uninstall to remove exactly what was created.
type State struct {
	Version   int                   `json:"version"`
	StartedAt time.Time             `json:"startedAt"`
	UpdatedAt time.Time             `json:"updatedAt"`
	Completed bool                  `json:"completed"`
	Steps     map[string]StepRecord `json:"steps"`
	Created   []Created             `json:"created"`
	// Config is the effective configuration of the last run (proxy
	// passwords redacted).
	Config Config `json:"config"`
	Facts  Facts  `json:"facts"`
	// K3s is the K3s the node runs.
	K3s K3sRecord `json:"k3s"`
	// PendingReload / PendingRestart: a unit or K3s file changed and
	// systemd or K3s has not picked it up yet.
	PendingReload  bool `json:"pendingReload,omitempty"`
	PendingRestart bool `json:"pendingRestart,omitempty"`
}

// K3sRecord says which K3s binary the node runs and where it came from.
type K3sRecord struct {
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	// Source is "payload", "file" (--k3s-binary) or "existing".
	Source string `json:"source,omitempty"`
}

// StateStore holds the state in memory and writes it through to disk
// (atomically, 0600) on every change.
type StateStore struct {
	mu   sync.Mutex
	path string
	now  func() time.Time
	s    State
}

// NewStateStore returns an empty store for the state file at path; Load
// reads it (Run does, under the lock).
func NewStateStore(path string, now func() time.Time) *StateStore {
	return &StateStore{path: path, now: now, s: emptyState()}
}

func emptyState() State { return State{Version: StateVersion, Steps: map[string]StepRecord{}} }

// LoadState reads the state at path; a missing file is an empty state.
func LoadState(path string, now func() time.Time) (*StateStore, error) {
	st := NewStateStore(path, now)
	return st, st.Load()
}

// Load (re)reads the state file; a missing file is an empty state.
func (st *StateStore) Load() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s = emptyState()
	raw, err := os.ReadFile(st.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read state %s: %w", st.path, err)
	}
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("read state %s: %w", st.path, err)
	}
	if s.Version != StateVersion {
		return fmt.Errorf("read state %s: version %d is not supported (this tpctl writes %d)", st.path, s.Version, StateVersion)
	}
	if s.Steps == nil {
		s.Steps = map[string]StepRecord{}
	}
	st.s = s
	return nil
}

// Exists reports whether the state was read from disk or has been saved.
func (st *StateStore) Exists() bool {
	_, err := os.Stat(st.path)
	return err == nil
}

// Get returns a copy of the state.
func (st *StateStore) Get() State {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.Steps = make(map[string]StepRecord, len(st.s.Steps))
	for k, v := range st.s.Steps {
		s.Steps[k] = v
	}
	s.Created = slices.Clone(st.s.Created)
	return s
}

// Update changes the state under the lock and saves it.
func (st *StateStore) Update(f func(*State)) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
	return st.saveLocked()
}

// Record adds a created path (once) and saves.
func (st *StateStore) Record(c Created) error {
	return st.Update(func(s *State) {
		for _, e := range s.Created {
			if e.Path == c.Path {
				return
			}
		}
		s.Created = append(s.Created, c)
	})
}

// Forget drops recorded paths (after uninstall removed them) and saves.
func (st *StateStore) Forget(paths ...string) error {
	return st.Update(func(s *State) {
		s.Created = slices.DeleteFunc(s.Created, func(c Created) bool { return slices.Contains(paths, c.Path) })
	})
}

// CreatedUnder reports whether p or one of its parents was recorded.
func (st *StateStore) CreatedUnder(p string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range st.s.Created {
		if c.Path == p || strings.HasPrefix(p, strings.TrimSuffix(c.Path, "/")+"/") {
			return true
		}
	}
	return false
}

func (st *StateStore) saveLocked() error {
	if st.s.StartedAt.IsZero() {
		st.s.StartedAt = st.now()
	}
	st.s.UpdatedAt = st.now()
	raw, err := json.MarshalIndent(st.s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(st.path, append(raw, '\n'), 0o600)
}

// Remove deletes the state file.
func (st *StateStore) Remove() error {
	if err := os.Remove(st.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state %s: %w", st.path, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}
