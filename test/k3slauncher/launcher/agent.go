package launcher

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/test/cluster"
)

// DefaultNodePasswordFile is where K3s's agent keeps its node password
// (K3s: pkg/agent/config/config.go, ensureNodePassword).
const DefaultNodePasswordFile = "/etc/rancher/node/password"

// Agent runs one K3s-like agent node: containerd, kubelet and kube-proxy
// joined to a server through the local load balancer.
type Agent struct {
	Options AgentOptions
	// Components is the directory of the component binaries.
	Components string
	Log        io.Writer
	// Notify sends a state to systemd; nil outside a unit.
	Notify func(state string) error
	// NodePasswordFile is DefaultNodePasswordFile outside tests.
	NodePasswordFile string
	// LBAddr is where the load balancer listens (127.0.0.1:6444).
	LBAddr string
}

func (a *Agent) logf(format string, args ...any) {
	fmt.Fprintf(a.Log, "launcher: "+format+"\n", args...)
}

// agentFiles are K3s's agent files below <data-dir>/agent.
type agentFiles struct{ dir string }

func (f agentFiles) p(name string) string { return filepath.Join(f.dir, name) }

// EnsureNodePasswordFile reads the node password, making a random one
// (0600) at the first start, as K3s's agent does.
func EnsureNodePasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if p := strings.TrimSpace(string(b)); p != "" {
			return p, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make a node password: %w", err)
	}
	pass := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", filepath.Dir(path), err)
	}
	if err := writeFileAtomic(path, []byte(pass+"\n"), 0o600); err != nil {
		return "", err
	}
	return pass, nil
}

// supervisorClient is an agent's client of the supervisor (K3s:
// pkg/clientaccess, Info.Get/Post): the CA from /cacerts checked against
// the token's hash, then basic auth as "node" or the bootstrap token, and
// the node's kubelet client certificate when it has one.
type supervisorClient struct {
	base  string
	token Token
	ca    []byte
	http  *http.Client
}

// getCACerts is K3s's getCACerts: fetch /cacerts without verifying, check
// the token's hash, then check that the CA verifies the server.
func getCACerts(ctx context.Context, base string, tok Token) ([]byte, error) {
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} //nolint:gosec // checked against the token's hash below, as K3s
	ca, err := httpGet(ctx, insecure, base+"/cacerts", nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get CA certs: %w", err)
	}
	if err := tok.ValidateCA(ca); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the server's CA bundle holds no certificate")
	}
	verified := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	if _, err := httpGet(ctx, verified, base+"/cacerts", nil); err != nil {
		return nil, fmt.Errorf("CA cert validation failed: %w", err)
	}
	return ca, nil
}

func httpGet(ctx context.Context, c *http.Client, u string, hdr http.Header) ([]byte, error) {
	return httpDo(ctx, c, http.MethodGet, u, hdr, nil)
}

func httpDo(ctx context.Context, c *http.Client, method, u string, hdr http.Header, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

func newSupervisorClient(base string, tok Token, ca []byte, clientCert *tls.Certificate) *supervisorClient {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	return &supervisorClient{base: base, token: tok, ca: ca, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}}
}

func (s *supervisorClient) do(ctx context.Context, method, path string, hdr http.Header, body []byte) ([]byte, error) {
	if hdr == nil {
		hdr = http.Header{}
	}
	if b := s.token.Bearer(); b != "" {
		hdr.Set("Authorization", "Bearer "+b)
	} else {
		// K3s's agent overrides the token's user with "node".
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth("node", s.token.Password)
		hdr.Set("Authorization", req.Header.Get("Authorization"))
	}
	return httpDo(ctx, s.http, method, s.base+path, hdr, body)
}

// certWithKey asks for a certificate for the key in keyFile (made when
// missing), posting a CSR as K3s's newer agents do, and writes
// certFile (the certificate and the CA after it).
func (s *supervisorClient) certWithKey(ctx context.Context, path, certFile, keyFile string, hdr http.Header) error {
	key, err := loadOrMakeKey(keyFile)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return fmt.Errorf("make CSR: %w", err)
	}
	b, err := s.do(ctx, http.MethodPost, path, hdr, csr)
	if err != nil {
		return err
	}
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "CERTIFICATE" {
		return fmt.Errorf("%s: the answer is not a certificate", path)
	}
	return writeFileAtomic(certFile, b, 0o644)
}

