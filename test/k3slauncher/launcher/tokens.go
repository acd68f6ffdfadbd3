package launcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/scrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

func metav1GetOptions() metav1.GetOptions { return metav1.GetOptions{} }

// Token is a parsed K3s join token (K3s: pkg/clientaccess/token.go,
// parseToken): "K10<CA hash>::<credentials>", or the credentials alone
// (the short format). The credentials are "<user>:<password>" or a
// bootstrap token "<id>.<secret>".
type Token struct {
	// CAHash is the hex sha256 the server's CA bundle must have; empty
	// for a short token.
	CAHash   string
	Username string
	Password string
	// BootstrapID and BootstrapSecret are set for a bootstrap token.
	BootstrapID, BootstrapSecret string
}

var bootstrapTokenRE = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// ParseBootstrapToken splits "<id>.<secret>" as k8s.io/cluster-bootstrap
// does ([a-z0-9]{6}.[a-z0-9]{16}).
func ParseBootstrapToken(s string) (id, secret string, ok bool) {
	m := bootstrapTokenRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ParseToken parses a join token as K3s's parseToken does.
func ParseToken(token string) (Token, error) {
	if token == "" {
		return Token{}, errors.New("token must not be empty")
	}
	if !strings.HasPrefix(token, "K10") {
		if _, _, ok := ParseBootstrapToken(token); ok {
			token = "K10::" + token
		} else {
			token = "K10:::" + token
		}
	}
	token = token[len("K10"):]
	var t Token
	if hash, creds, ok := strings.Cut(token, "::"); ok {
		if len(hash) > 0 && len(hash) != sha256.Size*2 {
			return Token{}, errors.New("invalid token CA hash length")
		}
		t.CAHash, token = hash, creds
	}
	if id, secret, ok := ParseBootstrapToken(token); ok {
		t.BootstrapID, t.BootstrapSecret = id, secret
		return t, nil
	}
	user, pass, ok := strings.Cut(token, ":")
	if !ok || pass == "" {
		return Token{}, errors.New("invalid token format")
	}
	t.Username, t.Password = user, pass
	return t, nil
}

// Bearer is the bootstrap token, or "" for a user/password token.
func (t Token) Bearer() string {
	if t.BootstrapID == "" {
		return ""
	}
	return t.BootstrapID + "." + t.BootstrapSecret
}

// String is the token in K10 format (secrets included: never log it).
func (t Token) String() string {
	creds := t.Username + ":" + t.Password
	if b := t.Bearer(); b != "" {
		creds = b
	}
	return "K10" + t.CAHash + "::" + creds
}

// HashCA is K3s's hashCA: the hex sha256 of the CA bundle's bytes when it
// holds one certificate; of the DER of the bundle's root when it holds
// more (a CA that was rotated keeps its hash).
func HashCA(bundle []byte) (string, error) {
	var certs []*x509.Certificate
	rest := bundle
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", fmt.Errorf("parse CA bundle: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return "", errors.New("the CA bundle holds no certificate")
	}
	data := bundle
	if len(certs) > 1 {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		for _, c := range certs[1:] {
			if len(c.AuthorityKeyId) == 0 || string(c.AuthorityKeyId) == string(c.SubjectKeyId) {
				roots.AddCert(c)
			} else {
				inter.AddCert(c)
			}
		}
		if chains, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err == nil {
			data = chains[0][len(chains[0])-1].Raw
		}
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// ValidateCA is K3s's validateCAHash for a self-signed cluster CA: a token
// with a CA hash must match the bundle the server sent.
func (t Token) ValidateCA(bundle []byte) error {
	if t.CAHash == "" {
		return nil
	}
	got, err := HashCA(bundle)
	if err != nil {
		return err
	}
	if got != t.CAHash {
		return fmt.Errorf("token CA hash does not match the Cluster CA certificate hash: %s != %s", t.CAHash, got)
	}
	return nil
}

// CheckBootstrapSecret is Kubernetes's bootstrap token authenticator's
// check of a kube-system bootstrap-token-<id> Secret; it returns the
// token's groups.
func CheckBootstrapSecret(sec *corev1.Secret, id, secret string, now time.Time) ([]string, error) {
	bad := fmt.Errorf("bootstrap token %s is not valid", id)
	if sec.DeletionTimestamp != nil || sec.Type != "bootstrap.kubernetes.io/token" {
		return nil, bad
	}
	if subtle.ConstantTimeCompare(sec.Data["token-secret"], []byte(secret)) != 1 || string(sec.Data["token-id"]) != id {
		return nil, bad
	}
	if exp := string(sec.Data["expiration"]); exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil || !now.Before(t) {
			return nil, fmt.Errorf("bootstrap token %s has expired", id)
		}
	}
	if string(sec.Data["usage-bootstrap-authentication"]) != "true" {
		return nil, bad
	}
	groups := []string{groupBootstrap}
	if extra := string(sec.Data["auth-extra-groups"]); extra != "" {
		for _, g := range strings.Split(extra, ",") {
			g = strings.TrimSpace(g)
			if !strings.HasPrefix(g, groupBootstrap+":") {
				return nil, bad
			}
			groups = append(groups, g)
		}
	}
	return groups, nil
}

// Node passwords (K3s: pkg/nodepassword/nodepassword.go): the agent keeps
// a random password in /etc/rancher/node/password and sends it with its
// node name; the server keeps its scrypt hash in the kube-system Secret
// <node>.node-password.k3s (type k3s.cattle.io/node-password, immutable,
// data "hash"), made on the first request, and refuses a request whose
// password does not match it.

// NodePasswordSecretType is K3s's SecretTypeNodePassword.
const NodePasswordSecretType corev1.SecretType = "k3s.cattle.io/node-password"

// ErrNodePasswordMismatch: the node password does not match its secret.
var ErrNodePasswordMismatch = errors.New("node password does not match")

// NodePasswordSecretName is K3s's getSecretName.
func NodePasswordSecretName(node string) string {
	return strings.ToLower(node + ".node-password.k3s")
}

// scrypt parameters and format of K3s's pkg/authenticator/hash/scrypt.go.
const (
	scryptN, scryptR, scryptP, scryptKeyLen, scryptSaltLen = 15, 8, 1, 64, 8
	hashFormat                                             = "$%d:%x:%d:%d:%d:%s"
)

// HashNodePassword is K3s's SCrypt.CreateHash.
func HashNodePassword(pass string) (string, error) {
	salt := make([]byte, scryptSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	dk, err := scrypt.Key([]byte(pass), salt, 1<<scryptN, scryptR, scryptP, scryptKeyLen)
	if err != nil {
		return "", fmt.Errorf("scrypt: %w", err)
	}
	return fmt.Sprintf(hashFormat, 1, salt, scryptN, scryptR, scryptP, base64.RawStdEncoding.EncodeToString(dk)), nil
}

// VerifyNodePassword is K3s's SCrypt.VerifyHash.
func VerifyNodePassword(hash, pass string) error {
	var (
		version, n uint
		r, p       int
		enc        string
		salt       []byte
	)
	if _, err := fmt.Sscanf(hash, hashFormat, &version, &salt, &n, &r, &p, &enc); err != nil {
		return fmt.Errorf("parse hash: %w", err)
	}
	if version != 1 || n > 20 {
		return fmt.Errorf("hash version %d is not 1", version)
	}
	dk, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("parse hash: %w", err)
	}
	verify, err := scrypt.Key([]byte(pass), salt, 1<<n, r, p, len(dk))
	if err != nil {
		return fmt.Errorf("scrypt: %w", err)
	}
	if subtle.ConstantTimeCompare(dk, verify) != 1 {
		return errors.New("hash does not match")
	}
	return nil
}

// EnsureNodePassword is K3s's nodepassword.Ensure: verify the node's
// secret when it exists, else create it.
func EnsureNodePassword(ctx context.Context, secrets typedcorev1.SecretInterface, node, pass string) error {
	verify := func() error {
		sec, err := secrets.Get(ctx, NodePasswordSecretName(node), metav1.GetOptions{})
		if err != nil {
			return err //nolint:wrapcheck // apierrors are inspected
		}
		h, ok := sec.Data["hash"]
		if !ok {
			return fmt.Errorf("unable to locate hash data for node secret %s", sec.Name)
		}
		if err := VerifyNodePassword(string(h), pass); err != nil {
			return fmt.Errorf("%w: unable to verify password for node %s: %w", ErrNodePasswordMismatch, node, err)
		}
		return nil
	}
	err := verify()
	if !apierrors.IsNotFound(err) {
		return err
	}
	h, err := HashNodePassword(pass)
	if err != nil {
		return err
	}
	immutable := true
	_, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: NodePasswordSecretName(node), Namespace: "kube-system"},
		Immutable:  &immutable,
		Type:       NodePasswordSecretType,
		Data:       map[string][]byte{"hash": []byte(h)},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return verify()
	}
	if err != nil {
		return fmt.Errorf("create node password secret for %s: %w", node, err)
	}
	return nil
}

func metav1CreateOptions() metav1.CreateOptions { return metav1.CreateOptions{} }
