package payloadgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ImagePin names a released image by tag and pins its content by digest.
type ImagePin struct {
	// Ref is the tag reference the image is imported under, as pods name it
	// (docker.io/fluent/fluent-bit:5.1.1).
	Ref string
	// Digest is the sha256 digest of the tag's manifest list (or of its
	// single manifest): what is fetched, whatever the tag points to today.
	Digest string
	// Mirror, when set, is a registry host[:port] serving the same
	// repository; the digest still decides what is accepted.
	Mirror string
}

// FetchImage downloads pin's image for linux/arch and writes it to dst as a
// docker-archive tagged pin.Ref, which K3s imports from its air-gap image
// directory. Every byte is checked against the pin: the manifest list by
// its digest, the platform's manifest by the digest the list gives, the
// config and layers by the digests the manifest gives. It returns the
// platform image's manifest digest.
func FetchImage(ctx context.Context, pin ImagePin, arch, dst string) (string, error) {
	tag, err := name.NewTag(pin.Ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image %q: want REGISTRY/REPOSITORY:TAG: %w", pin.Ref, err)
	}
	if !strings.HasPrefix(pin.Digest, "sha256:") {
		return "", fmt.Errorf("image %s: no digest pinned (want sha256:<64 hex digits>, got %q)", pin.Ref, pin.Digest)
	}
	repo := tag.Context()
	if pin.Mirror != "" {
		if repo, err = name.NewRepository(pin.Mirror+"/"+repo.RepositoryStr(), name.StrictValidation); err != nil {
			return "", fmt.Errorf("mirror %q: %w", pin.Mirror, err)
		}
	}
	ref, err := name.NewDigest(repo.Name()+"@"+pin.Digest, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image %s: digest %q: %w", pin.Ref, pin.Digest, err)
	}
	platform := v1.Platform{OS: "linux", Architecture: arch}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(platform)}
	// Get checks the fetched manifest (list) against the pinned digest.
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return "", fmt.Errorf("image %s for linux/%s: %w", ref, arch, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("image %s for linux/%s: config: %w", ref, arch, err)
	}
	if cfg.OS != "linux" || cfg.Architecture != arch {
		return "", fmt.Errorf("image %s: the manifest for linux/%s holds an image for %s/%s", ref, arch, cfg.OS, cfg.Architecture)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image %s for linux/%s: digest: %w", ref, arch, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return "", fmt.Errorf("create a file beside %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	// Layers read from the registry are checked against their digests as
	// they are written; a mismatch fails the write.
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s for linux/%s: %w", ref, arch, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("move the archive to %s: %w", dst, err)
	}
	return digest.String(), nil
}
