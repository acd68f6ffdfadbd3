//go:build e2e

package install

import (
	"context"

	"github.com/tpctl/tpctl/test/e2e/e2etest"
)

// artifacts are the files a test copies into its hosts (e2etest.HostArtifacts).
type artifacts struct {
	tpctl, launcher string
	images          []string
	components      string
}

func buildArtifacts(ctx context.Context, dir string) (artifacts, error) {
	h, err := e2etest.BuildHostArtifacts(ctx, dir)
	return artifacts{tpctl: h.Tpctl, launcher: h.Launcher, images: h.Images, components: h.Components}, err
}

func moduleRoot() (string, error) { return e2etest.ModuleRoot() }

func goBuild(ctx context.Context, root, out, pkg, ldflags string) error {
	return e2etest.GoBuild(ctx, root, out, pkg, ldflags)
}
