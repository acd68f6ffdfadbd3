package operatorimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/ociimage"
	"github.com/tpctl/tpctl/internal/operatorimage/imagetest"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSpec(t *testing.T) {
	s := Spec("v1.2.3", "", SelfCopy, []byte("binary"))
	assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", s.Ref)
	assert.Equal(t, []string{"/tpctl", "operator"}, s.Entrypoint)
	assert.Equal(t, "65532:65532", s.User)
	assert.Equal(t, "tpctl-operator-0.0.0-abc-dirty.tar", FileName("abc-dirty"))
	assert.Equal(t, []string{"amd64", "arm64"}, Arches())

	img, tag, err := ociimage.Build(s)
	require.NoError(t, err)
	assert.Equal(t, "1.2.3", tag.TagStr())
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", cfg.Config.User)
	assert.Equal(t, []string{"/tpctl", "operator"}, cfg.Config.Entrypoint)
	layers, err := img.Layers()
	require.NoError(t, err)
	assert.Len(t, layers, 1)
}

func TestWriteForAnotherArch(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl")
	require.NoError(t, os.WriteFile(bin, []byte("\x7fELF arm64 tpctl"), 0o755))

	path, ref, err := Write(filepath.Join(dir, "a"), "v1.2.3", "arm64", Dedicated, bin)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "a", FileName("v1.2.3")), path)
	assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", ref)

	img, err := tarball.ImageFromPath(path, nil)
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "arm64", cfg.Architecture, "the image must name the binary's architecture, not the build machine's")
	assert.Equal(t, "linux", cfg.OS)
	assert.Equal(t, []string{"/tpctl-operator"}, cfg.Config.Entrypoint)
}

func TestWriteIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl")
	require.NoError(t, os.WriteFile(bin, []byte("same binary"), 0o755))
	a, _, err := Write(filepath.Join(dir, "a"), "v0.1.0", "amd64", Dedicated, bin)
	require.NoError(t, err)
	b, _, err := Write(filepath.Join(dir, "b"), "v0.1.0", "amd64", Dedicated, bin)
	require.NoError(t, err)
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.Equal(t, ab, bb, "two archives of the same binary must be byte-identical")
}

func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	_, _, err := Write(dir, "v0.1.0", "riscv64", Dedicated, filepath.Join(dir, "tpctl"))
	assert.ErrorContains(t, err, `architecture "riscv64"`)
	_, _, err = Write(dir, "v0.1.0", "amd64", Dedicated, filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read the amd64 operator binary")
	_, err = ParseProgram("kubectl")
	assert.ErrorContains(t, err, `"kubectl" is not tpctl-operator or tpctl`)
}

func TestArchiveIsDeterministic(t *testing.T) {
	bin, err := os.ReadFile(imagetest.StaticBinary(t))
	require.NoError(t, err)
	a, err := Archive("v1.2.3", bin)
	require.NoError(t, err)
	b, err := Archive("v1.2.3", bin)
	require.NoError(t, err)
	assert.Equal(t, sha256Hex(a), sha256Hex(b), "same binary and version, same bytes")

	// The same bytes `make release` writes for the payload.
	file := filepath.Join(t.TempDir(), "img.tar")
	_, err = ociimage.WriteTarball(file, Spec("v1.2.3", "", SelfCopy, bin))
	require.NoError(t, err)
	rel, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, sha256Hex(rel), sha256Hex(a))

	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(a)), nil })
	require.NoError(t, err)
	require.Len(t, m, 1)
	assert.Equal(t, []string{"tpctl.local/tpctl-operator:1.2.3"}, m[0].RepoTags)

	other, err := Archive("v1.2.4", bin)
	require.NoError(t, err)
	assert.NotEqual(t, sha256Hex(a), sha256Hex(other))
}

func TestCheckStatic(t *testing.T) {
	assert.NoError(t, CheckStatic(imagetest.StaticBinary(t)))

	text := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755))
	assert.ErrorContains(t, CheckStatic(text), "is not an ELF executable")

	dyn := "/bin/true"
	f, err := elf.Open(dyn)
	if err != nil {
		t.Skipf("no ELF %s here: %v", dyn, err)
	}
	interp := false
	for _, p := range f.Progs {
		interp = interp || p.Type == elf.PT_INTERP
	}
	f.Close()
	if !interp {
		t.Skipf("%s is static on this system", dyn)
	}
	err = CheckStatic(dyn)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is dynamically linked (interpreter /")
	assert.Contains(t, err.Error(), "CGO_ENABLED=0")
	assert.Contains(t, err.Error(), "--skip-charts")
}

// The release's image runs the dedicated operator binary alone at
// /tpctl-operator; the self-copy fallback runs `tpctl operator`. Both have
// the same reference.
func TestSpecDedicated(t *testing.T) {
	p, err := ParseProgram("tpctl-operator")
	require.NoError(t, err)
	assert.Equal(t, Dedicated, p)
	p, err = ParseProgram("tpctl")
	require.NoError(t, err)
	assert.Equal(t, SelfCopy, p)

	d := Spec("v1.2.3", "amd64", Dedicated, []byte("binary"))
	assert.Equal(t, []string{"/tpctl-operator"}, d.Entrypoint)
	require.Len(t, d.Files, 1)
	assert.Equal(t, "/tpctl-operator", d.Files[0].Path)
	assert.True(t, d.Files[0].Executable)
	assert.Equal(t, Spec("v1.2.3", "amd64", SelfCopy, nil).Ref, d.Ref)
}

// Build (scripts/build-operator-image and the operator's e2e test) puts
// cmd/tpctl-operator in the image: a binary of that package whose modules
// leave out Helm, the TUI and sqlite.
func TestBuildShipsTheDedicatedBinary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the go tool is missing, and CI must run this test")
		}
		t.Skip("needs the go tool on PATH: the test builds cmd/tpctl-operator")
	}
	if testing.Short() {
		t.Skip("-short: the test builds cmd/tpctl-operator (a minute of compiling)")
	}
	dir := t.TempDir()
	path, ref, err := Build(context.Background(), "../..", "v1.2.3", "abc", dir)
	require.NoError(t, err)
	assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", ref)
	img, err := tarball.ImageFromPath(path, nil)
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"/tpctl-operator"}, cfg.Config.Entrypoint)

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	bin := filepath.Join(dir, "bin")
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if h.Name != "tpctl-operator" && h.Name != "/tpctl-operator" {
			continue
		}
		f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
		require.NoError(t, err)
		_, err = io.Copy(f, tr)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		found = true
	}
	require.True(t, found, "no /tpctl-operator in the image's layer")
	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	assert.Equal(t, "github.com/tpctl/tpctl/cmd/tpctl-operator", info.Path)
	for _, d := range info.Deps {
		for _, heavy := range []string{"helm.sh/", "github.com/charmbracelet/", "modernc.org/sqlite"} {
			assert.False(t, strings.HasPrefix(d.Path, heavy), "the operator binary links %s", d.Path)
		}
	}
	assert.NoError(t, CheckStatic(bin))
}
