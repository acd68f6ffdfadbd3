package launcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tpctl/tpctl/test/cluster"
)

func TestParseTokenFormats(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		in                   string
		hash, user, pass, bt string
		err                  string
	}{
		{in: "K10" + hash + "::server:secret", hash: hash, user: "server", pass: "secret"},
		{in: "K10" + hash + "::node:p:w", hash: hash, user: "node", pass: "p:w"},
		{in: "K10" + hash + "::abcdef.0123456789abcdef", hash: hash, bt: "abcdef.0123456789abcdef"},
		{in: "abcdef.0123456789abcdef", bt: "abcdef.0123456789abcdef"},
		{in: "justapassword", user: "", pass: "justapassword"},
		{in: "K10abc::server:x", err: "invalid token CA hash length"},
		{in: "K10" + hash + "::server:", err: "invalid token format"},
		{in: "", err: "token must not be empty"},
	}
	for _, c := range cases {
		tok, err := ParseToken(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseToken(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseToken(%q): %v", c.in, err)
			continue
		}
		if tok.CAHash != c.hash || tok.Username != c.user || tok.Password != c.pass || tok.Bearer() != c.bt {
			t.Errorf("ParseToken(%q) = %+v", c.in, tok)
		}
	}
	// A short password token is a password for the user the agent names
	// (K3s's agent uses "node").
	tok, _ := ParseToken("K10" + hash + "::server:secret")
	if tok.String() != "K10"+hash+"::server:secret" {
		t.Errorf("String() = %q", tok.String())
	}
}

func TestHashCAAndValidate(t *testing.T) {
	ca, err := cluster.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ca.CertPEM)
	want := hex.EncodeToString(sum[:])
	got, err := HashCA(ca.CertPEM)
	if err != nil || got != want {
		t.Fatalf("HashCA = %q, %v; want sha256 of the PEM file %q", got, err, want)
	}
	good, _ := ParseToken("K10" + want + "::node:x")
	if err := good.ValidateCA(ca.CertPEM); err != nil {
		t.Errorf("matching hash refused: %v", err)
	}
	other, err := cluster.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := good.ValidateCA(other.CertPEM); err == nil || !strings.Contains(err.Error(), "token CA hash does not match") {
		t.Errorf("another CA accepted: %v", err)
	}
	short, _ := ParseToken("x")
	if err := short.ValidateCA(other.CertPEM); err != nil {
		t.Errorf("a short token has no hash to check: %v", err)
	}
}

func bootstrapSecret(id, secret string, data map[string]string) *corev1.Secret {
	d := map[string][]byte{"token-id": []byte(id), "token-secret": []byte(secret), "usage-bootstrap-authentication": []byte("true")}
	for k, v := range data {
		if v == "" {
			delete(d, k)
			continue
		}
		d[k] = []byte(v)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: "kube-system"},
		Type: "bootstrap.kubernetes.io/token", Data: d}
}

