package registrytest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The registry really serves a list of both architectures, each entry
// naming its platform and pointing at that architecture's image.
func TestStartServesTwoPlatforms(t *testing.T) {
	reg := Start(t, "fluent/fluent-bit:4.0.3")
	tag, err := name.NewTag(reg.Host + "/fluent/fluent-bit:4.0.3")
	require.NoError(t, err)
	idx, err := remote.Index(tag)
	require.NoError(t, err)
	d, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, reg.Index, d)
	m, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, len(Arches))
	for i, arch := range Arches {
		want, err := reg.Images[arch].Digest()
		require.NoError(t, err)
		assert.Equal(t, want, m.Manifests[i].Digest)
		assert.Equal(t, arch, m.Manifests[i].Platform.Architecture)
	}
}
