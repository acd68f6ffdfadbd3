// Package join holds K3s's join credentials as tpctl handles them: the
// bootstrap tokens `tpctl token` makes on a server (the kube-system Secrets
// `k3s token create` makes, pkg/cli/token and pkg/kubeadm), the secure token
// format (K10<sha256 of the server CA>::<credentials>, pkg/clientaccess),
// and the check a joining host makes of the server's CA before it sends the
// token anywhere.
package join

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// Bootstrap token facts, as K3s and the Kubernetes bootstrap token API
// define them.
const (
	// TokenPrefix starts K3s's secure token format.
	TokenPrefix = "K10"
	// NodeAuthGroup is the extra group `k3s token create` gives its tokens
	// (kubeadm.NodeBootstrapTokenAuthGroup); K3s's supervisor accepts
	// bootstrap tokens of this group for agents.
	NodeAuthGroup = "system:bootstrappers:k3s:default-node-token"
	// DefaultTTL is `k3s token create`'s default --ttl.
	DefaultTTL = 24 * time.Hour
	// Description marks the tokens tpctl makes.
	Description = "tpctl join (agent)"

	secretPrefix    = "bootstrap-token-"
	keyID           = "token-id"
	keySecret       = "token-secret"
	keyExpiration   = "expiration"
	keyDescription  = "description"
	keyExtraGroups  = "auth-extra-groups"
	keyUsagePrefix  = "usage-bootstrap-"
	idChars         = "abcdefghijklmnopqrstuvwxyz0123456789"
	maxCACertsBytes = 1 << 20
)

// Usages are the usages `k3s token create` sets by default
// (bootstrapapi.KnownTokenUsages).
func Usages() []string { return []string{"signing", "authentication"} }

var (
	idPattern          = regexp.MustCompile(`^[a-z0-9]{6}$`)
	bootstrapPattern   = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)
	securePattern      = regexp.MustCompile(`^K10([0-9a-f]{64})::(.+)$`)
	errNotSecureFormat = errors.New("the token is not in K3s's secure format K10<sha256 of the server CA>::<credentials>; " +
		"tpctl joins only with a token that names the server's CA (create one with `tpctl token create` on the server)")
)

// Token is a secure K3s token.
type Token struct {
	// CAHash is the sha256 (hex) of the server's CA bundle.
	CAHash string
	// Credentials are what the node authenticates with: <id>.<secret> for
	// a bootstrap token, or a server's own token.
	Credentials string
}

// String is the token as K3s takes it. It holds the secret.
func (t Token) String() string { return TokenPrefix + t.CAHash + "::" + t.Credentials }

// BootstrapID returns the token id of bootstrap-token credentials.
func (t Token) BootstrapID() (string, bool) {
	m := bootstrapPattern.FindStringSubmatch(t.Credentials)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ParseToken reads a secure token. A short token (credentials only) is
// refused: without the CA hash the server cannot be checked before the
// token is sent to it.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	m := securePattern.FindStringSubmatch(s)
	if m == nil {
		return Token{}, errNotSecureFormat
	}
	if strings.ContainsAny(m[2], " \t\r\n") {
		return Token{}, errors.New("the token's credentials hold white space")
	}
	return Token{CAHash: m[1], Credentials: m[2]}, nil
}

// HashCA is the CA hash of a secure token: the sha256 of the CA bundle as
// the server serves it at /cacerts (and as its kubeconfig embeds it).
func HashCA(ca []byte) string {
	sum := sha256.Sum256(ca)
	return hex.EncodeToString(sum[:])
}

// matchesCA compares in constant time.
func (t Token) matchesCA(ca []byte) bool {
	return subtle.ConstantTimeCompare([]byte(HashCA(ca)), []byte(t.CAHash)) == 1
}

// randomString draws n characters of idChars from crypto/rand.
func randomString(n int) (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(idChars)))
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random token: %w", err)
		}
		b.WriteByte(idChars[i.Int64()])
	}
	return b.String(), nil
}

