package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// maxManifestSize bounds the manifest read into memory.
const maxManifestSize = 4 << 20

// ReadManifest reads an archive's manifest (its first entry) without
// checking the parts.
func ReadManifest(path string) (Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s is not a gzip archive: %w", path, err)
	}
	defer gz.Close()
	return readManifest(tar.NewReader(gz), path)
}

func readManifest(tr *tar.Reader, path string) (Manifest, error) {
	h, err := tr.Next()
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: read the first entry: %w", path, err)
	}
	if h.Name != ManifestName {
		return Manifest{}, fmt.Errorf("%s: the first entry is %q, not %s", path, h.Name, ManifestName)
	}
	if h.Size > maxManifestSize {
		return Manifest{}, fmt.Errorf("%s: %s is larger than %d bytes", path, ManifestName, maxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(tr, maxManifestSize))
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: read %s: %w", path, ManifestName, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %s is not valid: %w", path, ManifestName, err)
	}
	return m, nil
}

// Verify reads the whole archive and checks every part against the
// manifest: each listed part present once, with its size and sha256, and
// nothing else. When dir is not "", the parts are written below it (files
// 0600, directories 0700) as they are read. A mismatch is a *DigestError
// naming the part.
func Verify(path, dir string) (Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s is not a gzip archive: %w", path, err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	m, err := readManifest(tr, path)
	if err != nil {
		return Manifest{}, err
	}
	if err := m.validate(); err != nil {
		return Manifest{}, err
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("%s: %w", path, err)
		}
		want, ok := m.part(h.Name)
		if !ok {
			return Manifest{}, &DigestError{Part: h.Name, Reason: "is in the archive but not in the manifest"}
		}
		if seen[h.Name] {
			return Manifest{}, &DigestError{Part: h.Name, Reason: "is in the archive twice"}
		}
		seen[h.Name] = true
		if h.Typeflag != tar.TypeReg {
			return Manifest{}, &DigestError{Part: h.Name, Reason: "is not a regular file"}
		}
		if h.Size != want.Size {
			return Manifest{}, &DigestError{Part: h.Name, Reason: fmt.Sprintf("size %d, manifest says %d", h.Size, want.Size)}
		}
		if err := copyPart(tr, h.Name, want, dir); err != nil {
			return Manifest{}, err
		}
	}
	for _, p := range m.Parts {
		if !seen[p.Path] {
			return Manifest{}, &DigestError{Part: p.Path, Reason: "is in the manifest but not in the archive"}
		}
	}
	return m, nil
}

// copyPart hashes one entry (and writes it below dir when set).
func copyPart(r io.Reader, name string, want Part, dir string) error {
	h := sha256.New()
	w := io.Writer(h)
	var out *os.File
	if dir != "" {
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return fmt.Errorf("make %s: %w", filepath.Dir(target), err)
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write %s: %w", target, err)
		}
		defer f.Close()
		out = f
		w = io.MultiWriter(h, f)
	}
	n, err := io.Copy(w, io.LimitReader(r, want.Size+1))
	if err != nil {
		return fmt.Errorf("read part %s: %w", name, err)
	}
	if n != want.Size {
		return &DigestError{Part: name, Reason: fmt.Sprintf("size %d, manifest says %d", n, want.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return &DigestError{Part: name, Reason: fmt.Sprintf("sha256 %s, manifest says %s", got, want.SHA256)}
	}
	if out != nil {
		if err := out.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", out.Name(), err)
		}
	}
	return nil
}

// Entry is one archive in a backup directory.
type Entry struct {
	Name         string    `json:"name"`
	Path         string    `json:"path"`
	Size         int64     `json:"size"`
	CreatedAt    time.Time `json:"createdAt,omitzero"`
	Reason       string    `json:"reason,omitempty"`
	TpctlVersion string    `json:"tpctlVersion,omitempty"`
	K3sVersion   string    `json:"k3sVersion,omitempty"`
	// Error says why the manifest could not be read.
	Error string `json:"error,omitempty"`
}

// List returns the archives (*.tar.gz) in dir, newest first; a missing
// directory is an empty list. An archive whose manifest cannot be read is
// listed with its Error.
func List(dir string) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []Entry
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".tar.gz") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		en := Entry{Name: e.Name(), Path: p}
		if fi, err := e.Info(); err == nil {
			en.Size = fi.Size()
		}
		m, err := ReadManifest(p)
		if err != nil {
			en.Error = err.Error()
		} else {
			en.CreatedAt, en.Reason, en.TpctlVersion, en.K3sVersion = m.CreatedAt, m.Reason, m.TpctlVersion, m.K3sVersion
		}
		out = append(out, en)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	return out, nil
}
