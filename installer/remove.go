package installer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// How uninstall removes a path.
const (
	// removeFile: a file or symlink the install created.
	removeFile = "file"
	// removeTree: K3s's own (its data dir's server/, agent/, data/ and
	// storage/, /etc/rancher/node, the kubeconfig it writes, the run-time
	// directories it created), with everything below it on its own file
	// system.
	removeTree = "tree"
	// removeEmpty: a directory the install created, removed only when
	// nothing but what uninstall removed was in it.
	removeEmpty = "empty dir"
)

// removal is one path the remove step takes away.
type removal struct {
	Path string `json:"path"`
	How  string `json:"how"`
}

// nodeConfigDir holds the node password K3s generates for this node; the
// datastore keeps its hash (the <node>.node-password.k3s Secret), so the two
// are cluster data: --keep-data keeps both or the node is refused later.
const nodeConfigDir = "/etc/rancher/node"

// k3sOwned are the paths K3s creates and fills itself. They are removed
// whole, also inside a data dir that existed before the install.
func k3sOwned(c Config) []string {
	var out []string
	for _, d := range []string{"server", "agent", "data", "storage"} {
		out = append(out, filepath.Join(c.DataDir, d))
	}
	return append(out, nodeConfigDir, KubeconfigPath)
}

// removalPlan lists what uninstall removes, deepest first: K3s's own paths
// and run-time directories as trees, the recorded files, and the recorded
// directories when empty. Every recorded path must pass allowedRecord, or
// nothing is planned. keepData leaves the data dir and what is marked as
// cluster data.
func removalPlan(st State, c Config, keepData bool) ([]removal, error) {
	keep := func(p string, data bool) bool {
		return keepData && (data || inside(p, c.DataDir) || inside(p, nodeConfigDir))
	}
	var trees []string
	for _, k := range k3sOwned(c) {
		if !keep(k, false) {
			trees = append(trees, k)
		}
	}
	for _, e := range st.Created {
		if err := allowedRecord(e, c); err != nil {
			return nil, fmt.Errorf("%w: the install state cannot be trusted, so nothing is removed", err)
		}
		if e.Kind == KindRuntime && !keep(e.Path, e.Data) {
			trees = append(trees, e.Path)
		}
	}
	belowTree := func(p string) bool {
		for _, t := range trees {
			if p != t && inside(p, t) {
				return true
			}
		}
		return false
	}
	planned := map[string]removal{}
	for _, t := range trees {
		if !belowTree(t) {
			planned[t] = removal{Path: t, How: removeTree}
		}
	}
	for _, e := range st.Created {
		if _, ok := planned[e.Path]; ok || keep(e.Path, e.Data) || belowTree(e.Path) {
			continue
		}
		how := removeFile
		if e.Kind == KindDir {
			how = removeEmpty
		}
		planned[e.Path] = removal{Path: e.Path, How: how}
	}
	out := make([]removal, 0, len(planned))
	for _, r := range planned {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		di, dj := strings.Count(out[i].Path, "/"), strings.Count(out[j].Path, "/")
		if di != dj {
			return di > dj
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// keptPath is a path uninstall leaves, and why.
type keptPath struct {
	Path string
	Why  string
}

// remover removes host paths below root without ever crossing into another
// file system or a mount point: those are left and reported. dry only
// pretends, to tell what would be removed and what kept.
type remover struct {
	root   string
	mounts map[string]bool
	dry    bool
	gone   map[string]bool
	kept   []keptPath
}

// newRemover takes the mount points as the mount table lists them (real
// paths, below root in tests).
func newRemover(root string, mountPoints []string, dry bool) *remover {
	r := &remover{root: root, mounts: map[string]bool{}, dry: dry, gone: map[string]bool{}}
	for _, m := range mountPoints {
		if rel, err := filepath.Rel(filepath.Clean(root), m); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			r.mounts[filepath.Join("/", rel)] = true
		}
	}
	return r
}

func (r *remover) real(p string) string { return filepath.Join(r.root, p) }

func (r *remover) keep(p, why string) { r.kept = append(r.kept, keptPath{Path: p, Why: why}) }

// unlink removes one file or empty directory (dry: does nothing).
func (r *remover) unlink(p string) error {
	if r.dry {
		return nil
	}
	if err := os.Remove(r.real(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// do removes one planned path. It reports whether the path existed.
func (r *remover) do(rm removal) (bool, error) {
	st, err := os.Lstat(r.real(rm.Path))
	if errors.Is(err, fs.ErrNotExist) {
		r.gone[rm.Path] = true
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", rm.Path, err)
	}
	if r.mounts[rm.Path] {
		r.keep(rm.Path, "is a mount point: unmount it, then remove it")
		return true, nil
	}
	switch {
	case rm.How == removeTree && st.IsDir():
		all, err := r.walk(rm.Path, devOf(st))
		if err != nil {
			return true, err
		}
		if !all {
			r.keep(rm.Path, "not removed whole: it holds what is kept below")
		}
		return true, nil
	case rm.How == removeEmpty:
		return true, r.emptyDir(rm.Path, st)
	case st.IsDir():
		r.keep(rm.Path, "the install wrote a file here; it is a directory now")
		return true, nil
	}
	if err := r.unlink(rm.Path); err != nil {
		return true, fmt.Errorf("remove %s: %w", rm.Path, err)
	}
	r.gone[rm.Path] = true
	return true, nil
}

// walk removes dir and everything below it on file system dev; it reports
// whether all of it went.
func (r *remover) walk(dir string, dev uint64) (bool, error) {
	ents, err := os.ReadDir(r.real(dir))
	if errors.Is(err, fs.ErrNotExist) {
		r.gone[dir] = true
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", dir, err)
	}
	all := true
	for _, e := range ents {
		c := path.Join(dir, e.Name())
		if r.mounts[c] {
			r.keep(c, "is a mount point: left mounted, with what it holds")
			all = false
			continue
		}
		if !e.IsDir() {
			if err := r.unlink(c); err != nil {
				return false, fmt.Errorf("remove %s: %w", c, err)
			}
			continue
		}
		st, err := os.Lstat(r.real(c))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("remove %s: %w", c, err)
		}
		if devOf(st) != dev {
			r.keep(c, "is on another file system: left as it is")
			all = false
			continue
		}
		ok, err := r.walk(c, dev)
		if err != nil {
			return false, err
		}
		all = all && ok
	}
	if !all {
		return false, nil
	}
	if err := r.unlink(dir); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			r.keep(dir, "something appeared in it during the removal")
			return false, nil
		}
		return false, fmt.Errorf("remove %s: %w", dir, err)
	}
	r.gone[dir] = true
	return true, nil
}

// emptyDir removes a directory the install created when nothing is left in
// it; otherwise it is kept, naming what it holds.
func (r *remover) emptyDir(p string, st fs.FileInfo) error {
	if !st.IsDir() {
		r.keep(p, "the install made a directory here; it is not one now")
		return nil
	}
	ents, err := os.ReadDir(r.real(p))
	if err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	var left []string
	for _, e := range ents {
		if !r.gone[path.Join(p, e.Name())] {
			left = append(left, e.Name())
		}
	}
	if len(left) > 0 {
		r.keep(p, "created by the install, but it holds "+listNames(left)+" that uninstall does not remove")
		return nil
	}
	if err := r.unlink(p); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			r.keep(p, "created by the install; something appeared in it during the removal")
			return nil
		}
		return fmt.Errorf("remove %s: %w", p, err)
	}
	r.gone[p] = true
	return nil
}

