package launcher

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// The supervisor mirrors K3s's: kube-apiserver listens on 127.0.0.1:6444
// (K3s: pkg/daemons/control/server.go, APIServerPort, bind-address
// loopback) and K3s's own listener on 6443 (pkg/cluster/https.go) serves the
// supervisor endpoints of pkg/server/handlers/router.go and hands every
// other request to the API server. K3s runs the API server in-process and
// gives it the request; the stand-in runs kube-apiserver as a child, so it
// forwards the request: a client that authenticated with a certificate of
// the cluster CA is forwarded with its identity in the API server's
// request-header authentication (X-Remote-User / X-Remote-Group, sent with
// the system:auth-proxy client certificate, the way K3s's own aggregation
// proxy authenticates), any other request is forwarded as it came (bearer
// tokens — service-account and bootstrap tokens — are checked by the API
// server itself).

// Ports of K3s's server: the supervisor (HTTPSPort) and the API server
// behind it (APIServerPort in K3s's config.Control).
const (
	SupervisorPort    = 6443
	APIServerBackPort = 6444
)

// Groups K3s's supervisor routes ask for (pkg/server/handlers/router.go;
// the passwd users of pkg/daemons/control/deps/deps.go).
const (
	groupAgent        = "k3s:agent"
	groupServer       = "k3s:server"
	groupNodes        = "system:nodes"
	groupBootstrap    = "system:bootstrappers"
	authProxyName     = "system:auth-proxy"
	nodeNameHeader    = "K3s-Node-Name"
	nodePassHeader    = "K3s-Node-Password"
	nodeIPHeader      = "K3s-Node-IP"
	supervisorPrefix  = "/v1-k3s/"
	remoteUserHeader  = "X-Remote-User"
	remoteGroupHeader = "X-Remote-Group"
)

// SupervisorConfig is what /v1-k3s/config sends: the part of K3s's
// config.Control an agent reads, under K3s's JSON names.
type SupervisorConfig struct {
	ClusterDNS           string
	ClusterDomain        string
	ClusterIPRange       string
	ServiceIPRange       string
	ServiceNodePortRange string
	FlannelBackend       string
	DisableNPC           bool
	DisableKubeProxy     bool
}

// Supervisor serves K3s's supervisor endpoints and proxies the rest to the
// API server.
type Supervisor struct {
	// CA signs the node certificates and is what /cacerts returns (K3s
	// has a server CA and a client CA; the stand-in has one).
	CA *CACert
	// ServerPass and AgentPass are the passwords of the passwd users
	// "server" (group k3s:server) and "node" (group k3s:agent).
	ServerPass, AgentPass string
	// Client reads and writes kube-system Secrets (bootstrap tokens, node
	// passwords); nil answers 503 where it is needed, as K3s before its
	// core controllers run.
	Client kubernetes.Interface
	// Upstream is the API server (https://127.0.0.1:6444); ProxyCert is
	// the system:auth-proxy client certificate.
	Upstream  *url.URL
	ProxyCert *tls.Certificate
	// UpstreamCA verifies the API server's certificate (nil: CA).
	UpstreamCA *x509.Certificate
	// Config is what /v1-k3s/config returns; APIServers what
	// /v1-k3s/apiservers returns.
	Config     SupervisorConfig
	APIServers func(ctx context.Context) []string
	// Ready answers /v1-k3s/readyz (nil when the core is ready).
	Ready func(ctx context.Context) error
	// DBInfo answers /db/info and Bootstrap /v1-k3s/server-bootstrap,
	// both for the k3s:server role only (nil: 404, a server without
	// embedded etcd).
	DBInfo    func(ctx context.Context) EtcdMembers
	Bootstrap func() (map[string]BootstrapFile, error)
	Now       func() time.Time
	Logf      func(format string, args ...any)

	direct, asProxy http.RoundTripper
}

// CACert is a CA certificate with its key.
type CACert struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// identity is an authenticated requester.
type identity struct {
	name   string
	groups []string
	// cert: authenticated by a client certificate of the CA.
	cert bool
}

func (id identity) in(groups ...string) bool {
	for _, g := range groups {
		if slices.Contains(id.groups, g) {
			return true
		}
	}
	return false
}

