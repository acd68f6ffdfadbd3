// Package release holds the parts of `make release` (scripts/release) that
// are Go rather than shell: the operator image for each architecture of the
// release, built around a tpctl binary that scripts/release cross-compiled
// with the release's own build flags, so that every byte of the payload
// follows from the commit.
package release

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tpctl/tpctl/internal/ociimage"
	"github.com/tpctl/tpctl/operator/image"
)

// Arches are the architectures a release is built for, in the order
// SHA256SUMS lists them.
func Arches() []string { return []string{"amd64", "arm64"} }

// ValidArch reports whether arch is one of Arches.
func ValidArch(arch string) bool {
	for _, a := range Arches() {
		if a == arch {
			return true
		}
	}
	return false
}

// OperatorImageSpec is the operator image for arch around binary, a static
// linux/arch tpctl: the operator package's image with the architecture set
// to the binary's rather than the build machine's.
func OperatorImageSpec(version, arch string, binary []byte) ociimage.Spec {
	s := image.Spec(version, binary)
	s.OS, s.Arch = "linux", arch
	return s
}

// WriteOperatorImage reads the tpctl binary built for arch and writes the
// operator image archive (image.FileName) into dir. It returns the archive's
// path and the image reference.
func WriteOperatorImage(dir, version, arch, binaryPath string) (path, ref string, err error) {
	if !ValidArch(arch) {
		return "", "", fmt.Errorf("operator image: architecture %q is not one of %v", arch, Arches())
	}
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return "", "", fmt.Errorf("read the %s tpctl binary: %w", arch, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	spec := OperatorImageSpec(version, arch, bin)
	path = filepath.Join(dir, image.FileName(version))
	if _, err := ociimage.WriteTarball(path, spec); err != nil {
		return "", "", fmt.Errorf("write the %s operator image: %w", arch, err)
	}
	return path, spec.Ref, nil
}
