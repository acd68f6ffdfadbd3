package release

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/operator/image"
)

func TestValidArch(t *testing.T) {
	assert.True(t, ValidArch("amd64"))
	assert.True(t, ValidArch("arm64"))
	assert.False(t, ValidArch("riscv64"))
	assert.False(t, ValidArch(""))
}

func TestWriteOperatorImageForAnotherArch(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl")
	require.NoError(t, os.WriteFile(bin, []byte("\x7fELF arm64 tpctl"), 0o755))

	path, ref, err := WriteOperatorImage(filepath.Join(dir, "a"), "v1.2.3", "arm64", bin)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "a", image.FileName("v1.2.3")), path)
	assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", ref)

	img, err := tarball.ImageFromPath(path, nil)
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "arm64", cfg.Architecture, "the image must name the binary's architecture, not the build machine's")
	assert.Equal(t, "linux", cfg.OS)
	assert.Equal(t, []string{"/tpctl", "operator"}, cfg.Config.Entrypoint)
}

func TestWriteOperatorImageIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl")
	require.NoError(t, os.WriteFile(bin, []byte("same binary"), 0o755))
	a, _, err := WriteOperatorImage(filepath.Join(dir, "a"), "v0.1.0", "amd64", bin)
	require.NoError(t, err)
	b, _, err := WriteOperatorImage(filepath.Join(dir, "b"), "v0.1.0", "amd64", bin)
	require.NoError(t, err)
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.Equal(t, ab, bb, "two archives of the same binary must be byte-identical")
}

func TestWriteOperatorImageRefuses(t *testing.T) {
	dir := t.TempDir()
	_, _, err := WriteOperatorImage(dir, "v0.1.0", "riscv64", filepath.Join(dir, "tpctl"))
	assert.ErrorContains(t, err, `architecture "riscv64"`)
	_, _, err = WriteOperatorImage(dir, "v0.1.0", "amd64", filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read the amd64 tpctl binary")
}
