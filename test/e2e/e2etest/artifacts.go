package e2etest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tpctl/tpctl/internal/ociimage"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// HostArtifacts are the files a booted-host test copies into its hosts:
// tpctl, the K3s stand-in (given to --k3s-binary) and the air-gap image
// archives (--k3s-images).
type HostArtifacts struct {
	Tpctl, Launcher string
	Images          []string
	// Components is the binary directory bound into the hosts for the
	// stand-in (kube-apiserver, kubelet, containerd, ...).
	Components string
}

// ModuleRoot is the directory holding the product's go.mod.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tpctl/tpctl\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no module root above %s", wd)
		}
	}
}

// GoBuild builds pkg (relative to root) statically for Linux into out.
func GoBuild(ctx context.Context, root, out, pkg, ldflags string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// BuildHostArtifacts builds tpctl as `make build` does (version
// v0.0.0-e2e; $TPCTL_E2E_TPCTL names a binary to test instead, a release
// build say), the stand-in, and the images (pause, CoreDNS, the sink that
// stands in for Fluent Bit, whose image cannot be fetched here, and the
// stand-ins of K3s's packaged components: svclb, Traefik, local-path) into
// dir.
func BuildHostArtifacts(ctx context.Context, dir string) (HostArtifacts, error) {
	var a HostArtifacts
	root, err := ModuleRoot()
	if err != nil {
		return a, err
	}
	bins, err := cluster.FindBinaries()
	if err != nil {
		return a, err
	}
	coredns, err := bins.Path("coredns")
	if err != nil {
		return a, err
	}
	if _, err := bins.Require("kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"); err != nil {
		return a, err
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
		if _, err := os.Stat(filepath.Join(bins.Dir, b+"-"+launcher.ContainerdVersion())); err != nil {
			return a, fmt.Errorf("the stand-in's containerd (run scripts/test-deps): %w", err)
		}
	}
	a.Components = bins.Dir
	if a.Tpctl = os.Getenv("TPCTL_E2E_TPCTL"); a.Tpctl == "" {
		a.Tpctl = filepath.Join(dir, "tpctl")
		if err := GoBuild(ctx, root, a.Tpctl, "./cmd/tpctl", "-s -w -X github.com/tpctl/tpctl/internal/buildinfo.Version=v0.0.0-e2e"); err != nil {
			return a, err
		}
	}
	a.Launcher = filepath.Join(dir, "k3s")
	if err := GoBuild(ctx, root, a.Launcher, "./test/k3slauncher", "-s -w"); err != nil {
		return a, err
	}
	imgDir := filepath.Join(dir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return a, fmt.Errorf("make %s: %w", imgDir, err)
	}
	pause, err := images.Build(ctx, imgDir, images.Pause())
	if err != nil {
		return a, err
	}
	f, err := ociimage.FileFromPath(coredns, "/coredns", true)
	if err != nil {
		return a, err
	}
	dnsTar := filepath.Join(imgDir, "coredns.tar")
	if _, err := ociimage.WriteTarball(dnsTar, ociimage.Spec{
		Ref: launcher.CoreDNSImage(), Entrypoint: []string{"/coredns"}, User: "65532:65532", Files: []ociimage.File{f},
	}); err != nil {
		return a, fmt.Errorf("write the CoreDNS image: %w", err)
	}
	a.Images = []string{pause, dnsTar}
	for _, p := range []images.Program{images.Sink(), images.KlipperLB(), images.Traefik(), images.LocalPath()} {
		tar, err := images.Build(ctx, imgDir, p)
		if err != nil {
			return a, err
		}
		a.Images = append(a.Images, tar)
	}
	return a, nil
}

// NeedBootedHost checks what a booted-host test needs: root, the cached
// Debian root and the Kubernetes binaries. A missing one skips the test on
// a developer's machine; under CI (CI=true, where scripts/test-deps has
// run) it fails it, so a broken dependency step never turns into a silent
// skip.
func NeedBootedHost(t testing.TB) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+" (CI must run this test)", args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		missing("needs root: boots a systemd host")
		return
	}
	hosttest.RequireRootfs(t)
	if _, err := cluster.FindBinaries(); err != nil {
		missing("needs the Kubernetes binaries (scripts/test-deps): %v", err)
	}
}