func TestCheckBootstrapSecret(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	id, sec := "abcdef", "0123456789abcdef"
	groups, err := CheckBootstrapSecret(bootstrapSecret(id, sec, map[string]string{
		"auth-extra-groups": "system:bootstrappers:k3s:default-node-token",
		"expiration":        now.Add(time.Hour).Format(time.RFC3339)}), id, sec, now)
	if err != nil || strings.Join(groups, ",") != "system:bootstrappers,system:bootstrappers:k3s:default-node-token" {
		t.Fatalf("valid token: %v %v", groups, err)
	}
	bad := map[string]*corev1.Secret{
		"wrong secret": bootstrapSecret(id, "ffffffffffffffff", nil),
		"expired":      bootstrapSecret(id, sec, map[string]string{"expiration": now.Add(-time.Second).Format(time.RFC3339)}),
		"no auth use":  bootstrapSecret(id, sec, map[string]string{"usage-bootstrap-authentication": ""}),
		"bad group":    bootstrapSecret(id, sec, map[string]string{"auth-extra-groups": "system:masters"}),
	}
	wrongType := bootstrapSecret(id, sec, nil)
	wrongType.Type = corev1.SecretTypeOpaque
	bad["wrong type"] = wrongType
	for name, s := range bad {
		if _, err := CheckBootstrapSecret(s, id, sec, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNodePasswordHashIsK3sFormat(t *testing.T) {
	h, err := HashNodePassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	// K3s's hash: $1:<salt hex>:15:8:1:<base64 key>
	parts := strings.Split(h, ":")
	if len(parts) != 6 || parts[0] != "$1" || len(parts[1]) != 16 || parts[2] != "15" || parts[3] != "8" || parts[4] != "1" {
		t.Fatalf("hash %q is not in K3s's scrypt format", h)
	}
	if err := VerifyNodePassword(h, "pw"); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := VerifyNodePassword(h, "other"); err == nil {
		t.Error("another password verified")
	}
}

func TestEnsureNodePassword(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	secrets := cs.CoreV1().Secrets("kube-system")
	if err := EnsureNodePassword(ctx, secrets, "Agent-1", "first"); err != nil {
		t.Fatalf("first join: %v", err)
	}
	s, err := secrets.Get(ctx, "agent-1.node-password.k3s", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("secret not made under K3s's name: %v", err)
	}
	if s.Type != NodePasswordSecretType || s.Immutable == nil || !*s.Immutable || VerifyNodePassword(string(s.Data["hash"]), "first") != nil {
		t.Errorf("secret = %+v", s)
	}
	if err := EnsureNodePassword(ctx, secrets, "agent-1", "first"); err != nil {
		t.Errorf("re-join with the same password: %v", err)
	}
	if err := EnsureNodePassword(ctx, secrets, "agent-1", "second"); !errors.Is(err, ErrNodePasswordMismatch) {
		t.Errorf("re-join with another password: %v, want a mismatch", err)
	}
	if err := secrets.Delete(ctx, "agent-1.node-password.k3s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureNodePassword(ctx, secrets, "agent-1", "second"); err != nil {
		t.Errorf("join after the secret was deleted: %v", err)
	}
}

func TestNodePasswordOwners(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "uid-a"}}
	owned := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "a.node-password.k3s", Namespace: "kube-system"}, Type: NodePasswordSecretType}
	young := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b.node-password.k3s", Namespace: "kube-system",
		CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))}, Type: NodePasswordSecretType}
	orphan := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "c.node-password.k3s", Namespace: "kube-system",
		CreationTimestamp: metav1.NewTime(now.Add(-11 * time.Minute))}, Type: NodePasswordSecretType}
	cs := fake.NewClientset(node, owned, young, orphan)
	if err := NodePasswordOwners(ctx, cs, now); err != nil {
		t.Fatal(err)
	}
	s, err := cs.CoreV1().Secrets("kube-system").Get(ctx, owned.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Node" || s.OwnerReferences[0].UID != "uid-a" {
		t.Errorf("owner references = %+v, want the Node", s.OwnerReferences)
	}
	if _, err := cs.CoreV1().Secrets("kube-system").Get(ctx, young.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("a young secret without its node was deleted: %v", err)
	}
	if _, err := cs.CoreV1().Secrets("kube-system").Get(ctx, orphan.Name, metav1.GetOptions{}); err == nil {
		t.Error("an orphaned secret older than ten minutes was kept")
	}
}

func TestPodRoutes(t *testing.T) {
	n := func(name, cidr, ip string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	got := PodRoutes("a", []corev1.Node{n("a", "10.42.0.0/24", "192.0.2.1"), n("b", "10.42.1.0/24", "192.0.2.2"), n("c", "", "192.0.2.3")})
	if len(got) != 1 || got[0].CIDR.String() != "10.42.1.0/24" || got[0].Via.String() != "192.0.2.2" {
		t.Errorf("routes = %v, want 10.42.1.0/24 via 192.0.2.2 only", got)
	}
}

func TestRouteSync(t *testing.T) {
	var calls []string
	table := "10.42.5.0/24 via 192.0.2.9 dev eth0\n10.42.1.0/24 via 192.0.2.2 dev eth0\n"
	rs := &routeSync{self: "a", logf: func(string, ...any) {}, run: func(_ context.Context, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(args, " "))
		if args[1] == "route" && args[2] == "show" {
			return []byte(table), nil
		}
		return nil, nil
	}}
	node := func(name, cidr, ip string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	cs := fake.NewClientset(node("a", "10.42.0.0/24", "192.0.2.1"), node("b", "10.42.1.0/24", "192.0.2.2"), node("c", "10.42.2.0/24", "192.0.2.3"))
	if err := rs.sync(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	want := []string{"-4 route show proto 248", "route replace 10.42.2.0/24 via 192.0.2.3 proto 248", "route del 10.42.5.0/24 proto 248"}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("ip calls = %q, want %q", calls, want)
	}
}
