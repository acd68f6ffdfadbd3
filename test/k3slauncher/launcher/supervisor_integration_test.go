//go:build integration

package launcher

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/test/cluster"
)

// TestSupervisorAgainstControlPlane runs the supervisor in-process in front
// of a real API server set up as the launcher sets up its own
// (request-header authentication from the supervisor's CA, bootstrap
// tokens on): node passwords and bootstrap tokens live in the API server's
// Secrets, and proxied requests reach it with the caller's identity.
func TestSupervisorAgainstControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca, err := cluster.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp := cluster.StartControlPlane(ctx, t, cluster.ControlPlaneOptions{APIServerArgs: []string{
		"--enable-bootstrap-token-auth=true",
		"--requestheader-client-ca-file=" + ca.CertFile,
		"--requestheader-allowed-names=" + authProxyName,
		"--requestheader-username-headers=" + remoteUserHeader,
		"--requestheader-group-headers=" + remoteGroupHeader,
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
	}})
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(cp.RESTConfig().TLSClientConfig.CAData)
	upCA, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	up, err := url.Parse(cp.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxyKP, err := ca.Issue(dir, "client-auth-proxy", cluster.CertSpec{CommonName: authProxyName, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	proxyCert, err := tls.X509KeyPair(proxyKP.CertPEM, proxyKP.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sup := &Supervisor{CA: &CACert{Cert: ca.Cert, Key: ca.Key, CertPEM: ca.CertPEM}, ServerPass: "spass", AgentPass: "apass",
		Config: SupervisorConfig{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", ClusterIPRange: "10.42.0.0/16",
			ServiceIPRange: "10.43.0.0/16", ServiceNodePortRange: "30000-32767", FlannelBackend: "vxlan"},
		Client: cs, Upstream: up, ProxyCert: &proxyCert, UpstreamCA: upCA, Logf: t.Logf,
		APIServers: func(ctx context.Context) []string { return apiServerAddresses(ctx, cs) }}
	serving, err := ca.Issue(dir, "serving", cluster.CertSpec{CommonName: "k3s", Server: true, DNSNames: []string{"localhost"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sup.Handler())
	srv.TLS = sup.TLSConfig(kp)
	srv.StartTLS()
	defer srv.Close()
	base := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	// The agent's side: the CA checked against a K3s token's hash.
	hash, err := HashCA(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken("K10" + hash + "::node:apass")
	if err != nil {
		t.Fatal(err)
	}
	got, err := getCACerts(ctx, base, tok)
	if err != nil || string(got) != string(ca.CertPEM) {
		t.Fatalf("getCACerts: %v", err)
	}
	agent := newSupervisorClient(base, tok, got, nil)
	hdr := http.Header{}
	hdr.Set(nodeNameHeader, "agent-1")
	hdr.Set(nodePassHeader, "np-1")
	certFile, keyFile := dir+"/client-kubelet.crt", dir+"/client-kubelet.key"
	if err := agent.certWithKey(ctx, "/v1-k3s/client-kubelet.crt", certFile, keyFile, hdr.Clone()); err != nil {
		t.Fatalf("client-kubelet.crt: %v", err)
	}
	sec, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "agent-1.node-password.k3s", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node-password secret: %v", err)
	}
	if sec.Type != NodePasswordSecretType || VerifyNodePassword(string(sec.Data["hash"]), "np-1") != nil {
		t.Errorf("node-password secret = %+v", sec)
	}
	// Another host taking the name is refused.
	hdr.Set(nodePassHeader, "np-2")
	if err := agent.certWithKey(ctx, "/v1-k3s/client-kubelet.crt", dir+"/x.crt", dir+"/x.key", hdr.Clone()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("re-join with another node password: %v, want 403", err)
	}
	// The node joins: the secret gets the Node as owner.
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "agent-1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := NodePasswordOwners(ctx, cs, time.Now()); err != nil {
		t.Fatal(err)
	}
	sec, _ = cs.CoreV1().Secrets("kube-system").Get(ctx, "agent-1.node-password.k3s", metav1.GetOptions{})
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != node.UID {
		t.Errorf("owner references = %+v", sec.OwnerReferences)
	}

	// Proxied requests carry the caller's identity to the API server.
	nodeCert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	asNode := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{nodeCert}, MinVersion: tls.VersionTLS12}}}
	_, err = httpGet(ctx, asNode, base+"/api/v1/namespaces", nil)
	if err == nil || !strings.Contains(err.Error(), `User \"system:node:agent-1\"`) {
		t.Errorf("namespaces as the node: %v, want the API server's refusal naming system:node:agent-1", err)
	}
	admin, err := ca.Issue(dir, "admin", cluster.CertSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	adminCert, _ := tls.X509KeyPair(admin.CertPEM, admin.KeyPEM)
	asAdmin := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{adminCert}, MinVersion: tls.VersionTLS12}}}
	if b, err := httpGet(ctx, asAdmin, base+"/api/v1/namespaces/kube-system", nil); err != nil || !strings.Contains(string(b), `"name":"kube-system"`) {
		t.Errorf("namespace as admin through the supervisor: %v %s", err, b)
	}
	// A client pretending to be the admin by header is not.
	h := http.Header{}
	h.Set("X-Remote-User", "system:admin")
	h.Add("X-Remote-Group", "system:masters")
	if _, err := httpGet(ctx, asNode, base+"/api/v1/namespaces", h); err == nil {
		t.Error("identity headers from a client were honoured")
	}

	// A bootstrap token (k3s token create): accepted by the supervisor,
	// and passed through to the API server, until its secret is deleted.
	if _, err := cs.CoreV1().Secrets("kube-system").Create(ctx, bootstrapSecret("abcdef", "0123456789abcdef",
		map[string]string{"expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	btok, _ := ParseToken("K10" + hash + "::abcdef.0123456789abcdef")
	bagent := newSupervisorClient(base, btok, got, nil)
	if _, err := bagent.do(ctx, http.MethodGet, "/v1-k3s/readyz", nil, nil); err != nil {
		t.Errorf("readyz with a bootstrap token: %v", err)
	}
	bh := http.Header{}
	bh.Set("Authorization", "Bearer abcdef.0123456789abcdef")
	_, err = httpGet(ctx, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, base+"/api/v1/namespaces", bh)
	if err == nil || !strings.Contains(err.Error(), `system:bootstrap:abcdef`) {
		t.Errorf("namespaces with the bootstrap token: %v, want the API server's refusal naming system:bootstrap:abcdef", err)
	}
	if err := cs.CoreV1().Secrets("kube-system").Delete(ctx, "bootstrap-token-abcdef", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bagent.do(ctx, http.MethodGet, "/v1-k3s/readyz", nil, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("readyz after the token was deleted: %v, want 401", err)
	}

	// An agent joins through its load balancer: certificates and
	// kubeconfigs whose identity reaches the API server.
	u, _ := url.Parse(base)
	joinAs := func(name, pwFile, token string) (*joined, error) {
		tok, err := ParseToken(token)
		if err != nil {
			t.Fatal(err)
		}
		data := t.TempDir()
		a := &Agent{Options: AgentOptions{Server: u, Token: tok, NodeName: name, DataDir: data}, Log: &bytes.Buffer{},
			NodePasswordFile: pwFile, LBAddr: "127.0.0.1:0"}
		jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return a.join(jctx, agentFiles{dir: filepath.Join(data, "agent")}, "192.0.2.20")
	}
	pw := filepath.Join(dir, "node", "password")
	j, err := joinAs("agent-2", pw, "K10"+hash+"::node:apass")
	if err != nil {
		t.Fatalf("agent join: %v", err)
	}
	defer j.lb.Close()
	for _, f := range []string{"client-ca.crt", "server-ca.crt", "serving-kubelet.crt", "serving-kubelet.key", "client-kubelet.key", "client-kube-proxy.crt", "kubelet.kubeconfig", "kubeproxy.kubeconfig"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(j.kubeletKC), f)); err != nil {
			t.Errorf("agent file %s: %v", f, err)
		}
	}
	kc, err := clientcmd.BuildConfigFromFlags("", j.kubeletKC)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(kc.Host, "https://127.0.0.1:") {
		t.Errorf("kubelet kubeconfig server %s, want the local load balancer", kc.Host)
	}
	kcs, err := kubernetes.NewForConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = kcs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err == nil || !strings.Contains(err.Error(), `"system:node:agent-2"`) {
		t.Errorf("namespaces as the agent's kubelet: %v, want the API server's refusal naming system:node:agent-2", err)
	}
	if j.c.ClusterCIDR.String() != "10.42.0.0/16" || j.c.ClusterDNS.String() != "10.43.0.10" || j.c.NodeName != "agent-2" {
		t.Errorf("node config from /v1-k3s/config = %+v", j.c)
	}
	// The same name from another host (another node password) is refused.
	if _, err := joinAs("agent-2", filepath.Join(dir, "other", "password"), "K10"+hash+"::node:apass"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("join under a taken name: %v, want 403", err)
	}
	// A token for another cluster's CA is refused before any credential
	// is sent.
	if _, err := joinAs("agent-3", pw, "K10"+strings.Repeat("0", 64)+"::node:apass"); err == nil || !strings.Contains(err.Error(), "token CA hash does not match") {
		t.Errorf("join with another CA's hash: %v", err)
	}
}
