package installer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	bundle "github.com/tpctl/tpctl/bundle"
)

// MinK3sMinor is the oldest Kubernetes minor of a K3s tpctl drives (its
// containerd 2 config layout and the kubelet flags it writes).
const MinK3sMinor = 33

// stageItem is one file to put in place.
type stageItem struct {
	what string
	dst  string // host path
	perm fs.FileMode
	data bool
	size int64  // -1 when unknown
	sha  string // expected digest; "" until learned from the source
	// src is a file on disk (hashed to learn sha when none was given);
	// art an embedded artifact.
	src        string
	art        *bundle.Artifact
	unverified bool
	// pipelineImage: the default pipeline image, not one of K3s's.
	pipelineImage bool
}

// stageStep stages the K3s binary and air-gap images, and links kubectl,
// crictl and ctr to the binary as K3s's own installer does.
type stageStep struct {
	env   *Env
	items []*stageItem
	links []string
	k3s   K3sRecord
	// noImages: nothing to import; K3s pulls its images (not in air-gap).
	noImages bool
}

func (s *stageStep) Name() string { return "stage payload" }

func newStageStep(ctx context.Context, env *Env) (*stageStep, error) {
	s := &stageStep{env: env}
	b := env.Bundle
	if b == nil {
		b = &bundle.Bundle{Arch: "unknown"}
	}
	manifestEntry := func(kind bundle.Kind, name string) *bundle.Artifact {
		if b.Manifest == nil {
			return nil
		}
		for _, a := range b.Manifest.Artifacts {
			if a.Kind == kind && a.Arch == b.Arch && (name == "" || a.Name == name || path.Base(a.File) == name) {
				return &a
			}
		}
		return nil
	}
	binDst := K3sBinaryPath
	switch a, ok := b.Find(bundle.KindK3sBinary, ""); {
	case env.Sources.K3sBinary != "":
		it, err := fileItem("K3s binary", env.Sources.K3sBinary, binDst, 0o755, false)
		if err != nil {
			return nil, err
		}
		switch m := manifestEntry(bundle.KindK3sBinary, ""); {
		case env.Sources.K3sSHA256 != "":
			sum := strings.ToLower(env.Sources.K3sSHA256)
			if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("--k3s-sha256 %q is not a sha256 digest (64 hex digits)", env.Sources.K3sSHA256)
			}
			it.sha = sum
		case m != nil:
			it.sha, it.size = m.SHA256, m.Size
			s.k3s.Version = m.Version
		default:
			it.unverified = true
		}
		s.items = append(s.items, it)
		s.k3s.Source = "file"
	case ok:
		s.items = append(s.items, artifactItem("K3s binary", a, binDst, 0o755, false))
		s.k3s = K3sRecord{Source: "payload", Version: a.Version, SHA256: a.SHA256}
	case env.FS.Exists(binDst):
		ver, err := existingK3sVersion(ctx, env)
		if err != nil {
			return nil, err
		}
		s.k3s = K3sRecord{Source: "existing", Version: ver}
		env.reuseK3s = true
	default:
		var why []string
		for _, m := range b.Missing {
			if m.Requirement.Kind == bundle.KindK3sBinary {
				why = append(why, m.Reason)
			}
		}
		return nil, fmt.Errorf("no K3s binary to install: the payload has none (%s); pass --k3s-binary PATH (with --k3s-sha256), or install a K3s ≥ v1.%d at %s first",
			strings.Join(why, "; "), MinK3sMinor, binDst)
	}
	imgDir := ImagesDir(env.Config)
	if len(env.Sources.K3sImages) > 0 {
		for _, p := range env.Sources.K3sImages {
			if err := CheckImageArchive(p); err != nil {
				return nil, err
			}
			it, err := fileItem("air-gap images "+filepath.Base(p), p, filepath.Join(imgDir, filepath.Base(p)), 0o644, true)
			if err != nil {
				return nil, err
			}
			if m := manifestEntry(bundle.KindK3sImages, filepath.Base(p)); m != nil {
				it.sha, it.size = m.SHA256, m.Size
			} else {
				it.unverified = true
			}
			s.items = append(s.items, it)
		}
	} else {
		for _, a := range b.All(bundle.KindK3sImages) {
			s.items = append(s.items, artifactItem("air-gap images "+a.Name, a, filepath.Join(imgDir, path.Base(a.File)), 0o644, true))
		}
	}
	// The default pipeline image goes beside K3s's images: K3s imports and
	// pins it, so pipelines that name no image run without a registry.
	for _, a := range b.All(bundle.KindPipelineImage) {
		it := artifactItem("pipeline image "+a.Name+" "+a.Version, a, filepath.Join(imgDir, path.Base(a.File)), 0o644, true)
		it.pipelineImage = true
		s.items = append(s.items, it)
	}
	if !s.hasImages() {
		if env.Config.AirGap {
			return nil, fmt.Errorf("airGap is set but there are no air-gap images: this tpctl carries none; pass --k3s-images PATH")
		}
		s.noImages = true
	}
	for _, l := range []string{"kubectl", "crictl", "ctr"} {
		s.links = append(s.links, filepath.Join(filepath.Dir(binDst), l))
	}
	return s, nil
}

