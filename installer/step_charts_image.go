package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/internal/operatorimage"
)

// operatorImage is the operator image archive the node gets: the payload's
// (checked against the manifest while it is staged) or one built from the
// running tpctl binary.
type operatorImage struct {
	tag, ref string
	// dst is the archive's host path in K3s's images directory.
	dst string
	// art is the payload's archive; exe the binary to build one from.
	art *bundle.Artifact
	exe string
	// data and sha are the built archive (once built).
	data []byte
	sha  string
}

// image resolves where the operator image comes from; it builds nothing.
func (r *chartsRun) image() (*operatorImage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.img != nil {
		return r.img, nil
	}
	img := &operatorImage{}
	if b := r.env.Bundle; b != nil {
		if a, ok := b.Find(bundle.KindOperatorImage, ""); ok {
			img.art, img.tag = &a, a.Version
		}
	}
	if img.art == nil {
		exe := r.Executable
		if exe == nil {
			exe = os.Executable
		}
		p, err := exe()
		if err != nil {
			return nil, fmt.Errorf("find the tpctl binary to build the operator image from: %w", err)
		}
		img.exe, img.tag = p, charts.SemVer(r.Version)
	}
	img.ref = operatorimage.Ref(img.tag)
	img.dst = filepath.Join(ImagesDir(r.env.Config), operatorimage.FileName(img.tag))
	r.img = img
	return img, nil
}

// build builds the archive from the binary once.
func (r *chartsRun) build(img *operatorImage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if img.data != nil || img.art != nil {
		return nil
	}
	if err := operatorimage.CheckStatic(img.exe); err != nil {
		return err
	}
	bin, err := os.ReadFile(img.exe)
	if err != nil {
		return fmt.Errorf("read the tpctl binary %s: %w", img.exe, err)
	}
	data, err := operatorimage.Archive(r.Version, bin)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	img.data, img.sha = data, hex.EncodeToString(sum[:])
	return nil
}

// expected returns the archive's digest and size.
func (r *chartsRun) expected(img *operatorImage) (string, int64, error) {
	if img.art != nil {
		return img.art.SHA256, img.art.Size, nil
	}
	if err := r.build(img); err != nil {
		return "", 0, err
	}
	return img.sha, int64(len(img.data)), nil
}

// imageStageStep puts the operator image archive in K3s's images
// directory before K3s starts, so that K3s imports it when it starts. A
// re-run against a running K3s is covered by imageImportStep.
type imageStageStep struct{ r *chartsRun }

// StageOperatorImageStep names the step that stages the operator image;
// the install plan places it before K3s starts (BeforeStartSteps).
const StageOperatorImageStep = "stage operator image"

func (s *imageStageStep) Name() string { return StageOperatorImageStep }

func (s *imageStageStep) Describe() string {
	img, err := s.r.image()
	if err != nil {
		return "place the operator image in K3s's images directory: " + err.Error()
	}
	return "place the operator image " + img.ref + " in " + ImagesDir(s.r.env.Config) + " (K3s imports it when it starts); remove archives of older operator images this install staged"
}

// Blocks reports, for a dry run, a tpctl binary the image cannot be built
// from.
func (s *imageStageStep) Blocks() error {
	img, err := s.r.image()
	if err != nil {
		return err
	}
	if img.art != nil {
		return nil
	}
	return operatorimage.CheckStatic(img.exe)
}

func (s *imageStageStep) Files() []FilePreview {
	img, err := s.r.image()
	if err != nil {
		return nil
	}
	fp := FilePreview{Path: img.dst, Mode: 0o644}
	if img.art != nil {
		fp.Source, fp.Size, fp.SHA256 = "payload:"+img.art.File, img.art.Size, img.art.SHA256
	} else {
		fp.Source = "built from " + img.exe
		if img.data != nil {
			fp.Size, fp.SHA256 = int64(len(img.data)), img.sha
		}
	}
	out := []FilePreview{fp}
	for _, p := range s.stale(img) {
		out = append(out, FilePreview{Path: p, Note: "remove (an older operator image this install staged)"})
	}
	return out
}

// stale lists operator image archives an earlier install staged for
// another version.
func (s *imageStageStep) stale(img *operatorImage) []string {
	var out []string
	for _, c := range s.r.env.State.Get().Created {
		if c.Step == s.Name() && c.Kind == KindFile && c.Path != img.dst && s.r.env.FS.Exists(c.Path) {
			out = append(out, c.Path)
		}
	}
	return out
}

func (s *imageStageStep) Done(context.Context) (bool, error) {
	img, err := s.r.image()
	if err != nil {
		return false, err
	}
	if len(s.stale(img)) > 0 {
		return false, nil
	}
	st, err := os.Lstat(s.r.env.FS.Path(img.dst))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", img.dst, err)
	}
	sha, size, err := s.r.expected(img)
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 || st.Size() != size {
		return false, nil
	}
	got, _, err := bundle.HashFile(s.r.env.FS.Path(img.dst))
	if err != nil {
		return false, err
	}
	return got == sha, nil
}

