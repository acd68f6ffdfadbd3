package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ServiceCIDR is the Service IP range of every harness; the first address is
// the kubernetes Service.
const ServiceCIDR = "10.96.0.0/16"

// ControlPlane is kine (SQLite) plus kube-apiserver: the API without nodes.
// It binds 127.0.0.1 on free ports, so several run side by side and none
// clashes with a Node.
type ControlPlane struct {
	dir        string
	procs      *group
	apiBin     string
	apiArgs    []string
	admin      credential
	kubeconfig string
	started    time.Duration
	closeOnce  sync.Once
	closeErr   error
}

// ControlPlaneOptions tune a ControlPlane; the zero value is ready to use.
type ControlPlaneOptions struct {
	// Binaries defaults to FindBinaries().
	Binaries *Binaries
	// APIServerArgs are appended to kube-apiserver's flags (e.g. feature gates).
	APIServerArgs []string
}

// StartControlPlane starts a ControlPlane for the test and stops it in
// t.Cleanup; component logs go to the test log when the test failed.
func StartControlPlane(ctx context.Context, t testing.TB, opts ...ControlPlaneOptions) *ControlPlane {
	t.Helper()
	var o ControlPlaneOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	cp, err := NewControlPlane(ctx, o)
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(cp.Logs(40))
		}
		begin := time.Now()
		if err := cp.Close(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
		t.Logf("control plane stopped in %s", time.Since(begin).Round(time.Millisecond))
	})
	t.Logf("control plane up in %s at %s", cp.started.Round(time.Millisecond), cp.admin.server)
	return cp
}

// NewControlPlane starts a ControlPlane; the caller must Close it. This is the
// form for TestMain, which has no *testing.T.
func NewControlPlane(ctx context.Context, opts ControlPlaneOptions) (_ *ControlPlane, err error) {
	begin := time.Now()
	bins, err := resolveBinaries(opts.Binaries)
	if err != nil {
		return nil, err
	}
	paths, err := bins.Require("kine", "kube-apiserver")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tpctl-cp-")
	if err != nil {
		return nil, fmt.Errorf("make control plane dir: %w", err)
	}
	cp := &ControlPlane{dir: dir, procs: &group{}}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, cp.Logs(40))
			_ = cp.Close()
		}
	}()
	ports, err := freePorts("127.0.0.1", 2)
	if err != nil {
		return nil, err
	}
	pki, err := newAPIServerPKI(filepath.Join(dir, "pki"), []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	kineAddr := hostPort("127.0.0.1", ports[0])
	if err := startKine(cp.procs, dir, paths["kine"], kineAddr); err != nil {
		return nil, err
	}
	args := apiserverArgs(pki, apiserverConfig{
		bind: "127.0.0.1", port: ports[1], etcd: "http://" + kineAddr,
		authorization: "RBAC", extra: append([]string{"--endpoint-reconciler-type=none"}, opts.APIServerArgs...),
	})
	if err := waitUntil(ctx, cp.procs, "kine", tcpReady(kineAddr)); err != nil {
		return nil, err
	}
	cp.apiBin, cp.apiArgs = paths["kube-apiserver"], args
	p, err := startProcess("kube-apiserver", dir, paths["kube-apiserver"], args, nil)
	if err != nil {
		return nil, err
	}
	cp.procs.add(p)
	cp.admin = pki.admin(hostPort("127.0.0.1", ports[1]))
	if err := waitAPIReady(ctx, cp.procs, cp.admin.restConfig()); err != nil {
		return nil, err
	}
	cp.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := cp.admin.writeKubeconfig(cp.kubeconfig, "admin"); err != nil {
		return nil, err
	}
	cp.started = time.Since(begin)
	return cp, nil
}

func resolveBinaries(b *Binaries) (Binaries, error) {
	if b != nil {
		return *b, nil
	}
	return FindBinaries()
}

// Kubeconfig returns the path of an admin kubeconfig (0600).
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// RESTConfig returns a fresh admin client configuration.
func (cp *ControlPlane) RESTConfig() *rest.Config { return cp.admin.restConfig() }

// URL is the API server's address.
func (cp *ControlPlane) URL() string { return cp.admin.server }

// StartupTime is how long NewControlPlane took.
func (cp *ControlPlane) StartupTime() time.Duration { return cp.started }

// Logs returns the last lines of every component's log.
func (cp *ControlPlane) Logs(lines int) string {
	var b strings.Builder
	cp.procs.dumpLogs(&b, lines)
	return b.String()
}

// DumpLogs writes the last lines of every component's log to w.
func (cp *ControlPlane) DumpLogs(w io.Writer, lines int) { cp.procs.dumpLogs(w, lines) }

// StopAPIServer stops kube-apiserver, as a restarting K3s does; kine and
// its data stay. StartAPIServer brings it back.
func (cp *ControlPlane) StopAPIServer() {
	cp.procs.stop(10*time.Second, "kube-apiserver")
	cp.procs.remove("kube-apiserver")
}

