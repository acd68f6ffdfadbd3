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

	bundle "github.com/tpctl/tpctl/embed"
)

// HostFS writes below Root (the host's "/", or a temporary directory in
// tests) and records in the state every directory and file it creates.
type HostFS struct {
	Root  string
	State *StateStore
}

// Path maps an absolute host path below Root.
func (h *HostFS) Path(p string) string { return filepath.Join(h.Root, p) }

// Exists reports whether p exists (without following a final symlink).
func (h *HostFS) Exists(p string) bool {
	_, err := os.Lstat(h.Path(p))
	return err == nil
}

// MkdirAll creates p and its missing parents with perm, recording each
// directory it created, top-down.
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
		if err := os.Mkdir(h.Path(d), perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
		if err := h.State.Record(Created{Path: d, Kind: KindDir, Step: step, Data: data}); err != nil {
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
// already holds it, records p when it is new, and reports whether anything
// changed.
func (h *HostFS) WriteFile(ctx context.Context, p, step string, data []byte, perm fs.FileMode) (bool, error) {
	if err := h.MkdirAll(filepath.Dir(p), step, 0o755, false); err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	res, err := bundle.Stage(ctx, bytes.NewReader(data), h.Path(p), perm, bundle.Expect{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}, nil)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	if !res.Existed {
		if err := h.State.Record(Created{Path: p, Kind: KindFile, Step: step}); err != nil {
			return false, err
		}
	}
	return !res.Skipped, nil
}

// Symlink creates p → target unless p exists, recording it.
func (h *HostFS) Symlink(target, p, step string) (bool, error) {
	if h.Exists(p) {
		return false, nil
	}
	if err := h.MkdirAll(filepath.Dir(p), step, 0o755, false); err != nil {
		return false, err
	}
	if err := os.Symlink(target, h.Path(p)); err != nil {
		return false, fmt.Errorf("link %s → %s: %w", p, target, err)
	}
	return true, h.State.Record(Created{Path: p, Kind: KindSymlink, Step: step})
}

// inside reports whether p is dir or below it.
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
