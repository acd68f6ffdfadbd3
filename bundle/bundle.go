package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"sort"
	"strings"
)

// Bundle is the payload as found in one binary, for one architecture.
type Bundle struct {
	fsys fs.FS
	// Arch is the architecture the bundle is read for (GOARCH).
	Arch string
	// Manifest is nil when the payload carries no manifest.json.
	Manifest *Manifest
	// Present lists the artifacts for Arch (and the architecture-independent
	// ones) whose files are embedded with the manifest's size.
	Present []Artifact
	// Missing lists what a complete payload for Arch lacks, with the reason.
	Missing []Missing
}

// Missing is one requirement the payload does not meet.
type Missing struct {
	Requirement Requirement `json:"requirement"`
	Reason      string      `json:"reason"`
}

func (m Missing) String() string { return m.Requirement.String() + ": " + m.Reason }

// Open reads the payload embedded in this binary for the running
// architecture.
func Open() (*Bundle, error) { return New(payloadFS(), runtime.GOARCH) }

// New reads a payload from fsys (manifest.json at its root) for arch. A
// payload without manifest.json is valid and empty; a manifest that does not
// parse is an error.
func New(fsys fs.FS, arch string) (*Bundle, error) {
	b := &Bundle{fsys: fsys, Arch: arch}
	raw, err := fs.ReadFile(fsys, ManifestFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		for _, r := range Required(arch) {
			b.Missing = append(b.Missing, Missing{Requirement: r,
				Reason: "this build carries no payload (release builds embed it with -tags payload)"})
		}
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("read payload %s: %w", ManifestFile, err)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("embedded payload: %w", err)
	}
	b.Manifest = m
	absent := map[Requirement]string{}
	for _, a := range m.Artifacts {
		if a.Arch != "" && a.Arch != arch {
			continue
		}
		st, err := fs.Stat(fsys, a.File)
		switch {
		case err != nil:
			absent[reqOf(a)] = fmt.Sprintf("listed in %s as %s but the file is not embedded", ManifestFile, a.File)
		case !st.Mode().IsRegular():
			absent[reqOf(a)] = fmt.Sprintf("%s is not a regular file", a.File)
		case st.Size() != a.Size:
			absent[reqOf(a)] = fmt.Sprintf("%s holds %d bytes, %s says %d", a.File, st.Size(), ManifestFile, a.Size)
		default:
			b.Present = append(b.Present, a)
		}
	}
	for _, r := range Required(arch) {
		if _, ok := b.find(r); ok {
			continue
		}
		reason := "not listed in " + ManifestFile
		for req, why := range absent {
			if r.matchesReq(req) {
				reason = why
			}
		}
		b.Missing = append(b.Missing, Missing{Requirement: r, Reason: reason})
	}
	return b, nil
}

func reqOf(a Artifact) Requirement { return Requirement{Kind: a.Kind, Name: a.Name, Arch: a.Arch} }

func (r Requirement) matchesReq(o Requirement) bool {
	return r.Kind == o.Kind && (r.Name == "" || r.Name == o.Name) && r.Arch == o.Arch
}

func (b *Bundle) find(r Requirement) (Artifact, bool) {
	for _, a := range b.Present {
		if r.matches(a) {
			return a, true
		}
	}
	return Artifact{}, false
}

// Find returns the present artifact of kind (and name, when not empty) for
// the bundle's architecture.
func (b *Bundle) Find(kind Kind, name string) (Artifact, bool) {
	arch := b.Arch
	if kind.ArchIndependent() {
		arch = ""
	}
	return b.find(Requirement{Kind: kind, Name: name, Arch: arch})
}

