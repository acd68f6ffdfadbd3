package launcher

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// AgentTokenFile and NodeTokenFile are K3s's: server/agent-token
// ("K10<CA hash>::node:<passphrase>"; without an agent-token key the
// agent token's passphrase is the server token's) and server/node-token,
// a link to server/token kept for older scripts (K3s: pkg/server/server.go
// printTokens; pkg/daemons/control/deps/deps.go makes the passwd users
// "server" and "node" from the two).
func (l Layout) AgentTokenFile() string { return l.path("server", "agent-token") }

// NodeTokenFile is server/node-token.
func (l Layout) NodeTokenFile() string { return l.path("server", "node-token") }

func writeAgentToken(l Layout, caPEM []byte, pass string) error {
	sum := sha256.Sum256(caPEM)
	tok := "K10" + hex.EncodeToString(sum[:]) + "::node:" + pass + "\n"
	if b, err := os.ReadFile(l.AgentTokenFile()); err != nil || string(b) != tok {
		if err := writeFileAtomic(l.AgentTokenFile(), []byte(tok), 0o600); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(l.NodeTokenFile()); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink(l.TokenFile(), l.NodeTokenFile()); err != nil {
			return fmt.Errorf("link %s: %w", l.NodeTokenFile(), err)
		}
	}
	return nil
}

// supervisorServer is the running listener.
type supervisorServer struct {
	srv *http.Server
	wg  sync.WaitGroup
}

func (s *supervisorServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.srv.Close()
	s.wg.Wait()
}

// startSupervisor listens on 0.0.0.0:6443 (K3s binds every address) with
// the API server's serving certificate.
func (s *Server) startSupervisor(p *pki, cr *credentials, pass string) (*supervisorServer, error) {
	c := s.Config
	serving, err := tls.X509KeyPair(cr.apiserverServing.CertPEM, cr.apiserverServing.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("supervisor serving certificate: %w", err)
	}
	proxyCert, err := tls.X509KeyPair(cr.authProxy.CertPEM, cr.authProxy.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("auth-proxy certificate: %w", err)
	}
	backend, err := kubernetes.NewForConfig(cr.backend)
	if err != nil {
		return nil, fmt.Errorf("make client: %w", err)
	}
	up, err := url.Parse(cr.backend.Host)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", cr.backend.Host, err)
	}
	sup := &Supervisor{
		CA:         &CACert{Cert: p.ca.Cert, Key: p.ca.Key, CertPEM: p.ca.CertPEM},
		ServerPass: pass,
		AgentPass:  pass,
		Client:     backend,
		Upstream:   up,
		ProxyCert:  &proxyCert,
		Config:     supervisorConfigOf(c),
		APIServers: func(ctx context.Context) []string { return apiServerAddresses(ctx, backend) },
		Ready: func(ctx context.Context) error {
			_, err := backend.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err //nolint:wrapcheck // reported as is
		},
		Logf: s.logf,
	}
	if e := s.etcd; e != nil {
		sup.DBInfo = e.dbInfo
		sup.Bootstrap = func() (map[string]BootstrapFile, error) { return readBootstrap(p.dir) }
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(SupervisorPort))
	if err != nil {
		return nil, fmt.Errorf("supervisor: listen on %d: %w", SupervisorPort, err)
	}
	h := sup.Handler()
	out := &supervisorServer{srv: &http.Server{
		Handler:           h,
		TLSConfig:         sup.TLSConfig(serving),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          nil,
	}}
	out.wg.Add(1)
	go func() {
		defer out.wg.Done()
		if err := out.srv.Serve(tlsListener(ln, out.srv.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("supervisor: %s", err)
		}
	}()
	s.logf("supervisor listening on :%d, API server on 127.0.0.1:%d", SupervisorPort, APIServerBackPort)
	return out, nil
}

func tlsListener(ln net.Listener, cfg *tls.Config) net.Listener { return tls.NewListener(ln, cfg) }

// supervisorConfigOf is what an agent is told of the cluster.
func supervisorConfigOf(c Config) SupervisorConfig {
	return SupervisorConfig{
		ClusterDNS:           c.ClusterDNS.String(),
		ClusterDomain:        "cluster.local",
		ClusterIPRange:       c.ClusterCIDR.String(),
		ServiceIPRange:       c.ServiceCIDR.String(),
		ServiceNodePortRange: c.ServiceNodePortRange,
		FlannelBackend:       c.FlannelBackend,
		DisableNPC:           c.DisableNetworkPolicy,
	}
}

// apiServerAddresses is K3s's /v1-k3s/apiservers: the addresses of the
// kubernetes Service's EndpointSlices (host:port).
func apiServerAddresses(ctx context.Context, cs kubernetes.Interface) []string {
	list, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return nil
	}
	var out []string
	for _, sl := range list.Items {
		for _, p := range sl.Ports {
			if p.Port == nil {
				continue
			}
			for _, e := range sl.Endpoints {
				for _, a := range e.Addresses {
					out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	return out
}

// supervisorJobs are the server's controllers of the join: the
// kubernetes Service's endpoints, the node-password secrets' owners and
// the routes to other nodes' pods.
func (s *Server) supervisorJobs(cs kubernetes.Interface, nodeIP string) func(context.Context) {
	return func(ctx context.Context) {
		var wg sync.WaitGroup
		run := func(every time.Duration, what string, fn func(context.Context) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				loop(ctx, every, what, s.logf, fn)
			}()
		}
		run(5*time.Second, "kubernetes endpoints", func(ctx context.Context) error {
			addrs := []string{nodeIP}
			if s.etcd != nil {
				addrs = apiServerPeers(ctx, cs, nodeIP, SupervisorPort, answers)
			}
			return KubernetesEndpoints(ctx, cs, addrs, SupervisorPort)
		})
		if e := s.etcd; e != nil {
			run(5*time.Second, "etcd node metadata", func(ctx context.Context) error {
				return EtcdNodeMetadata(ctx, cs, s.Config.NodeName, e.name, nodeIP)
			})
		}
		run(5*time.Second, "node-password owners", func(ctx context.Context) error {
			return NodePasswordOwners(ctx, cs, time.Now())
		})
		if s.Config.FlannelBackend != "none" {
			rs := &routeSync{self: s.Config.NodeName, logf: s.logf, run: ipCommand}
			run(3*time.Second, "pod routes", func(ctx context.Context) error { return rs.sync(ctx, cs) })
		}
		wg.Wait()
	}
}
