package installer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// Pending: the path was absent and is being created; it is recorded
	// before the creation so that a run killed in between leaves no
	// unrecorded path. The next run settles it (ResolvePending).
	Pending bool `json:"pending,omitempty"`
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
	// TpctlVersion is the tpctl that last completed an upgrade of this
	// host ("" before the first upgrade).
	TpctlVersion string `json:"tpctlVersion,omitempty"`
	// Role is RoleAgent on a host `tpctl join` made a K3s agent ("" is the
	// server `tpctl install` makes).
	Role string `json:"role,omitempty"`
	// Join is the server an agent joined (never its token).
	Join *JoinRecord `json:"join,omitempty"`
	// Upgrade is the upgrade in progress (recorded before it changes
	// anything) or the last finished one, kept for `tpctl upgrade
	// --rollback`; nil when there is none.
	Upgrade *UpgradeRecord `json:"upgrade,omitempty"`
}

// Upgrade phases, in order; a rollback goes from any of them to
// UpgradeRollingBack and ends in UpgradeRolledBack.
const (
	UpgradePrepare     = "prepare"      // intent recorded, nothing changed yet
	UpgradeSaved       = "saved"        // previous files kept aside
	UpgradeApplying    = "applying"     // new K3s and releases being put in place
	UpgradeDone        = "done"         // finished; kept for --rollback
	UpgradeRollingBack = "rolling-back" // previous files and releases being restored
	UpgradeRolledBack  = "rolled-back"  // the previous version runs again
)

// UpgradeRecord is what an upgrade needs to finish or to undo itself after
// being killed at any point.
type UpgradeRecord struct {
	Phase     string    `json:"phase"`
	StartedAt time.Time `json:"startedAt"`
	// From/To name the tpctl versions.
	FromTpctl string `json:"fromTpctl,omitempty"`
	ToTpctl   string `json:"toTpctl,omitempty"`
	// FromK3s is the K3s record before the upgrade; ToK3s the new version.
	FromK3s K3sRecord `json:"fromK3s"`
	ToK3s   string    `json:"toK3s,omitempty"`
	// Kept are the files saved before anything was replaced.
	Kept []KeptFile `json:"kept,omitempty"`
	// Releases are the Helm releases' revisions before the upgrade.
	Releases []ReleaseRevision `json:"releases,omitempty"`
	// Snapshot is the pre-upgrade backup archive ("" when none was taken).
	Snapshot string `json:"snapshot,omitempty"`
	// Error is why the upgrade was rolled back.
	Error string `json:"error,omitempty"`
}

// KeptFile is a host file saved aside before an upgrade replaced it.
type KeptFile struct {
	Path   string      `json:"path"`  // the file's host path
	Saved  string      `json:"saved"` // where its copy is (under StateDir)
	SHA256 string      `json:"sha256"`
	Mode   fs.FileMode `json:"mode"`
	// Absent: the file did not exist before the upgrade (a rollback
	// removes it).
	Absent bool `json:"absent,omitempty"`
}

// ReleaseRevision is a Helm release's deployed revision.
type ReleaseRevision struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Revision  int    `json:"revision"`
	Chart     string `json:"chart,omitempty"` // chart version
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

// StateError is a state file that cannot be trusted: unreadable, not
// JSON, of another version, or naming paths tpctl does not create.
type StateError struct {
	Path   string
	Reason error
	// Backup is where a copy of the file was kept (Run makes it), or "".
	Backup string
}

func (e *StateError) Error() string {
	msg := fmt.Sprintf("the install state %s cannot be used: %v", e.Path, e.Reason)
	if e.Backup != "" {
		msg += fmt.Sprintf("; a copy is kept at %s", e.Backup)
	}
	return msg + ". tpctl changed nothing: it does not guess what an install created. Repair the file (or restore an earlier copy) and run again; " +
		"if it cannot be repaired, remove K3s by hand (systemctl disable --now " + UnitName + ", then its unit, /usr/local/bin/k3s, /etc/rancher/k3s and its data dir) and remove the file."
}

func (e *StateError) Unwrap() error { return e.Reason }

// KeepCopy copies the untrusted file aside (once per content) and notes
// where in the error.
func (e *StateError) KeepCopy(now func() time.Time) {
	if e.Backup != "" {
		return
	}
	if b, err := NewStateStore(e.Path, now).KeepCorrupt(); err == nil {
		e.Backup = b
	}
}

// maxStateSize bounds what Load reads: a real state is a few kilobytes.
const maxStateSize = 16 << 20

// Load (re)reads the state file; a missing file is an empty state. A file
// that cannot be trusted (see checkState) is a *StateError and leaves the
// store empty; the file itself is not changed.
func (st *StateStore) Load() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s = emptyState()
	raw, err := readBounded(st.path, maxStateSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &StateError{Path: st.path, Reason: err}
	}
	s, err := parseState(raw)
	if err != nil {
		return &StateError{Path: st.path, Reason: err}
	}
	st.s = s
	return nil
}

// parseState decodes and checks a state file.
func parseState(raw []byte) (State, error) {
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		return State{}, fmt.Errorf("not a state file: %w", err)
	}
	if s.Version != StateVersion {
		return State{}, fmt.Errorf("version %d is not supported (this tpctl writes %d)", s.Version, StateVersion)
	}
	if err := checkState(s); err != nil {
		return State{}, err
	}
	if s.Steps == nil {
		s.Steps = map[string]StepRecord{}
	}
	return s, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return raw, nil
}

// KeepCorrupt copies the state file beside itself as
// state.json.corrupt-<time> (once per content) and returns the copy's path.
func (st *StateStore) KeepCorrupt() (string, error) {
	raw, err := readBounded(st.path, maxStateSize)
	if err != nil {
		return "", fmt.Errorf("keep a copy of %s: %w", st.path, err)
	}
	matches, _ := filepath.Glob(st.path + ".corrupt-*")
	for _, m := range matches {
		if old, err := os.ReadFile(m); err == nil && bytes.Equal(old, raw) {
			return m, nil
		}
	}
	dst := st.path + ".corrupt-" + st.now().UTC().Format("20060102T150405Z")
	if err := writeFileAtomic(dst, raw, 0o600); err != nil {
		return "", err
	}
	return dst, nil
}

// ResolvePending settles the paths a killed run recorded before creating
// them: one that exists now was created by that run (it was absent when
// recorded) and stays recorded; one that does not was never created and is
// dropped.
func (st *StateStore) ResolvePending(exists func(string) bool) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	changed := false
	out := st.s.Created[:0:0]
	for _, c := range st.s.Created {
		if !c.Pending {
			out = append(out, c)
			continue
		}
		changed = true
		if exists(c.Path) {
			c.Pending = false
			out = append(out, c)
		}
	}
	if !changed {
		return nil
	}
	st.s.Created = out
	return st.saveLocked()
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

// Record adds a created path (once) and saves. Recording a path again
// updates its pending mark.
func (st *StateStore) Record(c Created) error {
	return st.Update(func(s *State) {
		for i, e := range s.Created {
			if e.Path == c.Path {
				s.Created[i].Pending = c.Pending
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
