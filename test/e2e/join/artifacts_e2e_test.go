//go:build e2e

package join

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/tpctl/tpctl/internal/ociimage"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/images"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// artifacts are what every host gets: tpctl, the K3s stand-in (given to
// --k3s-binary) and the air-gap image archives (--k3s-images), as the
// install tests build them.
type artifacts struct {
	tpctl, launcher string
	images          []string
	components      string // binary directory bound into the hosts for the stand-in
}

func moduleRoot() (string, error) {
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

func goBuild(ctx context.Context, root, out, pkg, ldflags string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

func buildArtifacts(ctx context.Context, dir string) (artifacts, error) {
	var a artifacts
	root, err := moduleRoot()
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
	a.components = bins.Dir
	a.tpctl = filepath.Join(dir, "tpctl")
	if err := goBuild(ctx, root, a.tpctl, "./cmd/tpctl", "-s -w -X github.com/tpctl/tpctl/internal/buildinfo.Version=v0.0.0-e2e"); err != nil {
		return a, err
	}
	a.launcher = filepath.Join(dir, "k3s")
	if err := goBuild(ctx, root, a.launcher, "./test/k3slauncher", "-s -w"); err != nil {
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
	a.images = []string{pause, dnsTar}
	for _, p := range []images.Program{images.Sink(), images.KlipperLB(), images.Traefik(), images.LocalPath()} {
		tar, err := images.Build(ctx, imgDir, p)
		if err != nil {
			return a, err
		}
		a.images = append(a.images, tar)
	}
	return a, nil
}
