// Package ociimage builds small single-layer container images from files (a
// static binary and a few extras) without a container engine or registry, and
// writes them as docker-archive tarballs that `ctr images import` and K3s's
// air-gap image directory accept.
//
// Builds are deterministic: every timestamp is fixed and the layer's entries are
// sorted, so the same Spec always yields the same image digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// EpochUnix is the timestamp (seconds since 1970) given to the image, its
// history and every layer entry unless Spec.Created says otherwise.
const EpochUnix = 0

// File is one regular file placed in the image's single layer.
type File struct {
	// Path is the absolute path inside the image, e.g. /usr/local/bin/sink.
	Path string
	// Mode holds the permission bits; 0 means 0644 (0755 when Executable).
	Mode os.FileMode
	// Executable marks the file as a program (default mode 0755).
	Executable bool
	// Data is the file's content.
	Data []byte
}

// Spec describes an image.
type Spec struct {
	// Ref is the image reference written into the archive, e.g.
	// "tpctl.test/sink:1". It must carry a tag; "latest" is refused because
	// kubelets try to pull it.
	Ref string
	// OS and Arch default to linux and the build's GOARCH.
	OS, Arch string
	// Entrypoint and Cmd as in the OCI image config.
	Entrypoint []string
	Cmd        []string
	// User is "uid[:gid]" or a name; empty means root.
	User string
	// Env entries as KEY=value.
	Env []string
	// WorkingDir inside the image.
	WorkingDir string
	// Labels of the image config.
	Labels map[string]string
	// Files of the single layer. Parent directories are created (0755).
	Files []File
	// Created overrides EpochUnix for all timestamps.
	Created time.Time
}

// FileFromPath reads a file from the local file system for inclusion at dst.
func FileFromPath(src, dst string, executable bool) (File, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return File{}, fmt.Errorf("read image file %s: %w", src, err)
	}
	return File{Path: dst, Data: data, Executable: executable}, nil
}

// Build assembles the image described by spec.
func Build(spec Spec) (v1.Image, name.Tag, error) {
	tag, err := parseRef(spec.Ref)
	if err != nil {
		return nil, name.Tag{}, err
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(EpochUnix, 0).UTC()
	}
	layerTar, err := layerBytes(spec.Files, created)
	if err != nil {
		return nil, name.Tag{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("make layer of %s: %w", spec.Ref, err)
	}

	cfg, err := empty.Image.ConfigFile()
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("read empty image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = orDefault(spec.OS, "linux")
	cfg.Architecture = orDefault(spec.Arch, runtime.GOARCH)
	cfg.Created = v1.Time{Time: created}
	cfg.Config.Entrypoint = spec.Entrypoint
	cfg.Config.Cmd = spec.Cmd
	cfg.Config.User = spec.User
	cfg.Config.Env = spec.Env
	cfg.Config.WorkingDir = spec.WorkingDir
	cfg.Config.Labels = spec.Labels

	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("set config of %s: %w", spec.Ref, err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "tpctl ociimage",
			Comment:   fmt.Sprintf("%d files", len(spec.Files)),
		},
	})
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("add layer to %s: %w", spec.Ref, err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("set creation time of %s: %w", spec.Ref, err)
	}
	return img, tag, nil
}

// WriteTarball builds the image and writes it as a docker-archive tarball at
// dst (written to a temporary file first, then renamed). It returns the
// image's manifest digest.
func WriteTarball(dst string, spec Spec) (v1.Hash, error) {
	img, tag, err := Build(spec)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest of %s: %w", spec.Ref, err)
	}
	tmp := dst + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		_ = os.Remove(tmp)
		return v1.Hash{}, fmt.Errorf("write image %s to %s: %w", spec.Ref, tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return v1.Hash{}, fmt.Errorf("rename image tarball to %s: %w", dst, err)
	}
	return digest, nil
}

func parseRef(ref string) (name.Tag, error) {
	if ref == "" {
		return name.Tag{}, errors.New("image reference is empty")
	}
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("parse image reference %q (registry/repo:tag expected): %w", ref, err)
	}
	if tag.TagStr() == "latest" {
		return name.Tag{}, fmt.Errorf("image reference %q: tag latest makes kubelets pull; use a version tag", ref)
	}
	return tag, nil
}

// cleanPath validates an in-image path and returns it without the leading slash.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("image path %q is not absolute", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("image path %q contains NUL", p)
	}
	c := path.Clean(p)
	if c != p || c == "/" {
		return "", fmt.Errorf("image path %q is not clean (want %q, not the root)", p, c)
	}
	return strings.TrimPrefix(c, "/"), nil
}

// layerBytes renders the uncompressed layer tar: parent directories first,
// entries sorted by path, owner root, fixed timestamps.
func layerBytes(files []File, mtime time.Time) ([]byte, error) {
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	entries := map[string]entry{}
	for _, f := range files {
		rel, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if e, dup := entries[rel]; dup && e.hdr.Typeflag == tar.TypeReg {
			return nil, fmt.Errorf("image path %s given twice", f.Path)
		} else if dup {
			return nil, fmt.Errorf("image path %s is both a directory and a file", f.Path)
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
			if f.Executable {
				mode = 0o755
			}
		}
		entries[rel] = entry{hdr: &tar.Header{
			Typeflag: tar.TypeReg, Name: rel, Mode: int64(mode), Size: int64(len(f.Data)),
			ModTime: mtime, Format: tar.FormatPAX,
		}, data: f.Data}
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			if e, ok := entries[dir]; ok {
				if e.hdr.Typeflag != tar.TypeDir {
					return nil, fmt.Errorf("image path /%s is both a file and a directory", dir)
				}
				continue
			}
			entries[dir] = entry{hdr: &tar.Header{
				Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX,
			}}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("write layer header %s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("write layer file %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