func loadOrMakeKey(path string) (*ecdsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		if blk, _ := pem.Decode(b); blk != nil {
			if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
				return k, nil
			}
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// existingClientCert is the node's kubelet client certificate of an earlier
// join, when it is signed by ca (K3s's agent authenticates with it, so that
// a node rejoins after its token expired).
func existingClientCert(certFile, keyFile string, ca []byte) *tls.Certificate {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil
	}
	return &c
}

// Run joins the node and runs it until ctx ends or a component exits.
func (a *Agent) Run(ctx context.Context) error {
	o := a.Options
	l := Layout{Data: o.DataDir}
	f := agentFiles{dir: l.path("agent")}
	begin := time.Now()
	bins, err := cluster.Binaries{Dir: a.Components, Versions: cluster.PinnedVersions()}.Require("kubelet", "kube-proxy")
	if err != nil {
		return fmt.Errorf("component binaries (this launcher runs the upstream binaries from %s): %w", a.Components, err)
	}
	ctrd, err := containerdPaths(a.Components)
	if err != nil {
		return err
	}
	for n, p := range ctrd {
		bins[n] = p
	}
	if bins, err = installComponents(l, bins); err != nil {
		return err
	}
	if err := os.Setenv("PATH", l.BinDir()+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return fmt.Errorf("set PATH: %w", err)
	}
	nodeIP := o.NodeIP
	if nodeIP == "" {
		if nodeIP, err = defaultRouteIPv4(); err != nil {
			return fmt.Errorf("node-ip is not set and cannot be found: %w", err)
		}
	}
	for _, d := range []string{f.dir, ContainerdState, l.ImagesDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
	}
	j, err := a.join(ctx, f, nodeIP)
	if err != nil {
		return err
	}
	defer j.lb.Close()
	lb, sc, c, kubeletKC, proxyKC := j.lb, j.sc, j.c, j.kubeletKC, j.proxyKC
	cfgToml, tmpl, err := ContainerdConfig(l, PauseImage)
	if err != nil {
		return err
	}
	if tmpl != "" {
		a.logf("containerd config rendered from %s", tmpl)
	}
	if err := writeFileAtomic(filepath.Join(l.ContainerdDir(), "config.toml"), cfgToml, 0o600); err != nil {
		return err
	}
	lw := lineWriter{mu: &sync.Mutex{}, out: a.Log}
	kids := newChildren()
	defer func() {
		a.logf("stopping components (kubelet+kube-proxy → containerd)")
		kids.stopAll()
		a.logf("stopped")
	}()
	start := func(name string, args ...string) error {
		ch, err := startChild(lw, name, bins[name], args, f.dir)
		if err != nil {
			return err
		}
		kids.add(ch)
		return nil
	}
	if err := start("containerd", "--config", filepath.Join(l.ContainerdDir(), "config.toml")); err != nil {
		return err
	}
	srv := &Server{Config: c, Log: a.Log}
	srv.hostSettings()
	if err := srv.waitFor(ctx, kids, "containerd", func(ctx context.Context) error { return dial(ctx, "unix", ContainerdSocket) }); err != nil {
		return err
	}
	images := newAirGap(l.ImagesDir(), CtrImport(bins["ctr"], ContainerdSocket), a.logf)
	if err := images.importAtStart(ctx); err != nil {
		return err
	}
	kcfg := filepath.Join(f.dir, "etc", "kubelet.yaml")
	if err := writeFileAtomic(kcfg, []byte(kubeletConfig(c, nodeIP, f.p("client-ca.crt"), f.p("serving-kubelet.crt"), f.p("serving-kubelet.key"))), 0o600); err != nil {
		return err
	}
	if err := start("kubelet", agentKubeletArgs(o, kcfg, kubeletKC, l, nodeIP)...); err != nil {
		return err
	}
	// K3s's agent polls the supervisor's readyz before kube-proxy.
	if err := srv.waitFor(ctx, kids, "/v1-k3s/readyz", func(ctx context.Context) error {
		_, err := sc.do(ctx, http.MethodGet, "/v1-k3s/readyz", nil, nil)
		return err
	}); err != nil {
		return err
	}
	proxyCfg := filepath.Join(f.dir, "etc", "kube-proxy.yaml")
	if err := writeFileAtomic(proxyCfg, []byte(kubeProxyConfig(c, nodeIP, proxyKC)), 0o600); err != nil {
		return err
	}
	if err := start("kube-proxy", "--config="+proxyCfg); err != nil {
		return err
	}
	kc, err := clientcmd.BuildConfigFromFlags("", kubeletKC)
	if err != nil {
		return fmt.Errorf("read %s: %w", kubeletKC, err)
	}
	cs, err := kubernetes.NewForConfig(kc)
	if err != nil {
		return fmt.Errorf("make client: %w", err)
	}
	// The network (K3s: startNetwork after the API server is ready): the
	// node's podCIDR, once the controller manager gave it one, is the
	// bridge's subnet; then READY=1, as K3s's agent notifies.
	var podCIDR string
	if err := srv.waitFor(ctx, kids, "node "+o.NodeName+" podCIDR", func(ctx context.Context) error {
		n, err := cs.CoreV1().Nodes().Get(ctx, o.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node: %w", err)
		}
		if n.Spec.PodCIDR == "" {
			return errors.New("no podCIDR yet")
		}
		podCIDR = n.Spec.PodCIDR
		return nil
	}); err != nil {
		return err
	}
	network := c.FlannelBackend != "none"
	if network {
		if err := writeFileAtomic(filepath.Join(l.CNIConfDir(), "10-flannel.conflist"), []byte(cniConfigFor(podCIDR)), 0o644); err != nil {
			return err
		}
	} else {
		a.logf("flannel-backend none on the server: no CNI network; the node stays NotReady until one is installed")
	}
	a.logf("agent %s joined %s (pods %s) after %s", o.NodeName, o.Server.Host, podCIDR, time.Since(begin).Round(time.Millisecond))
	if a.Notify != nil {
		if err := a.Notify("READY=1"); err != nil {
			return fmt.Errorf("notify systemd: %w", err)
		}
	}
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
	}()
	rs := &routeSync{self: o.NodeName, logf: a.logf, run: ipCommand}
	jobs := []func(context.Context){
		images.watch,
		func(ctx context.Context) {
			if network {
				loop(ctx, 3*time.Second, "pod routes", a.logf, func(ctx context.Context) error { return rs.sync(ctx, cs) })
			}
		},
		func(ctx context.Context) {
			loop(ctx, 30*time.Second, "apiservers", a.logf, func(ctx context.Context) error {
				b, err := sc.do(ctx, http.MethodGet, "/v1-k3s/apiservers", nil, nil)
				if err != nil {
					return err
				}
				var list []string
				if err := json.Unmarshal(b, &list); err != nil {
					return fmt.Errorf("decode apiservers: %w", err)
				}
				return lb.Update(list)
			})
		},
	}
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job(bg)
		}()
	}
	select {
	case <-ctx.Done():
		a.logf("asked to stop")
		return nil
	case ch := <-kids.exit:
		return fmt.Errorf("%s exited: %w", ch.name, errors.Join(ch.waitErr, errors.New("component ended")))
	}
}