// TLSConfig is the listener's configuration: the serving certificate and
// client certificates of the CA verified when given (K3s's listener asks
// for them the same way).
func (s *Supervisor) TLSConfig(serving tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Cert)
	return &tls.Config{
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// Handler routes as K3s's router: /cacerts and /ping unauthenticated, the
// /v1-k3s/ routes for k3s:agent, system:nodes or bootstrap-token users
// (the server-only routes the stand-in does not serve answer 404), the
// rest to the API server.
func (s *Supervisor) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logf == nil {
		s.Logf = func(string, ...any) {}
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Cert)
	if s.UpstreamCA != nil {
		pool = x509.NewCertPool()
		pool.AddCert(s.UpstreamCA)
	}
	base := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	s.direct = base
	withCert := base.Clone()
	withCert.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if s.ProxyCert != nil {
		withCert.TLSClientConfig.Certificates = []tls.Certificate{*s.ProxyCert}
	}
	s.asProxy = withCert
	mux := http.NewServeMux()
	mux.HandleFunc("/cacerts", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(s.CA.CertPEM)
	})
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("pong"))
	})
	mux.HandleFunc(supervisorPrefix, s.serveSupervisor)
	mux.HandleFunc("/db/info", s.serveDBInfo)
	mux.HandleFunc("/", s.proxy)
	return mux
}

func sendError(w http.ResponseWriter, code int, err error) {
	http.Error(w, err.Error(), code)
}

