package supportbundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Host is what the host-side collectors read: files below a root
// directory, commands run with an argument vector (never a shell) and
// file-system statistics. Tests give a fake tree and a fake Runner.
type Host interface {
	// ReadFile reads at most limit bytes of a host path: its beginning,
	// or its end when tail is set; truncated tells whether more was there.
	ReadFile(path string, limit int64, tail bool) (data []byte, truncated bool, err error)
	// Glob lists host paths matching pattern (filepath.Match syntax).
	Glob(pattern string) ([]string, error)
	// Exists reports whether a host path exists.
	Exists(path string) bool
	// Run runs argv (argv[0] a path or a name looked up in PATH) and
	// returns at most limit bytes of its standard output and error.
	Run(ctx context.Context, limit int64, argv ...string) (out []byte, truncated bool, err error)
	// Statfs returns the usage of the file system holding path.
	Statfs(path string) (DiskUsage, error)
}

// Runner runs a command given as an argument vector.
type Runner interface {
	Run(ctx context.Context, limit int64, argv ...string) (out []byte, truncated bool, err error)
}

// DiskUsage is one statfs result.
type DiskUsage struct {
	Path       string `json:"path"`
	TotalBytes uint64 `json:"totalBytes"`
	FreeBytes  uint64 `json:"freeBytes"`
	AvailBytes uint64 `json:"availableBytes"`
	Inodes     uint64 `json:"inodes"`
	FreeInodes uint64 `json:"freeInodes"`
	Error      string `json:"error,omitempty"`
}

// OSHost reads the host below Root ("/" in production) and runs commands
// through its Runner.
type OSHost struct {
	Root   string
	Runner Runner
}

// NewOSHost returns the host below root whose commands run on this machine.
func NewOSHost(root string) *OSHost { return &OSHost{Root: root, Runner: ExecRunner{}} }

func (h *OSHost) path(p string) string { return filepath.Join(h.Root, p) }

// ReadFile implements Host.
func (h *OSHost) ReadFile(p string, limit int64, tail bool) ([]byte, bool, error) {
	f, err := os.Open(h.path(p))
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if tail {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
			if _, err := f.Seek(st.Size()-limit, io.SeekStart); err != nil {
				return nil, false, err
			}
			b, err := io.ReadAll(io.LimitReader(f, limit))
			return b, true, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}

// Glob implements Host.
func (h *OSHost) Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(h.path(pattern))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for _, p := range m {
		rel, err := filepath.Rel(h.Root, p)
		if err != nil {
			continue
		}
		out = append(out, "/"+filepath.ToSlash(rel))
	}
	return out, nil
}

// Exists implements Host.
func (h *OSHost) Exists(p string) bool {
	_, err := os.Stat(h.path(p))
	return err == nil
}

// Run implements Host.
func (h *OSHost) Run(ctx context.Context, limit int64, argv ...string) ([]byte, bool, error) {
	return h.Runner.Run(ctx, limit, argv...)
}

// Statfs implements Host.
func (h *OSHost) Statfs(p string) (DiskUsage, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(h.path(p), &s); err != nil {
		return DiskUsage{Path: p}, fmt.Errorf("statfs %s: %w", p, err)
	}
	bs := uint64(s.Bsize)
	return DiskUsage{Path: p, TotalBytes: s.Blocks * bs, FreeBytes: s.Bfree * bs, AvailBytes: s.Bavail * bs,
		Inodes: s.Files, FreeInodes: s.Ffree}, nil
}

// ExecRunner runs commands on this machine with os/exec.
type ExecRunner struct{}

// Run implements Runner: output beyond limit is discarded (the command is
// not blocked on a full pipe) and reported as truncated.
func (ExecRunner) Run(ctx context.Context, limit int64, argv ...string) ([]byte, bool, error) {
	if len(argv) == 0 {
		return nil, false, errors.New("no command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	w := &capWriter{limit: limit}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(lastLine(w.buf.Bytes()))
		if msg != "" {
			err = fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
		} else {
			err = fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	return w.buf.Bytes(), w.dropped, err
}

// capWriter keeps the first limit bytes written to it.
type capWriter struct {
	buf     bytes.Buffer
	limit   int64
	dropped bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.limit - int64(w.buf.Len())
	if room <= 0 {
		w.dropped = w.dropped || len(p) > 0
		return len(p), nil
	}
	if int64(len(p)) > room {
		w.buf.Write(p[:room])
		w.dropped = true
		return len(p), nil
	}
	return w.buf.Write(p)
}

func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