func (s *imageStageStep) Run(ctx context.Context, ev Events) error {
	img, err := s.r.image()
	if err != nil {
		return err
	}
	sha, size, err := s.r.expected(img)
	if err != nil {
		return err
	}
	h := s.r.env.FS
	if err := h.MkdirAll(filepath.Dir(img.dst), s.Name(), 0o755, true); err != nil {
		return err
	}
	var src io.Reader = bytes.NewReader(img.data)
	if img.art != nil {
		f, err := s.r.env.Bundle.OpenArtifact(*img.art)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	progress := byteProgress(ev, s.r.env.Now, "", "operator image", size)
	res, err := bundle.Stage(ctx, src, h.Path(img.dst), 0o644, bundle.Expect{SHA256: sha, Size: size}, progress)
	if err != nil {
		return fmt.Errorf("stage the operator image %s: %w", img.ref, err)
	}
	if !res.Existed {
		if err := s.r.env.State.Record(Created{Path: img.dst, Kind: KindFile, Step: s.Name(), Data: true}); err != nil {
			return err
		}
	}
	stale := s.stale(img)
	for _, p := range stale {
		if err := os.Remove(h.Path(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the older operator image %s: %w", p, err)
		}
	}
	if err := s.r.env.State.Forget(stale...); err != nil {
		return err
	}
	from := "built from " + img.exe
	if img.art != nil {
		from = "from the payload"
	}
	summarize(ev, "%s (%s, sha256 %s)", img.ref, from, sha[:12])
	return nil
}

// imageImportStep makes sure the node's containerd has the operator image,
// pinned. K3s imports the images directory when it starts (and, as of its
// watcher, when archives appear) and labels what it imports
// io.cri-containerd.pinned=pinned, so the kubelet's image garbage collection
// never removes it: on an air-gapped host nothing could bring it back. When
// K3s was already running (a re-run after upgrading tpctl brings a new image
// tag) the archive is imported with `k3s ctr images import`, without a
// restart, and pinned the same way; an image present but not pinned (an
// older tpctl imported it) is pinned.
type imageImportStep struct{ r *chartsRun }

// Pinned image label of containerd's CRI plugin: the kubelet never garbage
// collects an image the CRI reports pinned.
const (
	pinnedLabel      = "io.cri-containerd.pinned"
	pinnedLabelValue = "pinned"
)

func (s *imageImportStep) Name() string { return "import operator image" }

func (s *imageImportStep) Describe() string {
	ref := "the operator image"
	if img, err := s.r.image(); err == nil {
		ref = img.ref
	}
	return "make sure containerd (namespace k8s.io) has " + ref + ", pinned (" + pinnedLabel + "=" + pinnedLabelValue +
		", so image garbage collection keeps it); when K3s was running already, import it with `k3s ctr images import`"
}

func (s *imageImportStep) ctr(ctx context.Context, args ...string) ([]byte, error) {
	k3s := s.r.env.FS.Path(K3sBinaryPath)
	if s.r.Ctr != nil {
		return s.r.Ctr(ctx, k3s, args...)
	}
	out, err := exec.CommandContext(ctx, k3s, append([]string{"ctr"}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s ctr %s: %w: %s", K3sBinaryPath, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// has asks containerd whether it has ref, and with pinned whether it is
// pinned too (a containerd filter: `name==REF,labels."KEY"==VALUE`).
func (s *imageImportStep) has(ctx context.Context, ref string, pinned bool) (bool, error) {
	filter := "name==" + ref
	if pinned {
		filter += `,labels."` + pinnedLabel + `"==` + pinnedLabelValue
	}
	out, err := s.ctr(ctx, "-n", "k8s.io", "images", "ls", "-q", filter)
	if err != nil {
		return false, fmt.Errorf("list the node's images: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == ref {
			return true, nil
		}
	}
	return false, nil
}

func (s *imageImportStep) Done(ctx context.Context) (bool, error) {
	img, err := s.r.image()
	if err != nil {
		return false, err
	}
	if !s.r.env.FS.Exists(K3sBinaryPath) || !s.r.kubeconfigReady() {
		return false, nil
	}
	return s.has(ctx, img.ref, true)
}

func (s *imageImportStep) Run(ctx context.Context, ev Events) error {
	img, err := s.r.image()
	if err != nil {
		return err
	}
	present, err := s.has(ctx, img.ref, false)
	if err != nil {
		return err
	}
	imported := !present
	if imported {
		ev.Emit(Event{Type: EventProgress, Message: "importing " + img.dst})
		if _, err := s.ctr(ctx, "-n", "k8s.io", "images", "import", s.r.env.FS.Path(img.dst)); err != nil {
			return fmt.Errorf("import the operator image: %w", err)
		}
		if present, err = s.has(ctx, img.ref, false); err != nil {
			return err
		}
		if !present {
			return fmt.Errorf("containerd does not list %s after importing %s", img.ref, img.dst)
		}
	}
	if _, err := s.ctr(ctx, "-n", "k8s.io", "images", "label", img.ref, pinnedLabel+"="+pinnedLabelValue); err != nil {
		return fmt.Errorf("pin the operator image: %w", err)
	}
	if ok, err := s.has(ctx, img.ref, true); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("containerd does not list %s as pinned after labelling it %s=%s", img.ref, pinnedLabel, pinnedLabelValue)
	}
	if imported {
		summarize(ev, "%s imported into the running K3s and pinned", img.ref)
	} else {
		summarize(ev, "%s pinned (it was there, unpinned)", img.ref)
	}
	return nil
}
