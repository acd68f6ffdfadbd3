package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	bundle "github.com/tpctl/tpctl/bundle"
)

// HostFS writes below Root (the host's "/", or a temporary directory in
// tests) and records in the state every directory and file it creates.
type HostFS struct {
	Root  string
	State *StateStore
	// afterWrite, when set (tests), is called right after each file,
	// directory or link is written, before its record is settled: the
	// point where a killed run leaves its state.
	afterWrite func(path string)
}

// Path maps an absolute host path below Root.
func (h *HostFS) Path(p string) string { return filepath.Join(h.Root, p) }

// Exists reports whether p exists (without following a final symlink).
func (h *HostFS) Exists(p string) bool {
	_, err := os.Lstat(h.Path(p))
	return err == nil
}

// create makes the absent path p with act, recording it first as pending
// and then as created: a run killed at any point leaves every path it made
// recorded. When p exists already act still runs (to replace a file), and
// nothing is recorded: the path is not the install's.
func (h *HostFS) create(c Created, act func() error) error {
	if h.Exists(c.Path) {
		err := act()
		h.written(c.Path)
		return err
	}
	c.Pending = true
	if err := h.State.Record(c); err != nil {
		return err
	}
	err := act()
	h.written(c.Path)
	if !h.Exists(c.Path) {
		// Never created: nothing to record.
		return errors.Join(err, h.State.Forget(c.Path))
	}
	c.Pending = false
	return errors.Join(err, h.State.Record(c))
}

func (h *HostFS) written(p string) {
	if h.afterWrite != nil {
		h.afterWrite(p)
	}
}

// MkdirAll creates p and its missing parents with perm, recording each
// directory before it creates it, top-down.
func (h *HostFS) MkdirAll(p, step string, perm fs.FileMode, data bool) error {
	var missing []string
	for d := filepath.Clean(p); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(h.Path(d))
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("create %s: %s is not a directory", p, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create %s: %w", p, err)
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		err := h.create(Created{Path: d, Kind: KindDir, Step: step, Data: data}, func() error {
			if err := os.Mkdir(h.Path(d), perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create directory %s: %w", d, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Same reports whether p holds exactly data with mode perm.
func (h *HostFS) Same(p string, data []byte, perm fs.FileMode) (bool, error) {
	st, err := os.Lstat(h.Path(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("stat %s: %w", p, err)
	case !st.Mode().IsRegular() || st.Mode().Perm() != perm.Perm() || st.Size() != int64(len(data)):
		return false, nil
	}
	cur, err := os.ReadFile(h.Path(p))
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	return bytes.Equal(cur, data), nil
}

// WriteFile writes data to p atomically (creating its directory) unless p
// already holds it, records p when it is new (before the rename that makes
// it appear), and reports whether anything changed.
func (h *HostFS) WriteFile(ctx context.Context, p, step string, data []byte, perm fs.FileMode) (bool, error) {
	if err := h.MkdirAll(filepath.Dir(p), step, 0o755, false); err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	var res bundle.StageResult
	err := h.create(Created{Path: p, Kind: KindFile, Step: step}, func() error {
		var err error
		res, err = bundle.Stage(ctx, bytes.NewReader(data), h.Path(p), perm, bundle.Expect{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}, nil)
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return !res.Skipped, nil
}

// Symlink creates p → target unless p exists, recording it first.
func (h *HostFS) Symlink(target, p, step string) (bool, error) {
	if h.Exists(p) {
		return false, nil
	}
	if err := h.MkdirAll(filepath.Dir(p), step, 0o755, false); err != nil {
		return false, err
	}
	err := h.create(Created{Path: p, Kind: KindSymlink, Step: step}, func() error {
		if err := os.Symlink(target, h.Path(p)); err != nil {
			return fmt.Errorf("link %s → %s: %w", p, target, err)
		}
		return nil
	})
	return err == nil, err
}

// inside reports whether p is dir or below it.
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
