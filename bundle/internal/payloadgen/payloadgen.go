// Package payloadgen builds the payload directory that `go build -tags
// payload` embeds: it checks downloaded K3s release files against the
// release's own sha256sum file, and assembles one architecture's artifacts
// with a manifest.json. It runs at release time only (scripts/fetch-k3s,
// scripts/release), never in tpctl.
package payloadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	bundle "github.com/tpctl/tpctl/bundle"
)

// Arches are the architectures a release carries.
func Arches() []string { return []string{"amd64", "arm64"} }

// K3sFiles names a K3s release's files for arch: the binary and the
// air-gap image archive (zstd), as K3s publishes them.
func K3sFiles(arch string) (binary, images string) {
	binary = "k3s"
	if arch != "amd64" {
		binary = "k3s-" + arch
	}
	return binary, "k3s-airgap-images-" + arch + ".tar.zst"
}

// ChecksumFile is the release's sha256sum file for arch.
func ChecksumFile(arch string) string { return "sha256sum-" + arch + ".txt" }

// parseSums reads "digest  name" lines (sha256sum output).
func parseSums(b []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || len(f[0]) != 64 {
			return nil, fmt.Errorf("not a sha256sum line: %q", line)
		}
		sums[strings.TrimPrefix(f[1], "*")] = strings.ToLower(f[0])
	}
	return sums, sc.Err()
}

// K3sManifest checks the K3s files in dir against the release's sha256sum
// files and returns a manifest listing them (paths relative to dir).
func K3sManifest(dir, version string) (*bundle.Manifest, error) {
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, K3sVersion: version}
	for _, arch := range Arches() {
		raw, err := os.ReadFile(filepath.Join(dir, ChecksumFile(arch)))
		if err != nil {
			return nil, fmt.Errorf("read the release checksums: %w", err)
		}
		sums, err := parseSums(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ChecksumFile(arch), err)
		}
		bin, img := K3sFiles(arch)
		for _, f := range []struct {
			name, file string
			kind       bundle.Kind
		}{{"k3s", bin, bundle.KindK3sBinary}, {"k3s-airgap-images", img, bundle.KindK3sImages}} {
			want, ok := sums[f.file]
			if !ok {
				return nil, fmt.Errorf("%s lists no %s", ChecksumFile(arch), f.file)
			}
			got, size, err := bundle.HashFile(filepath.Join(dir, f.file))
			if err != nil {
				return nil, err
			}
			if got != want {
				return nil, fmt.Errorf("%s: sha256 %s, the release says %s", f.file, got, want)
			}
			m.Artifacts = append(m.Artifacts, bundle.Artifact{Name: f.name, Kind: f.kind, Arch: arch, Version: version, Size: size, SHA256: got, File: f.file})
		}
	}
	return m, m.Validate()
}

// WriteManifest writes m as indented JSON.
func WriteManifest(path string, m *bundle.Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Extra is a release artifact built here rather than downloaded: a chart
// archive or the operator image.
type Extra struct {
	Path string
	Kind bundle.Kind
	Arch string
}

var versioned = regexp.MustCompile(`^(.+?)-(v?\d+\.\d+\.\d+[^/]*?)\.(tgz|tar)$`)

// nameVersion splits "tp-operator-0.1.0.tgz" into name and version.
func nameVersion(file string) (string, string, error) {
	m := versioned.FindStringSubmatch(filepath.Base(file))
	if m == nil {
		return "", "", fmt.Errorf("%s: want NAME-VERSION.tgz or NAME-VERSION.tar", filepath.Base(file))
	}
	return m[1], m[2], nil
}

// Assemble fills out (emptied first, .gitignore kept) with arch's artifacts:
// the K3s files listed by k3s (read from k3sDir) and extras, copied and
// hashed, and writes out/manifest.json.
func Assemble(out, arch string, k3sDir string, k3s *bundle.Manifest, extras []Extra) (*bundle.Manifest, error) {
	if err := clean(out); err != nil {
		return nil, err
	}
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, K3sVersion: k3s.K3sVersion}
	add := func(a bundle.Artifact, src string) error {
		dst := filepath.Join(out, filepath.FromSlash(a.File))
		sum, size, err := copyFile(src, dst)
		if err != nil {
			return err
		}
		if a.SHA256 != "" && sum != a.SHA256 {
			return fmt.Errorf("%s changed since it was checked: sha256 %s, expected %s", src, sum, a.SHA256)
		}
		a.SHA256, a.Size = sum, size
		m.Artifacts = append(m.Artifacts, a)
		return nil
	}
	for _, a := range k3s.Artifacts {
		if a.Arch != arch {
			continue
		}
		src := filepath.Join(k3sDir, filepath.FromSlash(a.File))
		a.File = arch + "/" + filepath.Base(a.File)
		if err := add(a, src); err != nil {
			return nil, err
		}
	}
	for _, e := range extras {
		if e.Arch != "" && e.Arch != arch {
			continue
		}
		name, version, err := nameVersion(e.Path)
		if err != nil {
			return nil, err
		}
		a := bundle.Artifact{Name: name, Kind: e.Kind, Version: version}
		switch e.Kind {
		case bundle.KindChart:
			a.File = "charts/" + filepath.Base(e.Path)
		default:
			a.Arch = arch
			a.File = arch + "/" + filepath.Base(e.Path)
		}
		if err := add(a, e.Path); err != nil {
			return nil, err
		}
	}
	sort.Slice(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].File < m.Artifacts[j].File })
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, WriteManifest(filepath.Join(out, bundle.ManifestFile), m)
}

// clean empties dir except its .gitignore.
func clean(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.Name() == ".gitignore" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clean %s: %w", dir, err)
		}
	}
	return nil
}

func copyFile(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	if _, err := os.Stat(dst); err == nil {
		return "", 0, fmt.Errorf("%s: two artifacts share this file name", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", 0, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", 0, fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return "", 0, fmt.Errorf("close %s: %w", dst, err)
	}
	return bundle.HashFile(dst)
}
