package launcher

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tpctl/tpctl/test/cluster"
)

// supervisorWorld is a supervisor on a TLS test server in front of a
// recording upstream.
type supervisorWorld struct {
	ca       *cluster.CA
	url      string
	upstream chan http.Header
	client   func(cert *tls.Certificate) *http.Client
	fake     *fake.Clientset
}

func newSupervisorWorld(t *testing.T) *supervisorWorld {
	t.Helper()
	dir := t.TempDir()
	ca, err := cluster.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := &supervisorWorld{ca: ca, upstream: make(chan http.Header, 10), fake: fake.NewClientset()}
	up := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.upstream <- r.Header.Clone()
		_, _ = io.WriteString(rw, "upstream "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	sup := &Supervisor{CA: &CACert{Cert: ca.Cert, Key: ca.Key, CertPEM: ca.CertPEM}, ServerPass: "spass", AgentPass: "apass",
		Client: w.fake, Upstream: u, Config: SupervisorConfig{ClusterDNS: "10.43.0.10"}}
	h := sup.Handler()
	serving, err := ca.Issue(dir, "serving", cluster.CertSpec{CommonName: "k3s", Server: true, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = sup.TLSConfig(kp)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	w.url = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	w.client = func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	return w
}

func (w *supervisorWorld) do(t *testing.T, c *http.Client, method, path string, hdr map[string]string, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSupervisorEndpointsAndAuth(t *testing.T) {
	w := newSupervisorWorld(t)
	c := w.client(nil)
	if code, body := w.do(t, c, "GET", "/cacerts", nil, "", ""); code != 200 || body != string(w.ca.CertPEM) {
		t.Fatalf("/cacerts = %d %q", code, body)
	}
	if code, _ := w.do(t, c, "GET", "/v1-k3s/config", nil, "", ""); code != http.StatusForbidden {
		t.Errorf("/v1-k3s/config without credentials = %d, want 403", code)
	}
	if code, _ := w.do(t, c, "GET", "/v1-k3s/config", nil, "node", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/v1-k3s/config with a wrong password = %d, want 401", code)
	}
	if code, body := w.do(t, c, "GET", "/v1-k3s/config", nil, "node", "apass"); code != 200 || !strings.Contains(body, `"ClusterDNS":"10.43.0.10"`) {
		t.Errorf("/v1-k3s/config as node = %d %q", code, body)
	}
	if code, _ := w.do(t, c, "GET", "/v1-k3s/config", nil, "server", "spass"); code != 200 {
		t.Errorf("/v1-k3s/config as server = %d", code)
	}
	nodeHdr := map[string]string{"K3s-Node-Name": "agent-1", "K3s-Node-Password": "np1", "K3s-Node-IP": "192.0.2.7"}
	code, body := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", nodeHdr, "node", "apass")
	if code != 200 {
		t.Fatalf("client-kubelet.crt = %d %q", code, body)
	}
	cert := firstCert(t, body)
	if cert.Subject.CommonName != "system:node:agent-1" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("client-kubelet.crt subject = %v", cert.Subject)
	}
	if !strings.Contains(body, "PRIVATE KEY") {
		t.Error("a GET gets the key after the certificate (K3s's legacy form)")
	}
	code, body = w.do(t, c, "GET", "/v1-k3s/serving-kubelet.crt", nodeHdr, "node", "apass")
	if code != 200 {
		t.Fatalf("serving-kubelet.crt = %d %q", code, body)
	}
	if sc := firstCert(t, body); sc.Subject.CommonName != "agent-1" || len(sc.IPAddresses) != 2 || sc.IPAddresses[1].String() != "192.0.2.7" {
		t.Errorf("serving-kubelet.crt = %v %v", sc.Subject, sc.IPAddresses)
	}
	// Another host claiming the same node name with another password.
	nodeHdr["K3s-Node-Password"] = "np2"
	if code, _ := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", nodeHdr, "node", "apass"); code != http.StatusForbidden {
		t.Errorf("client-kubelet.crt with another node password = %d, want 403", code)
	}
	delete(nodeHdr, "K3s-Node-Password")
	if code, _ := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", nodeHdr, "node", "apass"); code != http.StatusBadRequest {
		t.Errorf("client-kubelet.crt without a node password = %d, want 400", code)
	}
	// A bootstrap token (k3s token create) is a bearer token.
	if _, err := w.fake.CoreV1().Secrets("kube-system").Create(t.Context(), bootstrapSecret("abcdef", "0123456789abcdef", nil), metav1CreateOptions()); err != nil {
		t.Fatal(err)
	}
	if code, _ := w.do(t, c, "GET", "/v1-k3s/readyz", map[string]string{"Authorization": "Bearer abcdef.0123456789abcdef"}, "", ""); code != 200 {
		t.Errorf("readyz with a bootstrap token = %d", code)
	}
	if code, _ := w.do(t, c, "GET", "/v1-k3s/readyz", map[string]string{"Authorization": "Bearer abcdef.ffffffffffffffff"}, "", ""); code != http.StatusUnauthorized {
		t.Errorf("readyz with a wrong bootstrap secret = %d, want 401", code)
	}
}

func firstCert(t *testing.T, body string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(body))
	if b == nil {
		t.Fatalf("no PEM in %q", body)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSupervisorProxiesWithIdentity(t *testing.T) {
	w := newSupervisorWorld(t)
	kp, err := w.ca.Issue(t.TempDir(), "kubelet", cluster.CertSpec{CommonName: "system:node:n1", Organization: []string{"system:nodes"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	code, body := w.do(t, w.client(&cert), "GET", "/api/v1/nodes", map[string]string{"X-Remote-Group": "system:masters"}, "", "")
	if code != 200 || body != "upstream /api/v1/nodes" {
		t.Fatalf("proxied = %d %q", code, body)
	}
	h := <-w.upstream
	if h.Get("X-Remote-User") != "system:node:n1" || strings.Join(h.Values("X-Remote-Group"), ",") != "system:nodes" {
		t.Errorf("upstream identity headers = %v", h)
	}
	// Without a certificate, the request goes as it came, minus any
	// identity header.
	w.do(t, w.client(nil), "GET", "/api", map[string]string{"Authorization": "Bearer sa-token", "X-Remote-User": "system:admin"}, "", "")
	h = <-w.upstream
	if h.Get("Authorization") != "Bearer sa-token" || h.Get("X-Remote-User") != "" {
		t.Errorf("upstream headers for a token request = %v", h)
	}
}

func TestSupervisorRejoinWithNodeIdentity(t *testing.T) {
	w := newSupervisorWorld(t)
	kp, err := w.ca.Issue(t.TempDir(), "kubelet", cluster.CertSpec{CommonName: "system:node:agent-9", Organization: []string{"system:nodes"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := w.client(&cert)
	hdr := map[string]string{"K3s-Node-Name": "agent-9", "K3s-Node-Password": "np"}
	// A valid token wins over the certificate: a join that stopped before
	// its Node registered resumes.
	if code, body := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", hdr, "node", "apass"); code != 200 {
		t.Errorf("join with a valid token and an earlier certificate, no Node yet = %d %q, want 200", code, body)
	}
	// The token no longer works and the Node is gone: refused.
	if code, _ := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", hdr, "node", "expired"); code != http.StatusUnauthorized {
		t.Errorf("rejoin without a Node = %d, want 401", code)
	}
	if _, err := w.fake.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "agent-9"}}, metav1CreateOptions()); err != nil {
		t.Fatal(err)
	}
	if code, body := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", hdr, "node", "expired"); code != 200 {
		t.Errorf("rejoin with the node's certificate = %d %q, want 200", code, body)
	}
	// The certificate is for agent-9 only.
	hdr["K3s-Node-Name"] = "agent-8"
	if code, _ := w.do(t, c, "GET", "/v1-k3s/client-kubelet.crt", hdr, "node", "expired"); code != http.StatusBadRequest {
		t.Errorf("another node's name with agent-9's certificate = %d, want 400", code)
	}
}
