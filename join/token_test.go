package join

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestParseToken(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tok, err := ParseToken("K10" + h + "::abcdef.0123456789abcdef\n")
	require.NoError(t, err)
	assert.Equal(t, Token{CAHash: h, Credentials: "abcdef.0123456789abcdef"}, tok)
	id, ok := tok.BootstrapID()
	assert.True(t, ok)
	assert.Equal(t, "abcdef", id)
	assert.Equal(t, "K10"+h+"::abcdef.0123456789abcdef", tok.String())

	server, err := ParseToken("K10" + h + "::server:secretpassword")
	require.NoError(t, err, "a server's own token is a secure token too")
	_, ok = server.BootstrapID()
	assert.False(t, ok)

	for _, bad := range []string{
		"abcdef.0123456789abcdef",                    // short format: no CA hash
		"K10" + h[:60] + "::abcdef.0123456789abcdef", // hash too short
		"K10" + strings.ToUpper(h) + "::x",           // not lower-case hex
		"K10" + h + "::",                             // no credentials
		"K10" + h + "::a b",                          // white space
		"",
	} {
		_, err := ParseToken(bad)
		assert.Error(t, err, "%q", bad)
		if err != nil {
			assert.NotContains(t, err.Error(), "0123456789abcdef", "errors never echo the token")
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("K10" + strings.Repeat("0", 64) + "::abcdef.0123456789abcdef")
	f.Add("abcdef.0123456789abcdef")
	f.Add("K10::")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q parses to %+v, which does not round-trip (%v)", s, tok, err)
		}
		if len(tok.CAHash) != 64 || tok.Credentials == "" {
			t.Fatalf("%q: %+v", s, tok)
		}
	})
}

func TestGenerateBootstrapCredentials(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		id, secret, err := GenerateBootstrapCredentials()
		require.NoError(t, err)
		assert.Regexp(t, `^[a-z0-9]{6}$`, id)
		assert.Regexp(t, `^[a-z0-9]{16}$`, secret)
		assert.False(t, seen[id+secret])
		seen[id+secret] = true
	}
}

func TestBootstrapSecretIsK3sTokenCreates(t *testing.T) {
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.FixedZone("X", 3600))
	s := BootstrapSecret("abcdef", "0123456789abcdef", 2*time.Hour, now)
	assert.Equal(t, "bootstrap-token-abcdef", s.Name)
	assert.Equal(t, "kube-system", s.Namespace)
	assert.Equal(t, corev1.SecretType("bootstrap.kubernetes.io/token"), s.Type)
	assert.Equal(t, map[string]string{
		"token-id":                       "abcdef",
		"token-secret":                   "0123456789abcdef",
		"description":                    Description,
		"expiration":                     "2026-12-07T20:00:00Z",
		"usage-bootstrap-signing":        "true",
		"usage-bootstrap-authentication": "true",
		"auth-extra-groups":              "system:bootstrappers:k3s:default-node-token",
	}, strData(s))
	forever := BootstrapSecret("abcdef", "0123456789abcdef", 0, now)
	assert.NotContains(t, forever.Data, "expiration", "--ttl 0 never expires")
}

func strData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

func TestTokensCreateListDelete(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-zzzzzz", Namespace: "kube-system"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"token-id": []byte("zzzzzz"), "token-secret": []byte("notabootstraptok")},
	})
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	tk := Tokens{Client: cs, CA: []byte(testCA), Now: func() time.Time { return now }}
	c, err := tk.Create(ctx, time.Hour)
	require.NoError(t, err)
	m := regexp.MustCompile(`^K10([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})$`).FindStringSubmatch(c.Token.String())
	require.NotNil(t, m, c.Token.String())
	assert.Equal(t, HashCA([]byte(testCA)), m[1], "the token names the sha256 of the CA bytes")
	assert.Equal(t, c.Info.ID, m[2])
	require.NotNil(t, c.Info.Expires)
	assert.Equal(t, now.Add(time.Hour), *c.Info.Expires)
	sec, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+m[2], metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, m[3], string(sec.Data["token-secret"]))

	list, err := tk.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1, "only bootstrap token Secrets are listed")
	assert.Equal(t, c.Info.ID, list[0].ID)
	assert.Equal(t, []string{"authentication", "signing"}, list[0].Usages)
	assert.Equal(t, []string{NodeAuthGroup}, list[0].Groups)
	js, err := json.Marshal(list)
	require.NoError(t, err)
	assert.NotContains(t, string(js), m[3], "a listing never holds the secret")

	now = now.Add(2 * time.Hour)
	list, err = tk.List(ctx)
	require.NoError(t, err)
	assert.True(t, list[0].Expired)

	_, err = tk.Delete(ctx, "zzzzzz")
	assert.ErrorContains(t, err, "not a bootstrap token Secret", "a Secret of another type is left alone")
	_, err = tk.Delete(ctx, "not-an-id")
	assert.Error(t, err)
	id, err := tk.Delete(ctx, c.Token.String())
	require.NoError(t, err, "the full token names its id")
	assert.Equal(t, c.Info.ID, id)
	list, err = tk.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = tk.Delete(ctx, c.Info.ID)
	assert.ErrorContains(t, err, "no bootstrap token")
}

func TestTokensCreateNeedsTheCA(t *testing.T) {
	_, err := Tokens{Client: fake.NewClientset()}.Create(context.Background(), time.Hour)
	assert.ErrorContains(t, err, "CA")
}