// hasImages reports whether K3s's own air-gap images are staged.
func (s *stageStep) hasImages() bool {
	for _, it := range s.items {
		if it.data && !it.pipelineImage {
			return true
		}
	}
	return false
}

// ImageArchiveSuffixes are the archive suffixes K3s imports from its images
// directory (pkg/agent/containerd, compared without regard to case); it
// skips any other file.
var ImageArchiveSuffixes = []string{".tar", ".tar.lz4", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar.zst", ".tzst"}

// CheckImageArchive refuses a --k3s-images file K3s would not import.
func CheckImageArchive(p string) error {
	name := strings.ToLower(filepath.Base(p))
	for _, s := range ImageArchiveSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return nil
		}
	}
	return fmt.Errorf("--k3s-images %s: K3s imports only image archives named *%s", p, strings.Join(ImageArchiveSuffixes, ", *"))
}

func fileItem(what, src, dst string, perm fs.FileMode, data bool) (*stageItem, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file", what, src)
	}
	return &stageItem{what: what, src: src, dst: dst, perm: perm, data: data, size: st.Size()}, nil
}

func artifactItem(what string, a bundle.Artifact, dst string, perm fs.FileMode, data bool) *stageItem {
	return &stageItem{what: what, art: &a, dst: dst, perm: perm, data: data, size: a.Size, sha: a.SHA256}
}

var k3sVersionRE = regexp.MustCompile(`v1\.(\d+)\.\d+\+k3s\d+`)

// existingK3sVersion accepts a K3s already at /usr/local/bin/k3s when it is
// recent enough.
func existingK3sVersion(ctx context.Context, env *Env) (string, error) {
	if env.K3sVersion == nil {
		return "", fmt.Errorf("a K3s is at %s but its version cannot be checked here", K3sBinaryPath)
	}
	out, err := env.K3sVersion(ctx, env.FS.Path(K3sBinaryPath))
	if err != nil {
		return "", fmt.Errorf("ask the K3s at %s for its version: %w", K3sBinaryPath, err)
	}
	m := k3sVersionRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("the K3s at %s reports no K3s version (%q)", K3sBinaryPath, strings.TrimSpace(out))
	}
	if minor, _ := strconv.Atoi(m[1]); minor < MinK3sMinor {
		return "", fmt.Errorf("the K3s at %s is %s; tpctl needs v1.%d or newer (pass --k3s-binary)", K3sBinaryPath, m[0], MinK3sMinor)
	}
	return m[0], nil
}

// learn fills in the digest of a file source that came without one.
func (it *stageItem) learn() error {
	if it.sha != "" {
		return nil
	}
	sum, n, err := bundle.HashFile(it.src)
	if err != nil {
		return fmt.Errorf("%s: %w", it.what, err)
	}
	it.sha, it.size = sum, n
	return nil
}

func (it *stageItem) inPlace(h *HostFS) (bool, error) {
	st, err := os.Lstat(h.Path(it.dst))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", it.dst, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != it.perm || (it.size >= 0 && st.Size() != it.size) {
		return false, nil
	}
	if err := it.learn(); err != nil {
		return false, err
	}
	sum, _, err := bundle.HashFile(h.Path(it.dst))
	if err != nil {
		return false, err
	}
	return sum == it.sha, nil
}

