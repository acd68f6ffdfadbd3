// Package registrytest serves an OCI registry on loopback for tests that
// fetch images: go-containerregistry's in-memory registry, holding one
// manifest list of random images for linux/amd64 and linux/arm64 (Start),
// or empty, optionally over TLS from a test CA and behind basic
// authentication, with an access log (Serve).
package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	// Host is host:port (loopback; plain HTTP unless served with TLS).
	Host string
	// CAPEM is the CA that signed the registry's certificate (TLS only).
	CAPEM []byte
	// Index is the digest of the manifest list pushed at Start.
	Index v1.Hash
	// Images are its images by architecture.
	Images map[string]v1.Image

	opts     Options
	scheme   string
	client   *http.Client
	mu       sync.Mutex
	tamper   func(r *http.Request, body []byte) []byte
	requests []Request
}

// Options of Serve.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost,
	// signed by a CA made for the test (Registry.CAPEM).
	TLS bool
	// Username and Password, when set, are required on every request
	// (HTTP basic authentication, as a registry's "Basic" challenge).
	Username, Password string
}

// Request is one request the registry answered: its access log.
type Request struct {
	Method, Path string
	// User is the user the request authenticated as ("" if none).
	User   string
	Status int
}

// Start serves a registry until the test ends and pushes a manifest list
// of random images under repoTag (REPOSITORY:TAG, no host).
func Start(t testing.TB, repoTag string) *Registry {
	t.Helper()
	reg := Serve(t, Options{})
	reg.Images = map[string]v1.Image{}

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
	tag := reg.tag(t, repoTag)
	if err := remote.WriteIndex(tag, idx, reg.remoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	var err error
	if reg.Index, err = idx.Digest(); err != nil {
		t.Fatal(err)
	}
	return reg
}

// Serve serves an empty registry on loopback until the test ends.
func Serve(t testing.TB, opts Options) *Registry {
	t.Helper()
	reg := &Registry{opts: opts, scheme: "http"}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		user := reg.serve(rec, r, h)
		reg.mu.Lock()
		reg.requests = append(reg.requests, Request{Method: r.Method, Path: r.URL.Path, User: user, Status: rec.status})
		reg.mu.Unlock()
	}))
	reg.client = &http.Client{}
	if opts.TLS {
		ca, cert := testCertificates(t)
		reg.CAPEM = ca
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		reg.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		reg.scheme = "https"
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	reg.Host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	return reg
}

// URL is the registry's base URL (http:// or https://HOST).
func (r *Registry) URL() string { return r.scheme + "://" + r.Host }

// serve answers one request, demanding credentials when the registry has
// them, and returns the user it authenticated as.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request, h http.Handler) string {
	user := ""
	if r.opts.Username != "" {
		u, p, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(r.opts.Username)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(r.opts.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return ""
		}
		user = u
	}
	r.mu.Lock()
	tamper := r.tamper
	r.mu.Unlock()
	if tamper == nil {
		h.ServeHTTP(w, req)
		return user
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(tamper(req, rec.Body.Bytes()))
	return user
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (r *Registry) tag(t testing.TB, repoTag string) name.Tag {
	t.Helper()
	var opts []name.Option
	if r.scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(r.Host+"/"+repoTag, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func (r *Registry) remoteOptions() []remote.Option {
	var tr http.RoundTripper = http.DefaultTransport
	if r.client.Transport != nil {
		tr = r.client.Transport
	}
	if r.opts.Username != "" {
		tr = basicAuth{next: tr, user: r.opts.Username, password: r.opts.Password}
	}
	return []remote.Option{remote.WithTransport(tr)}
}

// basicAuth sends the registry's credentials with every request.
type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(req)
}

// Push pushes img under repoTag (REPOSITORY:TAG, no host) and returns its
// digest.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) v1.Hash {
	t.Helper()
	tag := r.tag(t, repoTag)
	if err := remote.Write(tag, img, r.remoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Requests returns the access log so far.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// testCertificates makes a CA and a serving certificate for 127.0.0.1,
// ::1 and localhost signed by it, valid for a day.
func testCertificates(t testing.TB) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registrytest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "registrytest"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
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
