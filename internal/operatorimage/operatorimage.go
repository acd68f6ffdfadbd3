// Package operatorimage is the one home of the operator's container image:
// a static tpctl binary in one layer, entrypoint `tpctl operator`, user
// 65532, written as a docker-archive that K3s imports from its air-gap
// image directory (and `ctr images import` accepts). The installer builds
// it from the running binary, the release from each architecture's binary,
// and `scripts/build-operator-image` from this tree; all three get the same
// bytes for the same binary, version and architecture.
package operatorimage

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

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

// FileName is the archive's name in the release directory and in K3s's
// images directory.
func FileName(version string) string {
	return "tpctl-operator-" + charts.SemVer(version) + ".tar"
}

// elfMachine is the ELF machine of each architecture tpctl is built for.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// Arches are the architectures tpctl is built for, sorted.
func Arches() []string {
	var a []string
	for k := range elfMachine {
		a = append(a, k)
	}
	sort.Strings(a)
	return a
}

// Spec describes the image around an already built static binary for
// linux/arch ("": the architecture of this build).
func Spec(version, arch string, binary []byte) ociimage.Spec {
	s := ociimage.Spec{
		Ref:        Ref(version),
		Entrypoint: []string{"/tpctl", "operator"},
		User:       User,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "tpctl-operator",
			"org.opencontainers.image.version": charts.SemVer(version),
		},
		Files: []ociimage.File{{Path: "/tpctl", Data: binary, Executable: true}},
	}
	if arch != "" {
		s.OS, s.Arch = "linux", arch
	}
	return s
}

// Archive returns the image archive around binary, a static tpctl for this
// machine's architecture (what install stages when its payload carries no
// operator image).
func Archive(version string, binary []byte) ([]byte, error) {
	img, tag, err := ociimage.Build(Spec(version, "", binary))
	if err != nil {
		return nil, fmt.Errorf("build the operator image: %w", err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		return nil, fmt.Errorf("write the operator image %s: %w", tag, err)
	}
	return buf.Bytes(), nil
}

// Write reads the tpctl binary built for arch and writes the image archive
// (FileName) into dir. It returns the archive's path and the image
// reference.
func Write(dir, version, arch, binaryPath string) (path, ref string, err error) {
	if _, ok := elfMachine[arch]; !ok {
		return "", "", fmt.Errorf("operator image: architecture %q is not one of %v", arch, Arches())
	}
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return "", "", fmt.Errorf("read the %s tpctl binary: %w", arch, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	spec := Spec(version, arch, bin)
	path = filepath.Join(dir, FileName(version))
	if _, err := ociimage.WriteTarball(path, spec); err != nil {
		return "", "", fmt.Errorf("write the %s operator image: %w", arch, err)
	}
	return path, spec.Ref, nil
}

// CheckStatic refuses a binary that cannot run alone in the image: not an
// ELF executable, dynamically linked (a build with cgo; the image has no C
// library), or built for another architecture than this machine's.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the operator image is built from the tpctl binary, but %s is not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
		return fmt.Errorf("the operator image is built from the tpctl binary, but %s is dynamically linked (interpreter %s) and would not run in the image: "+
			"build tpctl with CGO_ENABLED=0 (`make build`), use a release build, or install without the charts (--skip-charts)",
			path, strings.TrimRight(string(interp), "\x00"))
	}
	if want, ok := elfMachine[runtime.GOARCH]; ok && f.Machine != want {
		return fmt.Errorf("the tpctl binary %s is built for %s, not for this host's %s", path, f.Machine, runtime.GOARCH)
	}
	return nil
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

// Build compiles the binary from the module at root and writes the image
// archive for this machine's architecture into dir. It returns the
// archive's path and the image's reference.
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
	return Write(dir, version, runtime.GOARCH, bin)
}