// tree removes p whole (tpctl's own state and log directories).
func (r *remover) tree(p string) error {
	_, err := r.do(removal{Path: p, How: removeTree})
	return err
}

func listNames(names []string) string {
	sort.Strings(names)
	if len(names) > 5 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
	}
	return strings.Join(names, ", ")
}

func devOf(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Dev)
	}
	return 0
}

// removeStep removes what the install recorded, and K3s's own paths.
type removeStep struct {
	env      *Env
	ops      HostOps
	keepData bool
}

func (s *removeStep) Name() string { return "remove files" }

func (s *removeStep) Describe() string {
	what := "remove the files and directories the install created (recorded in " + StatePath + "): a directory only when nothing else is in it; " +
		"K3s's own (" + strings.Join(k3sOwned(s.env.Config), ", ") + " and its run-time directories) with everything below them; never across a mount point. " +
		"Then systemctl reset-failed " + UnitName + " and daemon-reload"
	if s.keepData {
		what += "; K3s's data dir is kept"
	}
	return what
}

func (s *removeStep) plan() ([]removal, error) {
	return removalPlan(s.env.State.Get(), s.env.Config, s.keepData)
}

// Files lists what would be removed, and what kept and why.
func (s *removeStep) Files() []FilePreview {
	plan, err := s.plan()
	if err != nil {
		return []FilePreview{{Path: StatePath, Note: err.Error()}}
	}
	mounts, err := s.ops.mountPoints()
	if err != nil {
		return []FilePreview{{Path: "/proc/self/mountinfo", Note: err.Error()}}
	}
	rm := newRemover(s.env.Root, mounts, true)
	var out []FilePreview
	for _, p := range plan {
		existed, err := rm.do(p)
		switch {
		case err != nil:
			out = append(out, FilePreview{Path: p.Path, Note: "cannot tell: " + err.Error()})
		case existed && rm.gone[p.Path]:
			note := "remove (" + p.How + ")"
			if p.How == removeTree {
				note = "remove with everything below it (K3s's)"
			}
			out = append(out, FilePreview{Path: p.Path, Note: note})
		}
	}
	for _, k := range rm.kept {
		out = append(out, FilePreview{Path: k.Path, Note: "keep: " + k.Why})
	}
	return out
}

func (s *removeStep) Done(context.Context) (bool, error) {
	plan, err := s.plan()
	if err != nil {
		return false, err
	}
	for _, p := range plan {
		if s.env.FS.Exists(p.Path) {
			return false, nil
		}
	}
	return true, nil
}

func (s *removeStep) Run(_ context.Context, ev Events) error {
	plan, err := s.plan()
	if err != nil {
		return err
	}
	mounts, err := s.ops.mountPoints()
	if err != nil {
		return err
	}
	rm := newRemover(s.env.Root, mounts, false)
	var done []string
	removed := 0
	for _, p := range plan {
		existed, err := rm.do(p)
		if err != nil {
			return errors.Join(err, s.env.State.Forget(done...))
		}
		done = append(done, p.Path)
		if existed && rm.gone[p.Path] {
			removed++
		}
	}
	// Kept paths are forgotten too: they are left on purpose.
	if err := s.env.State.Forget(done...); err != nil {
		return err
	}
	for _, k := range rm.kept {
		logf(ev, true, "kept %s: %s", k.Path, k.Why)
	}
	if len(rm.kept) > 0 {
		summarize(ev, "removed %d paths, kept %d (listed above)", removed, len(rm.kept))
	} else {
		summarize(ev, "removed %d paths", removed)
	}
	return nil
}