func (s *stageStep) Done(context.Context) (bool, error) {
	for _, it := range s.items {
		ok, err := it.inPlace(s.env.FS)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, l := range s.links {
		if !s.env.FS.Exists(l) {
			return false, nil
		}
	}
	return s.env.State.Get().K3s == s.k3sRecord(), nil
}

func (s *stageStep) k3sRecord() K3sRecord {
	r := s.k3s
	for _, it := range s.items {
		if !it.data {
			r.SHA256 = it.sha
		}
	}
	if r.Version == "" {
		r.Version = s.env.State.Get().K3s.Version
	}
	return r
}

func (s *stageStep) Run(ctx context.Context, ev Events) error {
	changed := 0
	for _, it := range s.items {
		ok, err := it.inPlace(s.env.FS)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		// K3s must pick the new file up: say so before writing it, so
		// that a run killed after the write still restarts K3s.
		if !s.env.State.Get().PendingRestart {
			if err := s.env.State.Update(func(st *State) { st.PendingRestart = true }); err != nil {
				return err
			}
		}
		if err := s.stage(ctx, ev, it); err != nil {
			return err
		}
		changed++
	}
	for _, l := range s.links {
		if _, err := s.env.FS.Symlink(filepath.Base(K3sBinaryPath), l, s.Name()); err != nil {
			return err
		}
	}
	if s.noImages {
		logf(ev, true, "no air-gap images to stage: K3s will pull its images from registries")
	}
	if stale, err := dropStaleTemplate(s.env); err != nil {
		return err
	} else if stale != "" {
		logf(ev, false, "removed %s: it was derived for the previous K3s binary; K3s generates its own containerd config at its restart, which imports the containerd drop-in (a template is derived again only for a K3s whose config imports none)", stale)
	}
	rec := s.k3sRecord()
	if rec.Source != "payload" && s.env.K3sVersion != nil && (rec.Version == "" || changed > 0) {
		if out, err := s.env.K3sVersion(ctx, s.env.FS.Path(K3sBinaryPath)); err == nil {
			if m := k3sVersionRE.FindString(out); m != "" {
				rec.Version = m
			}
		} else {
			logf(ev, true, "cannot read the K3s version: %s", err)
		}
	}
	if err := s.env.State.Update(func(st *State) { st.K3s = rec }); err != nil {
		return err
	}
	summarize(ev, "%d of %d files written", changed, len(s.items))
	return nil
}

func (s *stageStep) stage(ctx context.Context, ev Events, it *stageItem) error {
	h := s.env.FS
	if err := h.MkdirAll(filepath.Dir(it.dst), s.Name(), 0o755, it.data); err != nil {
		return err
	}
	if it.unverified {
		logf(ev, true, "%s from %s: no digest to check it against (pass --k3s-sha256, or use a payload build)", it.what, it.src)
	}
	var r io.ReadCloser
	var err error
	if it.art != nil {
		r, err = s.env.Bundle.OpenArtifact(*it.art)
	} else {
		r, err = os.Open(it.src)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", it.what, err)
	}
	defer r.Close()
	// Without a digest to check, Stage hashes the bytes on their way in.
	progress := byteProgress(ev, s.env.Now, "", it.what, it.size)
	// Recorded before the rename that makes the file appear.
	return h.create(Created{Path: it.dst, Kind: KindFile, Step: s.Name(), Data: it.data}, func() error {
		res, err := bundle.Stage(ctx, r, h.Path(it.dst), it.perm, bundle.Expect{SHA256: it.sha, Size: it.size}, progress)
		if err != nil {
			return fmt.Errorf("%s: %w", it.what, err)
		}
		it.sha = res.SHA256
		return nil
	})
}

// Files lists what the step would write (dry run).
func (s *stageStep) Files() []FilePreview {
	var out []FilePreview
	for _, it := range s.items {
		src := it.src
		if it.art != nil {
			src = "payload:" + it.art.File
		}
		out = append(out, FilePreview{Path: it.dst, Mode: it.perm, Size: it.size, SHA256: it.sha, Source: src})
	}
	for _, l := range s.links {
		out = append(out, FilePreview{Path: l, Source: "symlink → " + filepath.Base(K3sBinaryPath)})
	}
	return out
}
