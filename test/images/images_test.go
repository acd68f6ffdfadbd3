package images

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildImages(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: compiles two programs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, p := range []Program{Pause(), Sink(), Probe(), KlipperLB(), Traefik(), LocalPath()} {
		t.Run(p.Ref, func(t *testing.T) {
			path, err := Build(ctx, t.TempDir(), p)
			require.NoError(t, err)
			tag, err := name.NewTag(p.Ref)
			require.NoError(t, err)
			img, err := tarball.ImageFromPath(path, &tag)
			require.NoError(t, err)
			cfg, err := img.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, p.Entrypoint, cfg.Config.Entrypoint)
			assert.Equal(t, p.User, cfg.Config.User)
			layers, err := img.Layers()
			require.NoError(t, err)
			require.Len(t, layers, 1)
			size, err := layers[0].Size()
			require.NoError(t, err)
			assert.Greater(t, size, int64(100_000), "layer holds the static binary")
		})
	}
}
