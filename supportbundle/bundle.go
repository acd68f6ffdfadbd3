// Package supportbundle collects what is needed to diagnose an installed
// node into one tar.gz: host facts (install state and log, the K3s unit,
// journal and configuration, containerd, network, disk, memory) and
// cluster facts (nodes, pods, events, operator and pipeline logs,
// CoreInstances, Pipelines, Helm release history). Every file is redacted
// before it is written; every collector is bounded in time and size; a
// collector that fails is recorded in the index with its error, so a bundle
// taken while the API server is down still holds the host side.
package supportbundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Part tells where a collector reads from.
type Part string

const (
	PartHost    Part = "host"
	PartCluster Part = "cluster"
)

// File is one file a collector produced. A File with Err set and no Data
// records a failure under the path the file would have had.
type File struct {
	Path      string
	Source    string
	Data      []byte
	Truncated bool
	Err       error
	// Tail: when the file is over the size cap, keep its end (logs).
	Tail bool
}

// Collector gathers one kind of fact.
type Collector struct {
	Name   string
	Part   Part
	Source string // what it reads, for --dry-run and the index
	// Collect returns the files; an error with no file is recorded under
	// the collector's name.
	Collect func(ctx context.Context) ([]File, error)
}

// Entry is one line of index.json.
type Entry struct {
	Path      string `json:"path"`
	Collector string `json:"collector"`
	Part      Part   `json:"part"`
	Source    string `json:"source"`
	Size      int    `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Index is index.json, the bundle's table of contents.
type Index struct {
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Version  string    `json:"version,omitempty"`
	Since    string    `json:"since"`
	Took     string    `json:"took"`
	Files    []Entry   `json:"files"`
	Failed   int       `json:"failed"`
	Trunc    int       `json:"truncated"`
	Limits   Limits    `json:"limits"`
	Redacted string    `json:"redaction"`
}

// Limits bound a bundle.
type Limits struct {
	MaxFileBytes     int64         `json:"maxFileBytes"`
	MaxTotalBytes    int64         `json:"maxTotalBytes"`
	CollectorTimeout time.Duration `json:"collectorTimeout"`
	LogLines         int64         `json:"logLines"`
}

// DefaultLimits are the command's defaults.
var DefaultLimits = Limits{MaxFileBytes: 8 << 20, MaxTotalBytes: 64 << 20, CollectorTimeout: 30 * time.Second, LogLines: 500}

// Progress receives one line per collector as it finishes.
type Progress func(done, total int, c Collector, files []Entry, took time.Duration)

// Result is what Collect gathered, ready to write.
type Result struct {
	Index Index
	files map[string][]byte
}

// Collect runs every collector (one after the other, each bounded by the
// limit's timeout and the caller's context), redacts, caps and indexes
// what they return.
func Collect(ctx context.Context, cs []Collector, red *Redactor, lim Limits, host, version string, since time.Duration, now func() time.Time, progress Progress) *Result {
	start := now()
	res := &Result{files: map[string][]byte{}}
	res.Index = Index{Created: start.UTC(), Host: host, Version: version, Since: since.String(), Limits: lim,
		Redacted: "tokens, passwords, proxy credentials, private keys, authorization headers, registry auth; Secrets and K3s token files are never read into the bundle"}
	var total int64
	for i, c := range cs {
		t0 := now()
		files, err := runOne(ctx, c, lim.CollectorTimeout)
		if err != nil {
			// Recorded under the collector's name, next to what it did return.
			files = append(files, File{Path: c.Name, Err: err})
		}
		var entries []Entry
		for _, f := range files {
			e := Entry{Path: f.Path, Collector: c.Name, Part: c.Part, Source: f.Source, Truncated: f.Truncated}
			if e.Source == "" {
				e.Source = c.Source
			}
			if f.Err != nil {
				e.Error = string(red.Text([]byte(f.Err.Error())))
			}
			if f.Data != nil {
				data := red.Text(f.Data)
				if int64(len(data)) > lim.MaxFileBytes {
					data, e.Truncated = cut(data, lim.MaxFileBytes, f.Tail), true
				}
				if room := lim.MaxTotalBytes - total; int64(len(data)) > room {
					if room < 0 {
						room = 0
					}
					data, e.Truncated = cut(data, room, f.Tail), true
					if e.Error == "" {
						e.Error = "the bundle's total size cap was reached"
					}
				}
				if _, dup := res.files[e.Path]; dup {
					e.Path = fmt.Sprintf("%s.%d", e.Path, i)
				}
				res.files[e.Path] = data
				total += int64(len(data))
				e.Size = len(data)
			}
			if e.Error != "" {
				res.Index.Failed++
			}
			if e.Truncated {
				res.Index.Trunc++
			}
			entries = append(entries, e)
		}
		res.Index.Files = append(res.Index.Files, entries...)
		if progress != nil {
			progress(i+1, len(cs), c, entries, now().Sub(t0))
		}
	}
	res.Index.Took = now().Sub(start).Round(time.Millisecond).String()
	return res
}

// runOne runs a collector under its own deadline; one that does not return
// when its context ends is abandoned and recorded as timed out.
func runOne(ctx context.Context, c Collector, timeout time.Duration) (files []File, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("not run: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type out struct {
		files []File
		err   error
	}
	ch := make(chan out, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- out{err: fmt.Errorf("collector panicked: %v", r)}
			}
		}()
		f, err := c.Collect(cctx)
		ch <- out{f, err}
	}()
	select {
	case o := <-ch:
		return o.files, o.err
	case <-cctx.Done():
		// Give a well-behaved collector a moment to return what it has.
		select {
		case o := <-ch:
			return o.files, o.err
		case <-time.After(time.Second):
		}
		if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("timed out after %s", timeout)
		}
		return nil, fmt.Errorf("stopped: %w", cctx.Err())
	}
}

func cut(b []byte, n int64, tail bool) []byte {
	if n >= int64(len(b)) {
		return b
	}
	if tail {
		return b[int64(len(b))-n:]
	}
	return b[:n]
}

// Paths lists the bundle's files in order.
func (r *Result) Paths() []string {
	ps := make([]string, 0, len(r.files))
	for p := range r.files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Data returns a collected file's (redacted) content.
func (r *Result) Data(path string) ([]byte, bool) {
	b, ok := r.files[path]
	return b, ok
}

// Write writes the bundle as tar.gz: index.json first, then every file
// under one top directory named after the archive.
func (r *Result) Write(w io.Writer, dir string, red *Redactor) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	idx, err := json.MarshalIndent(r.Index, "", "  ")
	if err != nil {
		return err
	}
	mtime := r.Index.Created
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/" + name, Mode: 0o600, Size: int64(len(b)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := add("index.json", red.Text(append(idx, '\n'))); err != nil {
		return err
	}
	for _, p := range r.Paths() {
		if err := add(p, r.files[p]); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// WriteFile writes the bundle to path, created with mode 0600; an existing
// file is refused, and a half-written one removed.
func (r *Result) WriteFile(path string, red *Redactor) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	base := path
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	return r.Write(f, strings.TrimSuffix(base, ".tar.gz"), red)
}
