// Package registrytest serves an OCI registry on loopback for tests that
// fetch images: go-containerregistry's in-memory registry, holding one
// manifest list of random images for linux/amd64 and linux/arm64.
package registrytest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Arches are the platforms of the manifest list.
var Arches = []string{"amd64", "arm64"}

// Registry is a running test registry.
type Registry struct {
	// Host is host:port (loopback, plain HTTP).
	Host string
	// Index is the digest of the manifest list pushed at Start.
	Index v1.Hash
	// Images are its images by architecture.
	Images map[string]v1.Image

	mu     sync.Mutex
	tamper func(r *http.Request, body []byte) []byte
}

// Start serves a registry until the test ends and pushes a manifest list
// of random images under repoTag (REPOSITORY:TAG, no host).
func Start(t testing.TB, repoTag string) *Registry {
	t.Helper()
	reg := &Registry{Images: map[string]v1.Image{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		tamper := reg.tamper
		reg.mu.Unlock()
		if tamper == nil {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(tamper(r, rec.Body.Bytes()))
	}))
	t.Cleanup(srv.Close)
	reg.Host = strings.TrimPrefix(srv.URL, "http://")

	var idx v1.ImageIndex = empty.Index
	for _, arch := range Arches {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		reg.Images[arch] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	tag, err := name.NewTag(reg.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	if reg.Index, err = idx.Digest(); err != nil {
		t.Fatal(err)
	}
	return reg
}

// Tamper makes the registry pass every response body through f until the
// test ends (nil: serve bodies unchanged).
func (r *Registry) Tamper(t testing.TB, f func(req *http.Request, body []byte) []byte) {
	r.mu.Lock()
	r.tamper = f
	r.mu.Unlock()
	t.Cleanup(func() {
		r.mu.Lock()
		r.tamper = nil
		r.mu.Unlock()
	})
}