// serveSupervisor is the authed router of K3s's NewHandler.
func (s *Supervisor) serveSupervisor(w http.ResponseWriter, r *http.Request) {
	id, ok, err := s.authenticate(r)
	if err != nil {
		sendError(w, http.StatusUnauthorized, errors.New("not authorized"))
		return
	}
	if !ok || !id.in(groupAgent, groupNodes, groupBootstrap, groupServer) {
		// K3s: a user without one of the roles is forbidden.
		sendError(w, http.StatusForbidden, errors.New("forbidden"))
		return
	}
	switch strings.TrimPrefix(r.URL.Path, supervisorPrefix) {
	case "serving-kubelet.crt":
		s.servingKubeletCert(w, r, id)
	case "client-kubelet.crt":
		s.clientKubeletCert(w, r, id)
	case "client-kube-proxy.crt":
		s.signAndSend(w, r, certRequest{CommonName: "system:kube-proxy", Client: true})
	case "client-ca.crt", "server-ca.crt":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(s.CA.CertPEM)
	case "apiservers":
		var list []string
		if s.APIServers != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			list = s.APIServers(ctx)
			cancel()
		}
		if list == nil {
			list = []string{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	case "config":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Config)
	case "server-bootstrap":
		s.serveBootstrap(w, id)
	case "readyz":
		if s.Ready != nil {
			if err := s.Ready(r.Context()); err != nil {
				sendError(w, http.StatusServiceUnavailable, fmt.Errorf("runtime core not ready: %w", err))
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	default:
		http.NotFound(w, r)
	}
}

// serverOnly authenticates a request for a server-only route: the
// "server" user (the server token's passphrase); 404 when the route is
// not served.
func (s *Supervisor) serverOnly(w http.ResponseWriter, r *http.Request) bool {
	id, ok, err := s.authenticate(r)
	switch {
	case err != nil:
		sendError(w, http.StatusUnauthorized, errors.New("not authorized"))
		return false
	case !ok || !id.in(groupServer):
		sendError(w, http.StatusForbidden, errors.New("forbidden"))
		return false
	}
	return true
}

// serveDBInfo is K3s's /db/info: the etcd members, for a joining server.
func (s *Supervisor) serveDBInfo(w http.ResponseWriter, r *http.Request) {
	if s.DBInfo == nil {
		http.NotFound(w, r)
		return
	}
	if !s.serverOnly(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.DBInfo(ctx))
}

// serveBootstrap is K3s's /v1-k3s/server-bootstrap: the cluster's CA and
// service-account keys, for the k3s:server role only.
func (s *Supervisor) serveBootstrap(w http.ResponseWriter, id identity) {
	if s.Bootstrap == nil {
		sendError(w, http.StatusNotFound, errors.New("not found"))
		return
	}
	if !id.in(groupServer) || id.cert {
		sendError(w, http.StatusForbidden, errors.New("forbidden"))
		return
	}
	data, err := s.Bootstrap()
	if err != nil {
		sendError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(data)
}

// authenticate mirrors the authenticators of K3s's supervisor: HTTP basic
// auth of the passwd users "server" and "node", a bootstrap token
// (k8s.io/cluster-bootstrap) as the bearer token, or a client certificate
// of the cluster CA (user = CN, groups = O). A valid token wins over the
// certificate; the certificate serves when the token no longer does (K3s:
// docs/adrs/agent-join-token.md, a node rejoins with its Node identity
// after its token expired). ok is false when the request carries no
// credentials the supervisor knows.
func (s *Supervisor) authenticate(r *http.Request) (identity, bool, error) {
	var certID *identity
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		certID = &identity{name: c.Subject.CommonName, groups: c.Subject.Organization, cert: true}
	}
	id, ok, err := s.authenticateToken(r)
	if ok && err == nil {
		return id, true, nil
	}
	if certID != nil {
		return *certID, true, nil
	}
	return id, ok, err
}

func (s *Supervisor) authenticateToken(r *http.Request) (identity, bool, error) {
	if user, pass, ok := r.BasicAuth(); ok {
		switch {
		case user == "server" && s.ServerPass != "" && equal(pass, s.ServerPass):
			return identity{name: "server", groups: []string{groupServer}}, true, nil
		case user == "node" && s.AgentPass != "" && equal(pass, s.AgentPass):
			return identity{name: "node", groups: []string{groupAgent}}, true, nil
		}
		return identity{}, false, errors.New("invalid username or password")
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		id, err := s.bootstrapToken(r.Context(), tok)
		if err != nil {
			return identity{}, false, err
		}
		return id, true, nil
	}
	return identity{}, false, nil
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// bootstrapToken checks a bearer token against the kube-system Secret
// bootstrap-token-<id>, as Kubernetes's bootstrap token authenticator does
// (plugin/pkg/auth/authenticator/token/bootstrap), which K3s's supervisor
// uses: the secret of type bootstrap.kubernetes.io/token, the same
// token-secret, usage-bootstrap-authentication "true", not expired and not
// being deleted; the user is system:bootstrap:<id> in system:bootstrappers
// and the secret's auth-extra-groups.
func (s *Supervisor) bootstrapToken(ctx context.Context, token string) (identity, error) {
	id, secret, ok := ParseBootstrapToken(token)
	if !ok {
		return identity{}, errors.New("not a bootstrap token")
	}
	if s.Client == nil {
		return identity{}, errors.New("bootstrap tokens cannot be checked yet")
	}
	sec, err := s.Client.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id, metav1GetOptions())
	if err != nil {
		return identity{}, fmt.Errorf("bootstrap token %s: %w", id, err)
	}
	groups, err := CheckBootstrapSecret(sec, id, secret, s.Now())
	if err != nil {
		return identity{}, err
	}
	return identity{name: "system:bootstrap:" + id, groups: groups}, nil
}

// nodeAuth mirrors K3s's nodepassword.GetNodeAuthValidator: the node name
// and password headers are required; a node-identity certificate must be
// for the named node (and the Node must exist); the password must match
// the kube-system Secret <node>.node-password.k3s, which is made on first
// use.
func (s *Supervisor) nodeAuth(r *http.Request, id identity) (string, int, error) {
	name := strings.ToLower(r.Header.Get(nodeNameHeader))
	if name == "" {
		return "", http.StatusBadRequest, errors.New("node name not set")
	}
	pass := r.Header.Get(nodePassHeader)
	if pass == "" {
		return "", http.StatusBadRequest, errors.New("node password not set")
	}
	if n, isNode := strings.CutPrefix(id.name, "system:node:"); isNode && id.cert && id.in(groupNodes) {
		if n != name {
			return "", http.StatusBadRequest, errors.New("header node name does not match auth node name")
		}
		if s.Client != nil {
			if _, err := s.Client.CoreV1().Nodes().Get(r.Context(), n, metav1GetOptions()); err != nil {
				return "", http.StatusUnauthorized, fmt.Errorf("unable to verify node identity: %w", err)
			}
		}
	}
	if s.Client == nil {
		return "", http.StatusServiceUnavailable, errors.New("runtime core not ready")
	}
	if err := EnsureNodePassword(r.Context(), s.Client.CoreV1().Secrets("kube-system"), name, pass); err != nil {
		if errors.Is(err, ErrNodePasswordMismatch) {
			return "", http.StatusForbidden, err
		}
		return "", http.StatusInternalServerError, err
	}
	return name, http.StatusOK, nil
}

func (s *Supervisor) servingKubeletCert(w http.ResponseWriter, r *http.Request, id identity) {
	name, code, err := s.nodeAuth(r, id)
	if err != nil {
		s.Logf("supervisor: serving-kubelet.crt for %q refused: %s", r.Header.Get(nodeNameHeader), err)
		sendError(w, code, err)
		return
	}
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	if v := r.Header.Get(nodeIPHeader); v != "" {
		for _, a := range strings.Split(v, ",") {
			ip := net.ParseIP(a)
			if ip == nil {
				sendError(w, http.StatusInternalServerError, fmt.Errorf("invalid node IP address %s", a))
				return
			}
			ips = append(ips, ip)
		}
	}
	s.signAndSend(w, r, certRequest{CommonName: name, Server: true, DNSNames: []string{name, "localhost"}, IPs: ips})
}

func (s *Supervisor) clientKubeletCert(w http.ResponseWriter, r *http.Request, id identity) {
	name, code, err := s.nodeAuth(r, id)
	if err != nil {
		s.Logf("supervisor: client-kubelet.crt for %q refused: %s", r.Header.Get(nodeNameHeader), err)
		sendError(w, code, err)
		return
	}
	s.signAndSend(w, r, certRequest{CommonName: "system:node:" + name, Organization: []string{groupNodes}, Client: true})
}

// certRequest is one certificate the supervisor signs.
type certRequest struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Server       bool
	Client       bool
}

// signAndSend is K3s's: a POST whose body is a CSR gets a certificate for
// the CSR's key (the certificate and CA follow); any other request gets a
// certificate for a key made here, and the key after it (K3s sends a
// shared key; the stand-in makes one per request).
func (s *Supervisor) signAndSend(w http.ResponseWriter, r *http.Request, req certRequest) {
	var pub crypto.PublicKey
	var keyPEM []byte
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			if csr, err := x509.ParseCertificateRequest(body); err == nil && csr.CheckSignature() == nil {
				pub = csr.PublicKey
			}
		}
	}
	if pub == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			sendError(w, http.StatusInternalServerError, err)
			return
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			sendError(w, http.StatusInternalServerError, err)
			return
		}
		pub, keyPEM = k.Public(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	der, err := s.sign(req, pub)
	if err != nil {
		sendError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	_, _ = w.Write(s.CA.CertPEM)
	_, _ = w.Write(keyPEM)
}

func (s *Supervisor) sign(req certRequest, pub crypto.PublicKey) ([]byte, error) {
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	now := s.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organization},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     s.CA.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
	}
	if req.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.CA.Cert, pub, s.CA.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", req.CommonName, err)
	}
	return der, nil
}

// proxy hands a request to the API server (K3s's APIServer handler).
func (s *Supervisor) proxy(w http.ResponseWriter, r *http.Request) {
	// Identity headers never come from the client.
	for k := range r.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Remote-") {
			r.Header.Del(k)
		}
	}
	transport := s.direct
	var id identity
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		id = identity{name: c.Subject.CommonName, groups: c.Subject.Organization, cert: true}
		transport = s.asProxy
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(s.Upstream)
			pr.Out.Host = s.Upstream.Host
			if id.cert {
				pr.Out.Header.Del("Authorization")
				pr.Out.Header.Set(remoteUserHeader, id.name)
				for _, g := range id.groups {
					pr.Out.Header.Add(remoteGroupHeader, g)
				}
			}
			// Not a forwarding proxy for the API server's audit: no
			// X-Forwarded-* headers.
			pr.Out.Header.Del("X-Forwarded-For")
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			sendError(w, http.StatusServiceUnavailable, fmt.Errorf("apiserver not ready: %w", err))
		},
	}
	rp.ServeHTTP(w, r)
}
