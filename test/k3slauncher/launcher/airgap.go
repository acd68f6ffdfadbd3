package launcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Mirrors K3s: pkg/agent/containerd/containerd.go (pre-import and the
// pinned label) and pkg/agent/containerd/watcher.go (archives that appear
// while running).

// Air-gap images, as K3s handles <data-dir>/agent/images: every archive is
// imported into containerd's k8s.io namespace at start and the images are
// pinned (io.cri-containerd.pinned=pinned, so the kubelet's image garbage
// collection keeps them); archives that appear or change while the node
// runs are imported too; and when the directory holds a .cache.json (K3s's
// opt-in "conditional image imports"), an archive whose size and
// modification time it records is skipped at start.
const (
	PinnedLabel     = "io.cri-containerd.pinned"
	importCacheFile = ".cache.json"
)

// archiveSuffixes are the archives the launcher imports (ctr reads them
// plain, gzip or zstd compressed).
func archiveSuffixes() []string { return []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"} }

func isArchive(name string) bool {
	n := strings.ToLower(name)
	for _, s := range archiveSuffixes() {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// ImportFunc imports one archive into containerd and pins its images,
// returning their references.
type ImportFunc func(ctx context.Context, archive string) ([]string, error)

// fileState is what the import cache and the watcher remember of an archive.
type fileState struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
}

func stateOf(fi os.FileInfo) fileState {
	return fileState{Size: fi.Size(), ModTime: fi.ModTime().UTC()}
}

// airGap imports the images directory.
type airGap struct {
	dir    string
	imp    ImportFunc
	logf   func(format string, args ...any)
	seen   map[string]fileState // what the watcher last saw
	poll   time.Duration
	stable map[string]fileState // a changed file waits one poll to settle
}

func newAirGap(dir string, imp ImportFunc, logf func(string, ...any)) *airGap {
	return &airGap{dir: dir, imp: imp, logf: logf, seen: map[string]fileState{}, stable: map[string]fileState{}, poll: 2 * time.Second}
}

// archives lists the directory's archives with their state, by name.
func (a *airGap) archives() ([]string, map[string]fileState, error) {
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", a.dir, err)
	}
	var names []string
	states := map[string]fileState{}
	for _, e := range ents {
		if e.IsDir() || !isArchive(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		p := filepath.Join(a.dir, e.Name())
		names = append(names, p)
		states[p] = stateOf(fi)
	}
	sort.Strings(names)
	return names, states, nil
}

// loadCache reads .cache.json: nil when there is none (caching off), an
// empty map for an empty file.
func (a *airGap) loadCache() (map[string]fileState, error) {
	raw, err := os.ReadFile(filepath.Join(a.dir, importCacheFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", importCacheFile, err)
	}
	c := map[string]fileState{}
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(a.dir, importCacheFile), err)
	}
	return c, nil
}

func (a *airGap) saveCache(c map[string]fileState) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", importCacheFile, err)
	}
	return writeFileAtomic(filepath.Join(a.dir, importCacheFile), append(raw, '\n'), 0o644)
}

// importAtStart imports every archive (skipping those .cache.json records
// unchanged, when it exists) and remembers them for the watcher.
func (a *airGap) importAtStart(ctx context.Context) error {
	names, states, err := a.archives()
	if err != nil {
		return err
	}
	cache, err := a.loadCache()
	if err != nil {
		return err
	}
	for _, p := range names {
		a.seen[p] = states[p]
		if cache != nil {
			if c, ok := cache[p]; ok && c.Size == states[p].Size && c.ModTime.Equal(states[p].ModTime) {
				a.logf("skipped %s: unchanged since its last import (%s)", filepath.Base(p), importCacheFile)
				continue
			}
		}
		if err := a.importOne(ctx, p); err != nil {
			return err
		}
		if cache != nil {
			cache[p] = states[p]
		}
	}
	if cache != nil {
		for p := range cache {
			if _, ok := states[p]; !ok {
				delete(cache, p)
			}
		}
		return a.saveCache(cache)
	}
	return nil
}

func (a *airGap) importOne(ctx context.Context, p string) error {
	begin := time.Now()
	refs, err := a.imp(ctx, p)
	if err != nil {
		return fmt.Errorf("import images from %s: %w", filepath.Base(p), err)
	}
	a.logf("imported %s in %s (pinned: %s)", filepath.Base(p), time.Since(begin).Round(time.Millisecond), strings.Join(refs, ", "))
	return nil
}

// scan is one look of the watcher: an archive that is new, or whose size
// changed and whose modification time moved forward (K3s's rule), is
// imported once it held still for one poll. Failures are logged; the
// archive is tried again when it changes.
func (a *airGap) scan(ctx context.Context) {
	names, states, err := a.archives()
	if err != nil {
		return // the directory may come back
	}
	for p := range a.seen {
		if _, ok := states[p]; !ok {
			delete(a.seen, p)
		}
	}
	var imported []string
	for _, p := range names {
		st := states[p]
		last, known := a.seen[p]
		if known && (st.Size == last.Size || !st.ModTime.After(last.ModTime)) {
			continue
		}
		if prev, waiting := a.stable[p]; !waiting || prev != st {
			a.stable[p] = st
			continue
		}
		delete(a.stable, p)
		a.seen[p] = st
		if err := a.importOne(ctx, p); err != nil {
			a.logf("warning: %s", err)
			continue
		}
		imported = append(imported, p)
	}
	if len(imported) == 0 {
		return
	}
	cache, err := a.loadCache()
	if err != nil || cache == nil {
		return
	}
	for _, p := range imported {
		cache[p] = states[p]
	}
	if err := a.saveCache(cache); err != nil {
		a.logf("warning: %s", err)
	}
}

// watch scans until ctx ends.
func (a *airGap) watch(ctx context.Context) {
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.scan(ctx)
		}
	}
}

// CtrImport is the ImportFunc over containerd 2's `ctr`: import into
// k8s.io with the pinned label on every image of the archive.
func CtrImport(ctr, socket string) ImportFunc {
	return func(ctx context.Context, archive string) ([]string, error) {
		args := []string{"--address", socket, "-n", "k8s.io", "images", "import", "--label", PinnedLabel + "=pinned", archive}
		cmd := exec.CommandContext(ctx, ctr, args...)
		cmd.Env = ChildEnv(os.Environ())
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return ImportedRefs(out), nil
	}
}

// ImportedRefs reads the references from `ctr images import` output, as
// far as it names them ("unpacking <ref> (sha256:…)...done" of a local
// import; "<ref> saved" of a transfer).
func ImportedRefs(out []byte) []string {
	var refs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "unpacking":
			refs = append(refs, f[1])
		case len(f) == 2 && f[1] == "saved":
			refs = append(refs, f[0])
		}
	}
	return refs
}
