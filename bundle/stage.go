package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// StageResult says what Stage did.
type StageResult struct {
	Path   string
	SHA256 string
	Size   int64
	// Skipped: the file was already in place with the expected bytes and
	// mode; nothing was written.
	Skipped bool
	// Existed: a file was at Path before (replaced unless Skipped).
	Existed bool
}

// stageBufSize is the copy chunk: large enough that syscalls and hashing
// calls are amortised, small enough to check the context often.
const stageBufSize = 1 << 20

// Stage writes the bytes of r to dst once, hashing them as they are written:
// into a temporary file in dst's directory, synced, then renamed over dst, so
// dst is either its old self or the complete new file, never a part. When
// want.SHA256 is set and dst already holds those bytes, nothing is written.
// When the bytes read do not match want, the temporary file is removed and a
// *MismatchError returned: nothing half-written is left behind. progress, if
// not nil, receives the running byte count. dst's directory must exist.
func Stage(ctx context.Context, r io.Reader, dst string, perm fs.FileMode, want Expect, progress func(written int64)) (StageResult, error) {
	res := StageResult{Path: dst}
	st, err := os.Lstat(dst)
	switch {
	case err == nil:
		res.Existed = true
		if !st.Mode().IsRegular() {
			return res, fmt.Errorf("stage %s: it exists and is not a regular file (%s)", dst, st.Mode().Type())
		}
		if want.SHA256 != "" && (want.Size < 0 || st.Size() == want.Size) {
			sum, n, err := hashFile(dst)
			if err != nil {
				return res, err
			}
			if sum == want.SHA256 {
				res.SHA256, res.Size = sum, n
				if st.Mode().Perm() == perm.Perm() {
					res.Skipped = true
					return res, nil
				}
				if err := os.Chmod(dst, perm); err != nil {
					return res, fmt.Errorf("stage %s: chmod %o: %w", dst, perm, err)
				}
				return res, nil
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return res, fmt.Errorf("stage %s: %w", dst, err)
	}

	removeLeftovers(dst)
	tmp, err := os.CreateTemp(filepath.Dir(dst), tempPattern(dst))
	if err != nil {
		return res, fmt.Errorf("stage %s: create temporary file: %w", dst, err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := copyHashing(ctx, tmp, r, h, progress)
	if err != nil {
		return res, fmt.Errorf("stage %s: %w", dst, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := want.check(dst, n, sum); err != nil {
		return res, err
	}
	res.SHA256, res.Size = sum, n
	if want.SHA256 == "" && res.Existed && st.Size() == n && st.Mode().Perm() == perm.Perm() {
		// No digest to trust up front: the new bytes were hashed on the
		// way in; when the existing file is identical, keep it.
		if old, _, err := hashFile(dst); err == nil && old == sum {
			res.Skipped = true
			return res, nil
		}
	}
	if err := tmp.Chmod(perm); err != nil {
		return res, fmt.Errorf("stage %s: chmod %o: %w", dst, perm, err)
	}
	if err := tmp.Sync(); err != nil {
		return res, fmt.Errorf("stage %s: sync: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("stage %s: close: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return res, fmt.Errorf("stage %s: rename into place: %w", dst, err)
	}
	keep = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return res, err
	}
	return res, nil
}

func tempPattern(dst string) string { return "." + filepath.Base(dst) + ".tpctl-*" }

// removeLeftovers deletes temporary files an earlier, killed run left next
// to dst. Runs are serialised by the installer's lock, so none is in use.
func removeLeftovers(dst string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), tempPattern(dst)))
	for _, p := range old {
		os.Remove(p)
	}
}

// copyHashing copies r to w and into h, checking ctx between chunks.
func copyHashing(ctx context.Context, w io.Writer, r io.Reader, h hash.Hash, progress func(int64)) (int64, error) {
	buf := make([]byte, stageBufSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := w.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("write: %w", err)
			}
			n += int64(m)
			if progress != nil {
				progress(n)
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return n, nil
		case rerr != nil:
			return n, fmt.Errorf("read: %w", rerr)
		}
	}
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, stageBufSize))
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// HashFile returns the sha256 (hex) and size of the file at path.
func HashFile(path string) (string, int64, error) { return hashFile(path) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// StageArtifact stages one payload artifact, checked against the manifest.
func (b *Bundle) StageArtifact(ctx context.Context, a Artifact, dst string, perm fs.FileMode, progress func(int64)) (StageResult, error) {
	f, err := b.OpenArtifact(a)
	if err != nil {
		return StageResult{Path: dst}, err
	}
	defer f.Close()
	res, err := Stage(ctx, f, dst, perm, Expect{SHA256: a.SHA256, Size: a.Size}, progress)
	var mm *MismatchError
	if errors.As(err, &mm) {
		mm.What = a.String() + " → " + dst
	}
	return res, err
}
