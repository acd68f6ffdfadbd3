package image

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/ociimage"
)

func TestSpec(t *testing.T) {
	s := Spec("v1.2.3", []byte("binary"))
	assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", s.Ref)
	assert.Equal(t, []string{"/tpctl", "operator"}, s.Entrypoint)
	assert.Equal(t, "65532:65532", s.User)
	assert.Equal(t, "tpctl-operator-0.0.0-abc-dirty.tar", FileName("abc-dirty"))

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
