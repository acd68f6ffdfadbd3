package payloadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/registrytest"
)

const pinnedRef = "docker.io/fluent/fluent-bit:5.1.1"

func startRegistry(t *testing.T) *registrytest.Registry {
	return registrytest.Start(t, "fluent/fluent-bit:5.1.1")
}

func TestFetchImageWritesThePinnedPlatformImage(t *testing.T) {
	reg := startRegistry(t)
	for _, arch := range []string{"amd64", "arm64"} {
		dst := filepath.Join(t.TempDir(), arch, "fluent-bit-5.1.1.tar")
		got, err := FetchImage(context.Background(), ImagePin{Ref: pinnedRef, Digest: reg.Index.String(), Mirror: reg.Host}, arch, dst)
		require.NoError(t, err)
		want, err := reg.Images[arch].Digest()
		require.NoError(t, err)
		assert.Equal(t, want.String(), got)

		// The archive holds that image, tagged as pods name it.
		tag, err := name.NewTag(pinnedRef)
		require.NoError(t, err)
		img, err := tarball.ImageFromPath(dst, &tag)
		require.NoError(t, err, "the archive carries the image under %s", pinnedRef)
		d, err := img.Digest()
		require.NoError(t, err)
		assert.Equal(t, want, d)
		// The tag is written as given: the fully qualified docker.io name
		// that containerd normalises fluent/fluent-bit:5.1.1 to, so the
		// kubelet finds the imported image without a registry.
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(dst) })
		require.NoError(t, err)
		require.Len(t, m, 1)
		assert.Equal(t, []string{pinnedRef}, m[0].RepoTags)
		st, err := os.Stat(dst)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
		left, err := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*"))
		require.NoError(t, err)
		assert.Empty(t, left, "no temporary file is left")
	}
}

func TestFetchImageRefuses(t *testing.T) {
	reg := startRegistry(t)
	other, err := random.Index(64, 1, 1)
	require.NoError(t, err)
	otherDigest, err := other.Digest()
	require.NoError(t, err)
	ok := ImagePin{Ref: pinnedRef, Digest: reg.Index.String(), Mirror: reg.Host}

	for _, tc := range []struct {
		name string
		pin  ImagePin
		arch string
		want string
	}{
		{"no digest", ImagePin{Ref: pinnedRef, Mirror: reg.Host}, "amd64", "no digest pinned"},
		{"a bad digest", ImagePin{Ref: pinnedRef, Digest: "sha256:abc", Mirror: reg.Host}, "amd64", "digest"},
		{"a reference without a tag", ImagePin{Ref: "cr.fluentbit.io/fluent/fluent-bit", Digest: ok.Digest, Mirror: reg.Host}, "amd64", "REGISTRY/REPOSITORY:TAG"},
		{"a digest the registry does not have", ImagePin{Ref: pinnedRef, Digest: otherDigest.String(), Mirror: reg.Host}, "amd64", "fetch"},
		{"an architecture the list does not have", ok, "riscv64", "riscv64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "image.tar")
			_, err := FetchImage(context.Background(), tc.pin, tc.arch, dst)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NoFileExists(t, dst)
		})
	}

	// Content that does not match the digests is refused, whichever part
	// the registry changed.
	amd, err := reg.Images["amd64"].Manifest()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		path string
	}{
		{"the manifest list", "/manifests/" + reg.Index.String()},
		{"a layer", "/blobs/" + amd.Layers[1].Digest.String()},
		{"the config", "/blobs/" + amd.Config.Digest.String()},
	} {
		t.Run("a tampered "+tc.name, func(t *testing.T) {
			reg.Tamper(t, func(r *http.Request, body []byte) []byte {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, tc.path) && len(body) > 0 {
					b := bytes.Clone(body)
					b[len(b)/2] ^= 0xff
					return b
				}
				return body
			})
			dst := filepath.Join(t.TempDir(), "image.tar")
			_, err := FetchImage(context.Background(), ok, "amd64", dst)
			require.Error(t, err)
			assert.Regexp(t, `does not match requested digest|error verifying sha256 checksum`, err.Error())
			assert.NoFileExists(t, dst)
		})
	}
}

// The release fetches the image pods run when they name none: the pin in
// scripts/fetch-fluent-bit is DefaultPipelineImage.
func TestFetchScriptPinsTheDefaultPipelineImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "fetch-fluent-bit"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^FLUENT_BIT_IMAGE=\$\{FLUENT_BIT_IMAGE:-(.+)\}$`).FindSubmatch(b)
	require.NotNil(t, m, "scripts/fetch-fluent-bit sets FLUENT_BIT_IMAGE")
	assert.Equal(t, v1alpha1.DefaultPipelineImage, string(m[1]))
	assert.Equal(t, pinnedRef, v1alpha1.DefaultPipelineImage)
}

// The release pins the manifest list by a well-formed digest by default, so
// scripts/release fetches the image instead of stopping for want of a pin.
func TestFetchScriptPinsADigest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "fetch-fluent-bit"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^FLUENT_BIT_DIGEST=\$\{FLUENT_BIT_DIGEST-(.*)\}$`).FindSubmatch(b)
	require.NotNil(t, m, "scripts/fetch-fluent-bit sets FLUENT_BIT_DIGEST, empty when set empty")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, string(m[1]))
}