// StartAPIServer starts kube-apiserver again on the same address with the
// same certificates and waits until it serves.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	p, err := startProcess("kube-apiserver", cp.dir, cp.apiBin, cp.apiArgs, nil)
	if err != nil {
		return err
	}
	cp.procs.add(p)
	return waitAPIReady(ctx, cp.procs, cp.admin.restConfig())
}

// Close stops the API server, then kine, and removes the harness directory.
func (cp *ControlPlane) Close() error {
	cp.closeOnce.Do(func() {
		cp.procs.stop(10*time.Second, "kube-apiserver")
		cp.procs.stop(5 * time.Second)
		if err := os.RemoveAll(cp.dir); err != nil {
			cp.closeErr = fmt.Errorf("remove %s: %w", cp.dir, err)
		}
	})
	return cp.closeErr
}

func startKine(g *group, dir, bin, addr string) error {
	db := filepath.Join(dir, "kine", "state.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		return fmt.Errorf("make kine dir: %w", err)
	}
	p, err := startProcess("kine", dir, bin, []string{
		"--listen-address=" + addr,
		"--endpoint=sqlite://" + db + "?_journal=WAL&cache=shared&_busy_timeout=30000",
		"--metrics-bind-address=0",
	}, nil)
	if err != nil {
		return err
	}
	g.add(p)
	return nil
}

// apiserverPKI holds the certificates kube-apiserver and its clients use.
type apiserverPKI struct {
	dir              string
	ca               *CA
	serving, kubelet KeyPair
	adminKP          KeyPair
	saKey, saPub     string
}

// newAPIServerPKI makes the CA, the serving certificate (SANs: the IPs, the
// first Service IP, the kubernetes.default names), the API server→kubelet
// client certificate, the admin client certificate and the service-account keys.
func newAPIServerPKI(dir string, ips []net.IP) (*apiserverPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make pki dir: %w", err)
	}
	ca, err := NewCA(dir)
	if err != nil {
		return nil, err
	}
	p := &apiserverPKI{dir: dir, ca: ca}
	sans := append([]net.IP{net.ParseIP("10.96.0.1")}, ips...)
	if p.serving, err = ca.Issue(dir, "apiserver", CertSpec{
		CommonName: "kube-apiserver", Server: true, IPs: sans,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}); err != nil {
		return nil, err
	}
	if p.kubelet, err = ca.Issue(dir, "apiserver-kubelet-client", CertSpec{
		CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true,
	}); err != nil {
		return nil, err
	}
	if p.adminKP, err = ca.Issue(dir, "admin", CertSpec{
		CommonName: "tpctl-test-admin", Organization: []string{"system:masters"}, Client: true,
	}); err != nil {
		return nil, err
	}
	if p.saKey, p.saPub, err = WriteServiceAccountKeys(dir); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *apiserverPKI) admin(server string) credential {
	return credential{server: "https://" + server, ca: p.ca.CertPEM, kp: p.adminKP}
}

// client issues a client certificate for a component and returns its credential.
func (p *apiserverPKI) client(server, name string, spec CertSpec) (credential, error) {
	spec.Client = true
	kp, err := p.ca.Issue(p.dir, name, spec)
	if err != nil {
		return credential{}, err
	}
	return credential{server: "https://" + server, ca: p.ca.CertPEM, kp: kp}, nil
}

type apiserverConfig struct {
	bind, advertise string
	port            int
	etcd            string
	authorization   string
	extra           []string
}

func apiserverArgs(p *apiserverPKI, c apiserverConfig) []string {
	advertise := c.advertise
	if advertise == "" {
		advertise = c.bind
	}
	args := []string{
		"--etcd-servers=" + c.etcd,
		"--bind-address=" + c.bind,
		"--advertise-address=" + advertise,
		"--secure-port=" + strconv.Itoa(c.port),
		"--tls-cert-file=" + p.serving.CertFile,
		"--tls-private-key-file=" + p.serving.KeyFile,
		"--client-ca-file=" + p.ca.CertFile,
		"--kubelet-client-certificate=" + p.kubelet.CertFile,
		"--kubelet-client-key=" + p.kubelet.KeyFile,
		"--kubelet-certificate-authority=" + p.ca.CertFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--authorization-mode=" + c.authorization,
		"--allow-privileged=true",
		"--profiling=false",
		"--anonymous-auth=false",
	}
	return append(args, c.extra...)
}

// waitAPIReady waits until /readyz answers ok.
func waitAPIReady(ctx context.Context, g *group, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("make client for %s: %w", cfg.Host, err)
	}
	return waitUntil(ctx, g, "kube-apiserver /readyz", func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		if err != nil {
			return fmt.Errorf("readyz: %w (%s)", err, body)
		}
		return nil
	})
}