// GenerateBootstrapCredentials returns a new "<id>.<secret>" ([a-z0-9]{6}
// and [a-z0-9]{16}), as bootstraputil.GenerateBootstrapToken does.
func GenerateBootstrapCredentials() (id, secret string, err error) {
	if id, err = randomString(6); err != nil {
		return "", "", err
	}
	if secret, err = randomString(16); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// BootstrapSecret is the kube-system Secret of a bootstrap token, shaped
// as kubeadm.BootstrapTokenToSecret shapes it for `k3s token create`: type
// bootstrap.kubernetes.io/token, name bootstrap-token-<id>, both usages,
// K3s's node group, and an RFC 3339 expiration unless ttl is 0.
func BootstrapSecret(id, secret string, ttl time.Duration, now time.Time) *corev1.Secret {
	data := map[string][]byte{
		keyID:          []byte(id),
		keySecret:      []byte(secret),
		keyDescription: []byte(Description),
		keyExtraGroups: []byte(NodeAuthGroup),
	}
	for _, u := range Usages() {
		data[keyUsagePrefix+u] = []byte("true")
	}
	if ttl > 0 {
		data[keyExpiration] = []byte(now.Add(ttl).UTC().Format(time.RFC3339))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretPrefix + id, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		Data:       data,
	}
}

// TokenInfo is a bootstrap token without its secret.
type TokenInfo struct {
	ID          string     `json:"id"`
	Expires     *time.Time `json:"expires,omitempty"`
	Expired     bool       `json:"expired,omitempty"`
	Usages      []string   `json:"usages,omitempty"`
	Groups      []string   `json:"groups,omitempty"`
	Description string     `json:"description,omitempty"`
}

// infoFromSecret reads a bootstrap token Secret; the secret value is never
// copied.
func infoFromSecret(s *corev1.Secret, now time.Time) (TokenInfo, bool) {
	id := string(s.Data[keyID])
	if !idPattern.MatchString(id) || s.Name != secretPrefix+id {
		return TokenInfo{}, false
	}
	ti := TokenInfo{ID: id, Description: string(s.Data[keyDescription])}
	if e := string(s.Data[keyExpiration]); e != "" {
		if t, err := time.Parse(time.RFC3339, e); err == nil {
			ti.Expires = &t
			ti.Expired = !now.Before(t)
		}
	}
	for k, v := range s.Data {
		if u, ok := strings.CutPrefix(k, keyUsagePrefix); ok && string(v) == "true" {
			ti.Usages = append(ti.Usages, u)
		}
	}
	sort.Strings(ti.Usages)
	if g := string(s.Data[keyExtraGroups]); g != "" {
		ti.Groups = strings.Split(g, ",")
	}
	return ti, true
}

// Tokens makes, lists and deletes bootstrap tokens through the API server.
type Tokens struct {
	Client kubernetes.Interface
	// CA is the server's CA bundle (the kubeconfig's certificate authority
	// data), hashed into the token.
	CA  []byte
	Now func() time.Time
}

// Created is a new token: the full token is in Token and nowhere else.
type Created struct {
	Info  TokenInfo
	Token Token
}

// Create makes a bootstrap token valid for ttl (0: no expiry).
func (t Tokens) Create(ctx context.Context, ttl time.Duration) (Created, error) {
	if len(t.CA) == 0 {
		return Created{}, errors.New("the kubeconfig names no CA data; the token could not name the server's CA")
	}
	if ttl < 0 {
		return Created{}, fmt.Errorf("--ttl %s is negative", ttl)
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	id, secret, err := GenerateBootstrapCredentials()
	if err != nil {
		return Created{}, err
	}
	s := BootstrapSecret(id, secret, ttl, now())
	got, err := t.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return Created{}, fmt.Errorf("a token with id %q exists already; run again", id)
	}
	if err != nil {
		return Created{}, fmt.Errorf("create the bootstrap token Secret: %w", err)
	}
	info, _ := infoFromSecret(got, now())
	return Created{Info: info, Token: Token{CAHash: HashCA(t.CA), Credentials: id + "." + secret}}, nil
}

// List returns the bootstrap tokens of kube-system, by id.
func (t Tokens) List(ctx context.Context) ([]TokenInfo, error) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	l, err := t.Client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeBootstrapToken)).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list bootstrap tokens: %w", err)
	}
	out := []TokenInfo{}
	for i := range l.Items {
		if l.Items[i].Type != corev1.SecretTypeBootstrapToken {
			continue
		}
		if ti, ok := infoFromSecret(&l.Items[i], now()); ok {
			out = append(out, ti)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Delete removes the bootstrap token with this id (or of this full token).
func (t Tokens) Delete(ctx context.Context, idOrToken string) (string, error) {
	id := idOrToken
	if !idPattern.MatchString(id) {
		tok, err := ParseToken(idOrToken)
		if err != nil {
			// The argument is not echoed: it may be a token.
			return "", errors.New("the argument is neither a token id ([a-z0-9]{6}) nor a secure token")
		}
		var ok bool
		if id, ok = tok.BootstrapID(); !ok {
			return "", errors.New("the token is not a bootstrap token")
		}
	}
	sec, err := t.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, secretPrefix+id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return id, fmt.Errorf("no bootstrap token %q", id)
	}
	if err != nil {
		return id, err
	}
	if sec.Type != corev1.SecretTypeBootstrapToken {
		return id, fmt.Errorf("kube-system/%s is not a bootstrap token Secret; left alone", sec.Name)
	}
	err = t.Client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, sec.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &sec.UID},
	})
	if err != nil {
		return id, fmt.Errorf("delete bootstrap token %q: %w", id, err)
	}
	return id, nil
}
