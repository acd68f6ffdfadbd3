package registrytest

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The registry really serves a list of both architectures, each entry
// naming its platform and pointing at that architecture's image.
func TestStartServesTwoPlatforms(t *testing.T) {
	reg := Start(t, "fluent/fluent-bit:4.0.3")
	tag, err := name.NewTag(reg.Host + "/fluent/fluent-bit:4.0.3")
	require.NoError(t, err)
	idx, err := remote.Index(tag)
	require.NoError(t, err)
	d, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, reg.Index, d)
	m, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, len(Arches))
	for i, arch := range Arches {
		want, err := reg.Images[arch].Digest()
		require.NoError(t, err)
		assert.Equal(t, want, m.Manifests[i].Digest)
		assert.Equal(t, arch, m.Manifests[i].Platform.Architecture)
	}
}

// Over TLS with credentials: a request without them is refused with a
// Basic challenge, one with them gets the pushed manifest, a client that
// does not trust the test CA fails the handshake, and the access log
// names the user of each request.
func TestServeTLSWithBasicAuth(t *testing.T) {
	reg := Serve(t, Options{TLS: true, Username: "puller", Password: "pw"})
	img, err := random.Image(64, 1)
	require.NoError(t, err)
	d := reg.Push(t, "team/app:1", img)
	assert.True(t, strings.HasPrefix(reg.URL(), "https://127.0.0.1:"), reg.URL())

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(reg.CAPEM))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	get := func(user, pw string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, reg.URL()+"/v2/team/app/manifests/1", nil)
		require.NoError(t, err)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp
	}
	resp := get("", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Basic realm="registrytest"`, resp.Header.Get("WWW-Authenticate"))
	assert.Equal(t, http.StatusUnauthorized, get("puller", "wrong").StatusCode)
	resp = get("puller", "pw")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, d.String(), resp.Header.Get("Docker-Content-Digest"))

	_, err = http.Get(reg.URL() + "/v2/")
	assert.Error(t, err, "the system roots do not trust the test CA")

	var last Request
	for _, r := range reg.Requests() {
		if r.Path == "/v2/team/app/manifests/1" && r.Method == http.MethodGet {
			last = r
		}
	}
	assert.Equal(t, Request{Method: http.MethodGet, Path: "/v2/team/app/manifests/1", User: "puller", Status: http.StatusOK}, last)
}
