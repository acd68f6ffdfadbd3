// Package image builds the operator's container image without a container
// engine: a static tpctl binary in one layer, entrypoint `tpctl operator`,
// user 65532, written as a docker-archive tarball that K3s imports from its
// air-gap image directory (and `ctr images import` accepts).
package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/internal/ociimage"
)

// Repository is the operator image's name; the tp-operator chart's default
// image.repository.
const Repository = "tpctl.local/tpctl-operator"

// User is the uid:gid the operator runs as.
const User = "65532:65532"

// Ref returns the image reference for a build version; the tag is the
// chart's appVersion for the same version (charts.SemVer).
func Ref(version string) string { return Repository + ":" + charts.SemVer(version) }

// FileName is the archive's name in the release directory.
func FileName(version string) string {
	return "tpctl-operator-" + charts.SemVer(version) + ".tar"
}

// Spec describes the image around an already built static binary.
func Spec(version string, binary []byte) ociimage.Spec {
	return ociimage.Spec{
		Ref:        Ref(version),
		Entrypoint: []string{"/tpctl", "operator"},
		User:       User,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "tpctl-operator",
			"org.opencontainers.image.version": charts.SemVer(version),
		},
		Files: []ociimage.File{{Path: "/tpctl", Data: binary, Executable: true}},
	}
}

// BuildBinary compiles cmd/tpctl statically (CGO_ENABLED=0) from the module
// at root into dst, stamping version and commit like the Makefile does.
func BuildBinary(ctx context.Context, root, version, commit, dst string) error {
	const pkg = "github.com/tpctl/tpctl/internal/buildinfo"
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Commit=%s", pkg, version, pkg, commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", dst, "./cmd/tpctl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/tpctl: %w\n%s", err, out)
	}
	return nil
}

// Build compiles the binary and writes the image archive into dir. It
// returns the archive's path and the image's reference.
func Build(ctx context.Context, root, version, commit, dir string) (path, ref string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("make %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(dir, ".operator-build-")
	if err != nil {
		return "", "", fmt.Errorf("make build dir in %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "tpctl")
	if err := BuildBinary(ctx, root, version, commit, bin); err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", "", fmt.Errorf("read %s: %w", bin, err)
	}
	path = filepath.Join(dir, FileName(version))
	spec := Spec(version, data)
	if _, err := ociimage.WriteTarball(path, spec); err != nil {
		return "", "", fmt.Errorf("write operator image: %w", err)
	}
	return path, spec.Ref, nil
}