// All returns the present artifacts of kind.
func (b *Bundle) All(kind Kind) []Artifact {
	var out []Artifact
	for _, a := range b.Present {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// Complete reports whether nothing required is missing.
func (b *Bundle) Complete() bool { return len(b.Missing) == 0 }

// OpenArtifact opens an artifact's embedded file for reading. Callers that
// use the bytes must check them: Stage does, Verify does.
func (b *Bundle) OpenArtifact(a Artifact) (fs.File, error) {
	f, err := b.fsys.Open(a.File)
	if err != nil {
		return nil, fmt.Errorf("open payload file %s: %w", a.File, err)
	}
	return f, nil
}

// Verify reads the artifact once and checks its size and sha256 against the
// manifest.
func (b *Bundle) Verify(a Artifact) error {
	f, err := b.OpenArtifact(a)
	if err != nil {
		return err
	}
	defer f.Close()
	return VerifyReader(f, a.String(), Expect{SHA256: a.SHA256, Size: a.Size})
}

// VerifyAll verifies every present artifact.
func (b *Bundle) VerifyAll() error {
	var errs []error
	for _, a := range b.Present {
		errs = append(errs, b.Verify(a))
	}
	return errors.Join(errs...)
}

// Expect is what a stream must hold. Size < 0 means unknown; an empty SHA256
// means the caller has no digest to check against.
type Expect struct {
	SHA256 string
	Size   int64
}

// MismatchError reports bytes that are not what the manifest (or the
// caller) says they are.
type MismatchError struct {
	What                  string
	WantSHA256, GotSHA256 string
	WantSize, GotSize     int64
}

func (e *MismatchError) Error() string {
	if e.WantSize >= 0 && e.WantSize != e.GotSize {
		return fmt.Sprintf("%s: size %d, expected %d (refusing a truncated or altered artifact)", e.What, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("%s: sha256 %s, expected %s (refusing an altered artifact)", e.What, e.GotSHA256, e.WantSHA256)
}

// VerifyReader hashes r to its end and compares with want.
func VerifyReader(r io.Reader, what string, want Expect) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return want.check(what, n, hex.EncodeToString(h.Sum(nil)))
}

func (want Expect) check(what string, n int64, sum string) error {
	if (want.Size >= 0 && n != want.Size) || (want.SHA256 != "" && sum != want.SHA256) {
		return &MismatchError{What: what, WantSHA256: want.SHA256, GotSHA256: sum, WantSize: want.Size, GotSize: n}
	}
	return nil
}

// Description is what `tpctl version` shows about the payload.
type Description struct {
	Arch       string     `json:"arch"`
	K3sVersion string     `json:"k3sVersion,omitempty"`
	Artifacts  []Artifact `json:"artifacts"`
	Missing    []Missing  `json:"missing,omitempty"`
	Complete   bool       `json:"complete"`
}

// Describe summarises the bundle.
func (b *Bundle) Describe() Description {
	d := Description{Arch: b.Arch, Artifacts: append([]Artifact{}, b.Present...), Missing: b.Missing, Complete: b.Complete()}
	if b.Manifest != nil {
		d.K3sVersion = b.Manifest.K3sVersion
	}
	sort.SliceStable(d.Artifacts, func(i, j int) bool {
		if d.Artifacts[i].Kind != d.Artifacts[j].Kind {
			return d.Artifacts[i].Kind < d.Artifacts[j].Kind
		}
		return d.Artifacts[i].Name < d.Artifacts[j].Name
	})
	return d
}

// Describe opens the embedded payload and summarises it.
func Describe() (Description, error) {
	b, err := Open()
	if err != nil {
		return Description{}, err
	}
	return b.Describe(), nil
}

// WriteDescription renders the payload for `tpctl version`.
func WriteDescription(w io.Writer, d Description) error {
	var b strings.Builder
	k3s := d.K3sVersion
	if k3s == "" {
		k3s = "none embedded"
	}
	fmt.Fprintf(&b, "  k3s:      %s\n", k3s)
	fmt.Fprintf(&b, "  payload (%s):", d.Arch)
	if len(d.Artifacts) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n")
	for _, a := range d.Artifacts {
		fmt.Fprintf(&b, "    %-15s %-28s %-14s %10d B  sha256:%s\n", a.Kind, a.Name, a.Version, a.Size, a.SHA256)
	}
	for _, m := range d.Missing {
		fmt.Fprintf(&b, "    missing: %s\n", m)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
