// Package charts holds the sources of the tpctl Helm charts (tp-operator:
// the CRDs, RBAC and the operator Deployment; tp-core-instance: one
// CoreInstance from values) and packages them into reproducible .tgz
// archives for the air-gap payload.
package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Chart names.
const (
	Operator     = "tp-operator"
	CoreInstance = "tp-core-instance"
)

// Names lists the charts in installation order.
func Names() []string { return []string{Operator, CoreInstance} }

//go:embed all:tp-operator all:tp-core-instance
var sources embed.FS

// Sources returns the chart source tree: one directory per chart.
func Sources() fs.FS { return sources }

// files returns the chart's source files relative to its directory, sorted.
// The operator chart's crds/ are taken from the API package, so a packaged
// chart always carries the CRDs the Go types describe.
func files(name string) (map[string][]byte, error) {
	if name != Operator && name != CoreInstance {
		return nil, fmt.Errorf("unknown chart %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	out := map[string][]byte{}
	err := fs.WalkDir(sources, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := sources.ReadFile(p)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, name+"/")] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart %s: %w", name, err)
	}
	if name == Operator {
		crds, err := v1alpha1.CRDManifests()
		if err != nil {
			return nil, err
		}
		for k := range out {
			if strings.HasPrefix(k, "crds/") {
				delete(out, k)
			}
		}
		for file, data := range crds {
			out["crds/"+file] = data
		}
	}
	return out, nil
}

// Load returns the named chart. A non-empty version sets both the chart's
// version and its appVersion (the operator image tag).
func Load(name, version string) (*chart.Chart, error) {
	fl, err := files(name)
	if err != nil {
		return nil, err
	}
	if version != "" {
		meta := map[string]any{}
		if err := yaml.Unmarshal(fl["Chart.yaml"], &meta); err != nil {
			return nil, fmt.Errorf("read %s/Chart.yaml: %w", name, err)
		}
		meta["version"], meta["appVersion"] = version, version
		if fl["Chart.yaml"], err = yaml.Marshal(meta); err != nil {
			return nil, fmt.Errorf("write %s/Chart.yaml: %w", name, err)
		}
	}
	buffered := make([]*archive.BufferedFile, 0, len(fl))
	for _, n := range sortedKeys(fl) {
		buffered = append(buffered, &archive.BufferedFile{Name: n, Data: fl[n]})
	}
	ch, err := loader.LoadFiles(buffered)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", name, err)
	}
	return ch, nil
}

// Archive renders the chart as a .tgz archive laid out like `helm package`
// makes it (<name>/Chart.yaml, …). The archive is reproducible: entries are
// sorted and every timestamp is the Unix epoch.
func Archive(name, version string) ([]byte, error) {
	ch, err := Load(name, version) // validates and normalises Chart.yaml
	if err != nil {
		return nil, err
	}
	fl, err := files(name)
	if err != nil {
		return nil, err
	}
	if fl["Chart.yaml"], err = yaml.Marshal(ch.Metadata); err != nil {
		return nil, fmt.Errorf("write %s/Chart.yaml: %w", name, err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip %s: %w", name, err)
	}
	zw.ModTime = time.Unix(0, 0)
	tw := tar.NewWriter(zw)
	for _, n := range sortedKeys(fl) {
		hdr := &tar.Header{Name: path.Join(name, n), Mode: 0o644, Size: int64(len(fl[n])),
			ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("archive %s/%s: %w", name, n, err)
		}
		if _, err := tw.Write(fl[n]); err != nil {
			return nil, fmt.Errorf("archive %s/%s: %w", name, n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close archive of %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close gzip of %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// Packaged is one written archive.
type Packaged struct {
	Name, Version, Path, SHA256 string
}

// Package writes <name>-<version>.tgz of every chart into dir.
func Package(version, dir string) ([]Packaged, error) {
	if version == "" {
		return nil, fmt.Errorf("package charts: version is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	var out []Packaged
	for _, name := range Names() {
		data, err := Archive(name, version)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, fmt.Sprintf("%s-%s.tgz", name, version))
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", tmp, err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return nil, fmt.Errorf("rename %s: %w", dst, err)
		}
		sum := sha256.Sum256(data)
		out = append(out, Packaged{Name: name, Version: version, Path: dst, SHA256: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SemVer turns a build version into a chart version (SemVer 2) that is also
// a valid image tag: "v1.2.3" → "1.2.3"; anything that is not a release
// version, such as "be72aee-dirty", becomes a pre-release of 0.0.0
// ("0.0.0-be72aee-dirty") with characters outside [0-9A-Za-z.-] replaced.
func SemVer(v string) string {
	v = strings.TrimPrefix(v, "v")
	if isRelease(v) {
		return v
	}
	var b strings.Builder
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	pre := strings.Trim(b.String(), "-")
	if pre == "" {
		pre = "dev"
	}
	if len(pre) > 100 {
		pre = pre[:100]
	}
	return "0.0.0-" + strings.TrimRight(pre, "-")
}

// isRelease accepts MAJOR.MINOR.PATCH with an optional -prerelease of
// [0-9A-Za-z.-], no leading zeros in the numbers.
func isRelease(v string) bool {
	core, pre, hasPre := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	if !hasPre {
		return true
	}
	if pre == "" || len(v) > 120 {
		return false
	}
	for _, id := range strings.Split(pre, ".") {
		if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
			return false
		}
	}
	return true
}
