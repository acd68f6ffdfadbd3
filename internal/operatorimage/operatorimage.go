// Package operatorimage is the one home of the operator's container image:
// one static binary in one layer, user 65532, written as a docker-archive
// that K3s imports from its air-gap image directory (and `ctr images
// import` accepts). The binary is one of two programs (see Program):
//
//   - Dedicated, what the release ships and `scripts/build-operator-image`
//     builds: cmd/tpctl-operator at /tpctl-operator, the operator alone.
//   - SelfCopy, the fallback of a tpctl built without a payload (plain `go
//     build` or `make build`): install copies the running tpctl binary to
//     /tpctl, entrypoint `tpctl operator`. It runs the same operator, but
//     it carries all of tpctl (installer, Helm, the TUI, sqlite), whose
//     package initialisation and pages cost the pod about twice the
//     resident memory of the dedicated binary at idle.
//
// The image reference and archive name are the same for both; the same
// program, binary, version and architecture give the same bytes.
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

// Program is the binary an operator image runs.
type Program int

const (
	// Dedicated is cmd/tpctl-operator, the operator linked alone, at
	// /tpctl-operator: what the release's payload carries.
	Dedicated Program = iota
	// SelfCopy is the tpctl binary itself at /tpctl, run as `tpctl
	// operator`: what install builds from the running tpctl when its
	// payload carries no operator image.
	SelfCopy
)

// DedicatedPackage is the Go package of the Dedicated program.
const DedicatedPackage = "./cmd/tpctl-operator"

// ParseProgram reads a Program by its binary's name: "tpctl-operator" or
// "tpctl".
func ParseProgram(s string) (Program, error) {
	switch s {
	case "tpctl-operator":
		return Dedicated, nil
	case "tpctl":
		return SelfCopy, nil
	}
	return 0, fmt.Errorf("operator image program %q is not tpctl-operator or tpctl", s)
}

// path and entrypoint of the program in the image.
func (p Program) layout() (path string, entrypoint []string) {
	if p == SelfCopy {
		return "/tpctl", []string{"/tpctl", "operator"}
	}
	return "/tpctl-operator", []string{"/tpctl-operator"}
}

// Spec describes the image around an already built static binary of prog
// for linux/arch ("": the architecture of this build).
func Spec(version, arch string, prog Program, binary []byte) ociimage.Spec {
	path, entry := prog.layout()
	s := ociimage.Spec{
		Ref:        Ref(version),
		Entrypoint: entry,
		User:       User,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "tpctl-operator",
			"org.opencontainers.image.version": charts.SemVer(version),
		},
		Files: []ociimage.File{{Path: path, Data: binary, Executable: true}},
	}
	if arch != "" {
		s.OS, s.Arch = "linux", arch
	}
	return s
}

// Archive returns the SelfCopy image archive around binary, a static tpctl
// for this machine's architecture (what install stages when its payload
// carries no operator image).
func Archive(version string, binary []byte) ([]byte, error) {
	img, tag, err := ociimage.Build(Spec(version, "", SelfCopy, binary))
	if err != nil {
		return nil, fmt.Errorf("build the operator image: %w", err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		return nil, fmt.Errorf("write the operator image %s: %w", tag, err)
	}
	return buf.Bytes(), nil
}

// Write reads the binary of prog built for arch and writes the image
// archive (FileName) into dir. It returns the archive's path and the image
// reference.
func Write(dir, version, arch string, prog Program, binaryPath string) (path, ref string, err error) {
	if _, ok := elfMachine[arch]; !ok {
		return "", "", fmt.Errorf("operator image: architecture %q is not one of %v", arch, Arches())
	}
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return "", "", fmt.Errorf("read the %s operator binary: %w", arch, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	spec := Spec(version, arch, prog, bin)
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

// BuildBinary compiles the Dedicated program (cmd/tpctl-operator)
// statically (CGO_ENABLED=0) from the module at root into dst, stamping
// version and commit like the Makefile does.
func BuildBinary(ctx context.Context, root, version, commit, dst string) error {
	const pkg = "github.com/tpctl/tpctl/internal/buildinfo"
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Commit=%s", pkg, version, pkg, commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", dst, DedicatedPackage)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", DedicatedPackage, err, out)
	}
	return nil
}

// Build compiles the Dedicated program from the module at root and writes
// the image archive for this machine's architecture into dir. It returns
// the archive's path and the image's reference.
func Build(ctx context.Context, root, version, commit, dir string) (path, ref string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("make %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(dir, ".operator-build-")
	if err != nil {
		return "", "", fmt.Errorf("make build dir in %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "tpctl-operator")
	if err := BuildBinary(ctx, root, version, commit, bin); err != nil {
		return "", "", err
	}
	return Write(dir, version, runtime.GOARCH, Dedicated, bin)
}
