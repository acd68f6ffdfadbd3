package ociimage

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleSpec() Spec {
	return Spec{
		Ref:        "tpctl.test/sample:1",
		Entrypoint: []string{"/usr/local/bin/sample", "--serve"},
		Cmd:        []string{"--port", "8080"},
		User:       "65535:65535",
		Env:        []string{"A=1"},
		WorkingDir: "/",
		Labels:     map[string]string{"org.tpctl.test": "yes"},
		Files: []File{
			{Path: "/usr/local/bin/sample", Data: []byte("#!binary"), Executable: true},
			{Path: "/etc/sample/config.yaml", Data: []byte("a: 1\n")},
			{Path: "/etc/sample/secret", Data: []byte("s"), Mode: 0o600},
		},
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a, _, err := Build(sampleSpec())
	require.NoError(t, err)
	b, _, err := Build(sampleSpec())
	require.NoError(t, err)
	da, err := a.Digest()
	require.NoError(t, err)
	db, err := b.Digest()
	require.NoError(t, err)
	assert.Equal(t, da, db)

	// File order in the spec does not matter either.
	s := sampleSpec()
	s.Files[0], s.Files[2] = s.Files[2], s.Files[0]
	c, _, err := Build(s)
	require.NoError(t, err)
	dc, err := c.Digest()
	require.NoError(t, err)
	assert.Equal(t, da, dc)
}

func TestBuildDigestChangesWithInput(t *testing.T) {
	base, _, err := Build(sampleSpec())
	require.NoError(t, err)
	baseDigest, err := base.Digest()
	require.NoError(t, err)

	mutations := map[string]func(*Spec){
		"content":    func(s *Spec) { s.Files[0].Data = []byte("other") },
		"mode":       func(s *Spec) { s.Files[1].Mode = 0o600 },
		"entrypoint": func(s *Spec) { s.Entrypoint = []string{"/bin/x"} },
		"user":       func(s *Spec) { s.User = "0" },
		"arch":       func(s *Spec) { s.Arch = "arm64" },
		"created":    func(s *Spec) { s.Created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			s := sampleSpec()
			mutate(&s)
			img, _, err := Build(s)
			require.NoError(t, err)
			d, err := img.Digest()
			require.NoError(t, err)
			assert.NotEqual(t, baseDigest, d)
		})
	}
}

func TestWriteTarballRoundTrip(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "sample.tar")
	digest, err := WriteTarball(dst, sampleSpec())
	require.NoError(t, err)
	_, err = os.Stat(dst + ".tmp")
	assert.True(t, errors.Is(err, os.ErrNotExist), "temporary file left behind")

	tag, err := name.NewTag("tpctl.test/sample:1")
	require.NoError(t, err)
	img, err := tarball.ImageFromPath(dst, &tag)
	require.NoError(t, err)
	got, err := img.Digest()
	require.NoError(t, err)
	assert.Equal(t, digest, got)

	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cfg.OS)
	assert.Equal(t, runtime.GOARCH, cfg.Architecture)
	assert.Equal(t, []string{"/usr/local/bin/sample", "--serve"}, cfg.Config.Entrypoint)
	assert.Equal(t, []string{"--port", "8080"}, cfg.Config.Cmd)
	assert.Equal(t, "65535:65535", cfg.Config.User)
	assert.Equal(t, []string{"A=1"}, cfg.Config.Env)
	assert.Equal(t, "yes", cfg.Config.Labels["org.tpctl.test"])
	assert.Equal(t, int64(EpochUnix), cfg.Created.Unix())
	require.Len(t, cfg.RootFS.DiffIDs, 1)
	require.Len(t, cfg.History, 1)

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	type seen struct {
		typ  byte
		mode int64
		data string
	}
	entries := map[string]seen{}
	var order []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		assert.Equal(t, int64(EpochUnix), h.ModTime.Unix(), h.Name)
		assert.Equal(t, 0, h.Uid, h.Name)
		entries[h.Name] = seen{h.Typeflag, h.Mode, string(data)}
		order = append(order, h.Name)
	}
	assert.Equal(t, []string{
		"etc/", "etc/sample/", "etc/sample/config.yaml", "etc/sample/secret",
		"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/sample",
	}, order)
	assert.Equal(t, seen{tar.TypeReg, 0o755, "#!binary"}, entries["usr/local/bin/sample"])
	assert.Equal(t, seen{tar.TypeReg, 0o644, "a: 1\n"}, entries["etc/sample/config.yaml"])
	assert.Equal(t, seen{tar.TypeReg, 0o600, "s"}, entries["etc/sample/secret"])
	assert.Equal(t, seen{tar.TypeDir, 0o755, ""}, entries["usr/local/bin/"])
}

func TestWriteTarballDockerArchiveLayout(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "sample.tar")
	_, err := WriteTarball(dst, sampleSpec())
	require.NoError(t, err)
	f, err := os.Open(dst)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if h.Name == "manifest.json" {
			require.NoError(t, json.NewDecoder(tr).Decode(&manifest))
		}
	}
	require.Len(t, manifest, 1, "docker-archive manifest.json")
	assert.Equal(t, []string{"tpctl.test/sample:1"}, manifest[0].RepoTags)
	assert.Len(t, manifest[0].Layers, 1)
}

func TestFileFromPath(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	require.NoError(t, os.WriteFile(src, []byte("prog"), 0o755))
	f, err := FileFromPath(src, "/bin/prog", true)
	require.NoError(t, err)
	assert.Equal(t, File{Path: "/bin/prog", Data: []byte("prog"), Executable: true}, f)

	_, err = FileFromPath(filepath.Join(t.TempDir(), "missing"), "/x", false)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestBuildRejectsBadSpecs(t *testing.T) {
	cases := map[string]func(*Spec){
		"empty ref":       func(s *Spec) { s.Ref = "" },
		"latest tag":      func(s *Spec) { s.Ref = "tpctl.test/sample:latest" },
		"bad ref":         func(s *Spec) { s.Ref = "Upper/Case::x" },
		"relative path":   func(s *Spec) { s.Files[0].Path = "usr/bin/x" },
		"unclean path":    func(s *Spec) { s.Files[0].Path = "/usr/../etc/x" },
		"root path":       func(s *Spec) { s.Files[0].Path = "/" },
		"duplicate":       func(s *Spec) { s.Files[1].Path = s.Files[0].Path },
		"file under file": func(s *Spec) { s.Files[1].Path = s.Files[0].Path + "/x" },
		"dir as file":     func(s *Spec) { s.Files[1].Path = "/usr/local" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := sampleSpec()
			mutate(&s)
			_, _, err := Build(s)
			assert.Error(t, err)
		})
	}
}

func FuzzBuildPaths(f *testing.F) {
	f.Add("/usr/bin/x", "/etc/y")
	f.Add("/a", "/a/b")
	f.Add("/../x", "relative")
	f.Add("/a//b", "/a/./b")
	f.Fuzz(func(t *testing.T, p1, p2 string) {
		spec := Spec{Ref: "tpctl.test/fuzz:1", Files: []File{
			{Path: p1, Data: []byte("1")}, {Path: p2, Data: []byte("2")},
		}}
		img, _, err := Build(spec)
		if err != nil {
			return
		}
		// Every accepted spec must build reproducibly.
		again, _, err := Build(spec)
		require.NoError(t, err)
		d1, err := img.Digest()
		require.NoError(t, err)
		d2, err := again.Digest()
		require.NoError(t, err)
		require.Equal(t, d1, d2)
	})
}
