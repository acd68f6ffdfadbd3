package payloadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bundle "github.com/tpctl/tpctl/bundle"
)

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// fakeRelease writes a K3s release directory as scripts/fetch-k3s leaves it.
func fakeRelease(t *testing.T) string {
	dir := t.TempDir()
	for _, arch := range Arches() {
		bin, img := K3sFiles(arch)
		var sums string
		for _, f := range []string{bin, img, "k3s-airgap-images-" + arch + ".tar.gz"} {
			data := []byte("content of " + f)
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
			sums += fmt.Sprintf("%s  %s\n", sum(data), f)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, ChecksumFile(arch)), []byte(sums), 0o644))
	}
	return dir
}

func TestK3sManifestChecksTheReleaseSums(t *testing.T) {
	dir := fakeRelease(t)
	m, err := K3sManifest(dir, "v1.36.3+k3s1")
	require.NoError(t, err)
	require.Len(t, m.Artifacts, 4)
	assert.Equal(t, bundle.Artifact{Name: "k3s", Kind: bundle.KindK3sBinary, Arch: "arm64", Version: "v1.36.3+k3s1",
		Size: int64(len("content of k3s-arm64")), SHA256: sum([]byte("content of k3s-arm64")), File: "k3s-arm64"}, m.Artifacts[2])

	require.NoError(t, os.WriteFile(filepath.Join(dir, "k3s"), []byte("tampered"), 0o755))
	_, err = K3sManifest(dir, "v1.36.3+k3s1")
	assert.ErrorContains(t, err, "k3s: sha256")
}

func TestAssembleOneArchitecture(t *testing.T) {
	dir := fakeRelease(t)
	k3s, err := K3sManifest(dir, "v1.36.3+k3s1")
	require.NoError(t, err)
	extra := t.TempDir()
	op := filepath.Join(extra, "tp-operator-0.1.0.tgz")
	ci := filepath.Join(extra, "tp-core-instance-0.1.0.tgz")
	img := filepath.Join(extra, "tpctl-operator-0.1.0.tar")
	fb := filepath.Join(extra, "fluent-bit-4.0.3.tar")
	for _, p := range []string{op, ci, img, fb} {
		require.NoError(t, os.WriteFile(p, []byte(filepath.Base(p)), 0o644))
	}
	out := filepath.Join(t.TempDir(), "payload")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, ".gitignore"), []byte("*\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, "stale"), []byte("old"), 0o644))
	m, err := Assemble(out, "amd64", dir, k3s, []Extra{
		{Path: op, Kind: bundle.KindChart}, {Path: ci, Kind: bundle.KindChart},
		{Path: img, Kind: bundle.KindOperatorImage, Arch: "amd64"},
		{Path: fb, Kind: bundle.KindPipelineImage, Arch: "amd64"},
	})
	require.NoError(t, err)
	var files []string
	for _, a := range m.Artifacts {
		files = append(files, a.File)
	}
	assert.Equal(t, []string{"amd64/fluent-bit-4.0.3.tar", "amd64/k3s", "amd64/k3s-airgap-images-amd64.tar.zst", "amd64/tpctl-operator-0.1.0.tar",
		"charts/tp-core-instance-0.1.0.tgz", "charts/tp-operator-0.1.0.tgz"}, files)

	// What Assemble wrote is a complete payload for bundle.
	fsys := fstest.MapFS{}
	require.NoError(t, filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		data, err := os.ReadFile(p)
		fsys[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return err
	}))
	assert.NotContains(t, fsys, "stale")
	assert.Contains(t, fsys, ".gitignore")
	b, err := bundle.New(fsys, "amd64")
	require.NoError(t, err)
	assert.True(t, b.Complete(), "missing: %v", b.Missing)
	assert.NoError(t, b.VerifyAll())

	// arm64 has no operator image built here: bundle says so.
	_, err = Assemble(out, "arm64", dir, k3s, []Extra{{Path: op, Kind: bundle.KindChart}, {Path: ci, Kind: bundle.KindChart},
		{Path: img, Kind: bundle.KindOperatorImage, Arch: "amd64"}})
	require.NoError(t, err)
}

func TestNameVersion(t *testing.T) {
	n, v, err := nameVersion("/x/tp-core-instance-0.1.0-dev.3+g1234.tgz")
	require.NoError(t, err)
	assert.Equal(t, "tp-core-instance", n)
	assert.Equal(t, "0.1.0-dev.3+g1234", v)
	_, _, err = nameVersion("operator.tar")
	assert.Error(t, err)
}