// retry calls fn every 2 seconds until it succeeds or ctx ends, logging
// the error now and then.
func (a *Agent) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	var told time.Time
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := fn(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Since(told) > 10*time.Second {
			a.logf("waiting for %s: %s", what, err)
			told = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %w)", what, ctx.Err(), err)
		case <-time.After(2 * time.Second):
		}
	}
}

// nodeConfigFromSupervisor is the node configuration the shared renderers
// take, from the agent's options and the server's /v1-k3s/config.
func nodeConfigFromSupervisor(o AgentOptions, s SupervisorConfig) (Config, error) {
	c := Config{NodeName: o.NodeName, NodeIP: o.NodeIP, DataDir: o.DataDir, KubeletArgs: o.KubeletArgs,
		FlannelBackend: s.FlannelBackend, ServiceNodePortRange: s.ServiceNodePortRange, DisableNetworkPolicy: s.DisableNPC}
	var err error
	if c.ClusterCIDR, err = netip.ParsePrefix(s.ClusterIPRange); err != nil {
		return Config{}, fmt.Errorf("server config: cluster CIDR %q: %w", s.ClusterIPRange, err)
	}
	if c.ServiceCIDR, err = netip.ParsePrefix(s.ServiceIPRange); err != nil {
		return Config{}, fmt.Errorf("server config: service CIDR %q: %w", s.ServiceIPRange, err)
	}
	if c.ClusterDNS, err = netip.ParseAddr(s.ClusterDNS); err != nil {
		return Config{}, fmt.Errorf("server config: cluster DNS %q: %w", s.ClusterDNS, err)
	}
	return c, nil
}

