package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSupervisor is a K3s server's /cacerts: every request is recorded.
type fakeSupervisor struct {
	srv     *httptest.Server
	ca      []byte
	mu      sync.Mutex
	reqs    []string
	headers []http.Header
}

func newFakeSupervisor(t *testing.T, ca func(srvCert []byte) []byte) *fakeSupervisor {
	f := &fakeSupervisor{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.String())
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		if r.URL.Path != "/cacerts" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(f.ca)
	}))
	t.Cleanup(f.srv.Close)
	own := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	f.ca = ca(own)
	return f
}

const creds = "abcdef.0123456789abcdef"

func (f *fakeSupervisor) tokenFor(ca []byte) string {
	return Token{CAHash: HashCA(ca), Credentials: creds}.String()
}

func (f *fakeSupervisor) assertNoCredentials(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.reqs {
		assert.Equal(t, "GET /cacerts", r)
		assert.Empty(t, f.headers[i].Get("Authorization"), "the token is never sent")
		for _, v := range f.headers[i] {
			assert.NotContains(t, strings.Join(v, " "), "0123456789abcdef")
		}
	}
}

func TestVerifyAcceptsTheServerTheTokenNames(t *testing.T) {
	f := newFakeSupervisor(t, func(own []byte) []byte { return own })
	err := Verifier{}.Verify(context.Background(), f.srv.URL, f.tokenFor(f.ca))
	require.NoError(t, err)
	assert.Len(t, f.reqs, 2, "once without trust to hash the CA, once verifying with it")
	f.assertNoCredentials(t)
}

func TestVerifyRefusesAnotherCA(t *testing.T) {
	f := newFakeSupervisor(t, func(own []byte) []byte { return own })
	other := Token{CAHash: strings.Repeat("0", 64), Credentials: creds}.String()
	err := Verifier{}.Verify(context.Background(), f.srv.URL, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not the "+strings.Repeat("0", 64)+" the token names")
	assert.NotContains(t, err.Error(), "0123456789abcdef")
	assert.Len(t, f.reqs, 1)
	f.assertNoCredentials(t)
}

func TestVerifyRefusesACertificateTheCADidNotSign(t *testing.T) {
	// The server serves a CA (whose hash the token names) that did not
	// sign its own certificate: someone in between.
	other := selfSignedPEM(t)
	f := newFakeSupervisor(t, func([]byte) []byte { return other })
	err := Verifier{}.Verify(context.Background(), f.srv.URL, f.tokenFor(other))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not verify")
	f.assertNoCredentials(t)
}

func TestVerifyNamesAnUnreachablePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	err = Verifier{Timeout: 2 * time.Second}.Verify(context.Background(), "https://"+addr, Token{CAHash: strings.Repeat("0", 64), Credentials: creds}.String())
	require.Error(t, err)
	_, port, _ := net.SplitHostPort(addr)
	assert.Contains(t, err.Error(), port+"/tcp on 127.0.0.1 is not reachable")
}

func TestServerURL(t *testing.T) {
	u, err := ServerURL("https://10.0.0.10")
	require.NoError(t, err)
	assert.Equal(t, "https://10.0.0.10:6443", u.String())
	u, err = ServerURL("https://[fd00::1]:6443/")
	require.NoError(t, err)
	assert.Equal(t, "https://[fd00::1]:6443", u.String())
	for _, bad := range []string{"http://10.0.0.10:6443", "10.0.0.10:6443", "https://u:p@10.0.0.10:6443", "https:///x", "https://h:6443/api"} {
		_, err := ServerURL(bad)
		assert.Error(t, err, bad)
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "k3s-server-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
