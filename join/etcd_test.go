package join

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// etcdServer is a K3s server's /cacerts and /db/info.
func etcdServer(t *testing.T, dbInfo func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, []byte) {
	t.Helper()
	var ca []byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cacerts":
			_, _ = w.Write(ca)
		case "/db/info":
			dbInfo(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca
}

func TestVerifyServerJoin(t *testing.T) {
	var user, pass string
	srv, ca := etcdServer(t, func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ = r.BasicAuth()
		if pass != "pw" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"members":[{"ID":1,"name":"a-1"}]}`))
	})
	tok := Token{CAHash: HashCA(ca), Credentials: "server:pw"}.String()
	require.NoError(t, Verifier{}.VerifyServerJoin(context.Background(), srv.URL, tok))
	assert.Equal(t, "server", user)

	wrong := Token{CAHash: HashCA(ca), Credentials: "server:nope"}.String()
	assert.ErrorContains(t, Verifier{}.VerifyServerJoin(context.Background(), srv.URL, wrong), "refused the token")

	agent := Token{CAHash: HashCA(ca), Credentials: "node:pw"}.String()
	assert.ErrorContains(t, Verifier{}.VerifyServerJoin(context.Background(), srv.URL, agent), "joins agents only")

	// A server on SQLite (or an external datastore) has no /db/info.
	plain, pca := etcdServer(t, http.NotFound)
	err := Verifier{}.VerifyServerJoin(context.Background(), plain.URL, Token{CAHash: HashCA(pca), Credentials: "server:pw"}.String())
	assert.ErrorIs(t, err, ErrNoEmbeddedEtcd)
}

// Nothing is sent to a server whose CA is not the token's.
func TestVerifyServerJoinSendsNothingToAnotherCA(t *testing.T) {
	asked := false
	srv, _ := etcdServer(t, func(w http.ResponseWriter, _ *http.Request) { asked = true })
	tok := Token{CAHash: HashCA([]byte("another CA")), Credentials: "server:pw"}.String()
	assert.Error(t, Verifier{}.VerifyServerJoin(context.Background(), srv.URL, tok))
	assert.False(t, asked)
}