// agentKubeletArgs: as the server's, with the agent's credentials, labels
// and taints (K3s passes node-label and node-taint to the kubelet as
// --node-labels and --register-with-taints).
func agentKubeletArgs(o AgentOptions, cfg, kubeconfig string, l Layout, nodeIP string) []string {
	args := []string{
		"--config=" + cfg,
		"--kubeconfig=" + kubeconfig,
		"--root-dir=" + KubeletRootDir,
		"--cert-dir=" + l.path("agent", "kubelet-pki"),
		"--node-ip=" + nodeIP,
		"--hostname-override=" + o.NodeName,
	}
	if len(o.NodeLabels) > 0 {
		args = append(args, "--node-labels="+strings.Join(o.NodeLabels, ","))
	}
	if len(o.NodeTaints) > 0 {
		args = append(args, "--register-with-taints="+strings.Join(o.NodeTaints, ","))
	}
	for _, a := range o.KubeletArgs {
		args = append(args, "--"+a)
	}
	return args
}

// writeKubeconfigFiles writes a kubeconfig naming the certificate files,
// as K3s's agent kubeconfigs do.
func writeKubeconfigFiles(path, server string, ca []byte, certFile, keyFile string) error {
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    server: %s
    certificate-authority-data: %s
  name: local
contexts:
- context:
    cluster: local
    namespace: default
    user: user
  name: Default
current-context: Default
users:
- name: user
  user:
    client-certificate: %s
    client-key: %s
`, server, b64(ca), certFile, keyFile)
	return writeFileAtomic(path, []byte(content), 0o600)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// joined is an agent's state once it joined: the load balancer, its
// supervisor client, the node configuration and the kubeconfigs.
type joined struct {
	lb                 *LoadBalancer
	sc                 *supervisorClient
	c                  Config
	kubeletKC, proxyKC string
}

// join is the agent's bootstrap: node password, load balancer, CA checked
// against the token, /v1-k3s/config, certificates and kubeconfigs.
func (a *Agent) join(ctx context.Context, f agentFiles, nodeIP string) (_ *joined, err error) {
	o := a.Options
	pwFile := a.NodePasswordFile
	if pwFile == "" {
		pwFile = DefaultNodePasswordFile
	}
	nodePass, err := EnsureNodePasswordFile(pwFile)
	if err != nil {
		return nil, err
	}
	lbAddr := a.LBAddr
	if lbAddr == "" {
		lbAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultLBPort))
	}
	lb, err := NewLoadBalancer(lbAddr, o.Server.String(), o.Server.Host, filepath.Join(f.dir, "etc", "k3s-agent-load-balancer.json"), a.logf)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lb.Close()
		}
	}()
	local := "https://" + lb.Addr()

	// K3s: retry every 2s until the token validates against the server.
	var ca []byte
	if err := a.retry(ctx, "the server's CA", func(ctx context.Context) (err error) {
		ca, err = getCACerts(ctx, local, o.Token)
		return err
	}); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(f.p("server-ca.crt"), ca, 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(f.p("client-ca.crt"), ca, 0o644); err != nil {
		return nil, err
	}
	sc := newSupervisorClient(local, o.Token, ca, existingClientCert(f.p("client-kubelet.crt"), f.p("client-kubelet.key"), ca))
	var sup SupervisorConfig
	if err := a.retry(ctx, "/v1-k3s/config", func(ctx context.Context) error {
		b, err := sc.do(ctx, http.MethodGet, "/v1-k3s/config", nil, nil)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &sup) //nolint:wrapcheck // retried
	}); err != nil {
		return nil, err
	}
	c, err := nodeConfigFromSupervisor(o, sup)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{}
	hdr.Set(nodeNameHeader, o.NodeName)
	hdr.Set(nodePassHeader, nodePass)
	hdr.Set(nodeIPHeader, nodeIP)
	// A refused node password is final (another host holds the name): K3s
	// exits with the server's answer.
	for _, cert := range []struct{ path, name string }{
		{"/v1-k3s/serving-kubelet.crt", "serving-kubelet"},
		{"/v1-k3s/client-kubelet.crt", "client-kubelet"},
		{"/v1-k3s/client-kube-proxy.crt", "client-kube-proxy"},
	} {
		if err := sc.certWithKey(ctx, cert.path, f.p(cert.name+".crt"), f.p(cert.name+".key"), hdr.Clone()); err != nil {
			return nil, fmt.Errorf("get %s: %w", cert.name, err)
		}
	}
	kubeletKC, proxyKC := f.p("kubelet.kubeconfig"), f.p("kubeproxy.kubeconfig")
	for _, k := range []struct{ path, name string }{{kubeletKC, "client-kubelet"}, {proxyKC, "client-kube-proxy"}} {
		if err := writeKubeconfigFiles(k.path, local, ca, f.p(k.name+".crt"), f.p(k.name+".key")); err != nil {
			return nil, err
		}
	}
	return &joined{lb: lb, sc: sc, c: c, kubeletKC: kubeletKC, proxyKC: proxyKC}, nil
}
