// Package bundle is the release payload carried inside tpctl: the K3s binary,
// its air-gap images, the packaged charts, the operator image and the default
// pipeline (Fluent Bit) image, described by
// manifest.json (name, kind, architecture, version, size and sha256 of each).
//
// A build without the payload files still builds: the default build embeds
// nothing and Open reports every required artifact as missing. `make release`
// fills bundle/payload/ and builds with `-tags payload`. Every artifact is
// checked against its manifest digest before use (Verify, or Stage, which
// hashes while it writes).
package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// SchemaVersion is the manifest.json schema this build reads.
const SchemaVersion = 1

// ManifestFile is the manifest's name at the root of the payload.
const ManifestFile = "manifest.json"

// Kind says what an artifact is for.
type Kind string

const (
	KindK3sBinary     Kind = "k3s-binary"
	KindK3sImages     Kind = "k3s-images"
	KindChart         Kind = "chart"
	KindOperatorImage Kind = "operator-image"
	// KindPipelineImage is the default pipeline image (Fluent Bit) as a
	// docker-archive K3s imports from its air-gap image directory.
	KindPipelineImage Kind = "pipeline-image"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindK3sBinary, KindK3sImages, KindChart, KindOperatorImage, KindPipelineImage:
		return true
	}
	return false
}

// ArchIndependent reports whether artifacts of this kind serve every
// architecture (charts) rather than one.
func (k Kind) ArchIndependent() bool { return k == KindChart }

// Artifact is one file of the payload.
type Artifact struct {
	Name    string `json:"name"`
	Kind    Kind   `json:"kind"`
	Arch    string `json:"arch,omitempty"` // GOARCH; empty for charts
	Version string `json:"version"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	// File is the artifact's path inside the payload (slash-separated,
	// relative, no "..").
	File string `json:"file"`
}

// String names the artifact for messages: "k3s-binary k3s v1.36.3+k3s1 (amd64)".
func (a Artifact) String() string {
	s := string(a.Kind) + " " + a.Name
	if a.Version != "" {
		s += " " + a.Version
	}
	if a.Arch != "" {
		s += " (" + a.Arch + ")"
	}
	return s
}

// Manifest lists the payload's artifacts.
type Manifest struct {
	SchemaVersion int        `json:"schemaVersion"`
	K3sVersion    string     `json:"k3sVersion,omitempty"`
	Artifacts     []Artifact `json:"artifacts"`
}

// ParseManifest decodes and validates manifest.json. Unknown fields are
// errors, so a manifest written by a newer schema is not half-understood.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ManifestFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode %s: trailing data after the manifest object", ManifestFile)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every artifact entry; the error names the entry and field.
func (m *Manifest) Validate() error {
	if m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%s: schemaVersion %d is not supported (this build reads %d)", ManifestFile, m.SchemaVersion, SchemaVersion)
	}
	var errs []error
	files := map[string]int{}
	for i, a := range m.Artifacts {
		at := fmt.Sprintf("%s: artifacts[%d]", ManifestFile, i)
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", at))
		}
		if !a.Kind.Valid() {
			errs = append(errs, fmt.Errorf("%s.kind: %q is not one of k3s-binary, k3s-images, chart, operator-image, pipeline-image", at, a.Kind))
		}
		if a.Kind.ArchIndependent() && a.Arch != "" {
			errs = append(errs, fmt.Errorf("%s.arch: a %s serves every architecture, arch must be empty", at, a.Kind))
		}
		if a.Kind.Valid() && !a.Kind.ArchIndependent() && a.Arch == "" {
			errs = append(errs, fmt.Errorf("%s.arch: a %s needs an architecture", at, a.Kind))
		}
		if a.Size < 0 {
			errs = append(errs, fmt.Errorf("%s.size: %d is negative", at, a.Size))
		}
		if err := checkSHA256(a.SHA256); err != nil {
			errs = append(errs, fmt.Errorf("%s.sha256: %w", at, err))
		}
		if err := checkFile(a.File); err != nil {
			errs = append(errs, fmt.Errorf("%s.file: %w", at, err))
		} else if j, dup := files[a.File]; dup {
			errs = append(errs, fmt.Errorf("%s.file: %q is also artifacts[%d]", at, a.File, j))
		} else {
			files[a.File] = i
		}
	}
	return errors.Join(errs...)
}

func checkSHA256(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("want 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil || strings.ToLower(s) != s {
		return fmt.Errorf("%q is not lower-case hex", s)
	}
	return nil
}

func checkFile(f string) error {
	if f == "" {
		return errors.New("must not be empty")
	}
	if f == ManifestFile || strings.HasPrefix(f, "/") || path.Clean(f) != f || f == ".." || strings.HasPrefix(f, "../") {
		return fmt.Errorf("%q must be a clean relative path inside the payload", f)
	}
	return nil
}

// Requirement is one artifact a complete payload must carry for an
// architecture.
type Requirement struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name,omitempty"` // empty: any name of that kind
	Arch string `json:"arch,omitempty"`
}

func (r Requirement) String() string {
	s := string(r.Kind)
	if r.Name != "" {
		s += " " + r.Name
	}
	if r.Arch != "" {
		s += " (" + r.Arch + ")"
	}
	return s
}

// Chart names the payload carries.
const (
	ChartOperator     = "tp-operator"
	ChartCoreInstance = "tp-core-instance"
)

// Required lists what a complete payload holds for arch.
func Required(arch string) []Requirement {
	return []Requirement{
		{Kind: KindK3sBinary, Arch: arch},
		{Kind: KindK3sImages, Arch: arch},
		{Kind: KindChart, Name: ChartOperator},
		{Kind: KindChart, Name: ChartCoreInstance},
		{Kind: KindOperatorImage, Arch: arch},
		{Kind: KindPipelineImage, Arch: arch},
	}
}

func (r Requirement) matches(a Artifact) bool {
	return a.Kind == r.Kind && (r.Name == "" || a.Name == r.Name) && a.Arch == r.Arch
}
