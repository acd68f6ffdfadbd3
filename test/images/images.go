// Package images builds the container images of the test harness from the Go
// programs beside it (pause, sink, probe, klipperlb, traefik, localpath), with internal/ociimage: static binaries,
// one layer, docker-archive tarballs for `ctr images import`.
package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tpctl/tpctl/internal/ociimage"
)

// Image references of the test images. Tags are versions, never latest, so the
// kubelet uses the imported image instead of pulling.
const (
	PauseRef = "tpctl.test/pause:1"
	SinkRef  = "tpctl.test/sink:1"
	ProbeRef = "tpctl.test/probe:1"
	// KlipperLBRef and TraefikRef stand in for the images of K3s's
	// servicelb pods and packaged Traefik.
	KlipperLBRef = "tpctl.test/klipper-lb:1"
	TraefikRef   = "tpctl.test/traefik:1"
	// LocalPathRef stands in for rancher/local-path-provisioner.
	LocalPathRef = "tpctl.test/local-path-provisioner:1"
)

// Program is a Go main package packaged as an image.
type Program struct {
	Package    string // import path of the main package
	Ref        string // image reference
	Binary     string // path of the binary inside the image
	User       string // uid[:gid]
	Entrypoint []string
}

// Pause is the pod sandbox image: reaps children, exits on SIGTERM, runs as 65535.
func Pause() Program {
	return Program{
		Package: "github.com/tpctl/tpctl/test/images/pause", Ref: PauseRef,
		Binary: "/pause", User: "65535:65535", Entrypoint: []string{"/pause"},
	}
}

// Sink is the stand-in data plane: see test/images/sink.
func Sink() Program {
	return Program{
		Package: "github.com/tpctl/tpctl/test/images/sink", Ref: SinkRef,
		Binary: "/sink", User: "65532:65532", Entrypoint: []string{"/sink"},
	}
}

// Probe runs network checks from inside a pod: see test/images/probe.
func Probe() Program {
	return Program{
		Package: "github.com/tpctl/tpctl/test/images/probe", Ref: ProbeRef,
		Binary: "/probe", User: "65532:65532", Entrypoint: []string{"/probe"},
	}
}

// KlipperLB forwards a svclb pod's port to its Service: see
// test/images/klipperlb. It runs as root, as K3s's klipper-lb does (ports
// below 1024, NET_ADMIN).
func KlipperLB() Program {
	return Program{
		Package: "github.com/tpctl/tpctl/test/images/klipperlb", Ref: KlipperLBRef,
		Binary: "/klipperlb", User: "0:0", Entrypoint: []string{"/klipperlb"},
	}
}

// Traefik answers on Traefik's entry points: see test/images/traefik.
func Traefik() Program {
	return Program{
		Package: "github.com/tpctl/tpctl/test/images/traefik", Ref: TraefikRef,
		Binary: "/traefik", User: "65532:65532", Entrypoint: []string{"/traefik"},
	}
}

// LocalPath provisions hostPath volumes: see test/images/localpath. It runs
// as root to make directories in the node's storage directory.
func LocalPath() Program {
	return Program{
		Package: "github.com/tpctl/tpctl/test/images/localpath", Ref: LocalPathRef,
		Binary: "/localpath", User: "0:0", Entrypoint: []string{"/localpath"},
	}
}

// Build compiles p statically for linux/GOARCH and writes its image tarball
// into dir, returning the tarball's path. It must run inside this module (the
// go tool resolves p.Package from the working directory).
func Build(ctx context.Context, dir string, p Program) (string, error) {
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", fmt.Errorf("make build dir in %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, filepath.Base(p.Binary))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, p.Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", p.Package, err, out)
	}
	f, err := ociimage.FileFromPath(bin, p.Binary, true)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(p.Binary)+".tar")
	if _, err := ociimage.WriteTarball(dst, ociimage.Spec{
		Ref: p.Ref, Entrypoint: p.Entrypoint, User: p.User, Files: []ociimage.File{f},
	}); err != nil {
		return "", fmt.Errorf("write image %s: %w", p.Ref, err)
	}
	return dst, nil
}
