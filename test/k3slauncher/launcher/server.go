package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tpctl/tpctl/test/cluster"
)

// Ports K3s's server uses; the launcher keeps them. APIServerPort is the
// port clients use: the supervisor's, which hands API requests to
// kube-apiserver on 127.0.0.1:6444 (supervisor.go).
const (
	APIServerPort = SupervisorPort
	kineAddr      = "127.0.0.1:2379"
)

// Server runs one K3s-like server node from the upstream components.
type Server struct {
	Config Config
	// Components is the directory of the component binaries
	// (<name>-<version>, as scripts/test-deps builds them).
	Components string
	// Log receives the launcher's and the components' output.
	Log io.Writer
	// Notify sends a state to systemd (sd_notify); nil outside a unit.
	Notify func(state string) error
	// Kubeconfig is where the admin kubeconfig goes (KubeconfigPath).
	Kubeconfig string

	// etcd is the embedded-etcd datastore (nil: kine on SQLite).
	etcd *serverEtcd
}

func (s *Server) logf(format string, args ...any) {
	fmt.Fprintf(s.Log, "launcher: "+format+"\n", args...)
}

// Run starts the node, tells systemd READY=1 once the API server answers
// /readyz (as K3s does; the node becomes Ready later), and runs until ctx
// ends (SIGTERM) or a component exits; it then stops the components in
// StopOrder. Pods and containerd's shims are left running.
func (s *Server) Run(ctx context.Context) (err error) {
	c := s.Config
	l := Layout{Data: c.DataDir}
	begin := time.Now()
	bins, err := cluster.Binaries{Dir: s.Components, Versions: cluster.PinnedVersions()}.Require(
		"kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
	if err != nil {
		return fmt.Errorf("component binaries (this launcher runs the upstream binaries from %s): %w", s.Components, err)
	}
	ctrd, err := containerdPaths(s.Components)
	if err != nil {
		return err
	}
	for n, p := range ctrd {
		bins[n] = p
	}
	useEtcd := EtcdMode(c)
	if useEtcd {
		if bins["etcd"], err = etcdPath(s.Components); err != nil {
			return err
		}
	}
	if bins, err = installComponents(l, bins); err != nil {
		return err
	}
	// As K3s, put the bin directory first in PATH: containerd finds its
	// runc shim there.
	if err := os.Setenv("PATH", l.BinDir()+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return fmt.Errorf("set PATH: %w", err)
	}
	nodeIP := c.NodeIP
	if nodeIP == "" {
		if nodeIP, err = defaultRouteIPv4(); err != nil {
			return fmt.Errorf("node-ip is not set and cannot be found: %w", err)
		}
	}
	s.hostSettings()

	// A joining server takes the cluster's CA, service-account keys and
	// token from the server it joins before anything else (K3s:
	// pkg/cluster/bootstrap.go).
	var joinCA []byte
	if c.JoinURL != nil && !l.EtcdInitialized() {
		if joinCA, err = fetchServerBootstrap(ctx, l, c.JoinURL.String(), c.JoinToken); err != nil {
			return err
		}
	}
	p, err := loadOrCreatePKI(l.TLSDir())
	if err != nil {
		return err
	}
	// As K3s: a token at the first start, and a datastore that was
	// bootstrapped with another token is refused.
	pass, err := ensureToken(l, p.ca.CertPEM)
	if err != nil {
		return err
	}
	if err := writeAgentToken(l, p.ca.CertPEM, pass); err != nil {
		return err
	}
	if !useEtcd {
		if err := checkBootstrap(ctx, l.DBFile(), pass); err != nil {
			return err
		}
	}
	creds, err := s.credentials(p, nodeIP)
	if err != nil {
		return err
	}
	cfg, tmpl, err := ContainerdConfig(l, PauseImage)
	if err != nil {
		return err
	}
	if tmpl != "" {
		s.logf("containerd config rendered from %s", tmpl)
	}
	if err := writeFileAtomic(filepath.Join(l.ContainerdDir(), "config.toml"), cfg, 0o600); err != nil {
		return err
	}
	if c.FlannelBackend != "none" && !useEtcd {
		if err := writeFileAtomic(filepath.Join(l.CNIConfDir(), "10-flannel.conflist"), []byte(cniConfig(c)), 0o644); err != nil {
			return err
		}
	} else {
		s.logf("flannel-backend none: no CNI network; the node stays NotReady until one is installed")
	}
	for _, d := range []string{filepath.Dir(l.DBFile()), ContainerdState, l.ImagesDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
	}

	lw := lineWriter{mu: &sync.Mutex{}, out: s.Log}
	kids := newChildren()
	defer func() {
		s.logf("stopping components (%s)", stageNames())
		kids.stopAll()
		s.logf("stopped")
	}()
	start := func(name string, args ...string) error {
		ch, err := startChild(lw, name, bins[name], args, l.path("server"))
		if err != nil {
			return err
		}
		kids.add(ch)
		return nil
	}
	if err := os.MkdirAll(l.path("server"), 0o700); err != nil {
		return fmt.Errorf("make server dir: %w", err)
	}
	datastore := []string{"--etcd-servers=http://" + kineAddr}
	if !useEtcd {
		if err := start("kine", "--listen-address="+kineAddr, "--metrics-bind-address=0",
			"--endpoint=sqlite://"+l.DBFile()+"?_journal=WAL&cache=shared&_busy_timeout=30000"); err != nil {
			return err
		}
	}
	if err := start("containerd", "--config", filepath.Join(l.ContainerdDir(), "config.toml")); err != nil {
		return err
	}
	if useEtcd {
		if s.etcd, err = s.startEtcd(ctx, kids, lw, bins, p, nodeIP, pass, joinCA); err != nil {
			return err
		}
		datastore = s.etcd.apiserverArgs()
	} else if err := s.waitFor(ctx, kids, "kine", func(ctx context.Context) error { return dial(ctx, "tcp", kineAddr) }); err != nil {
		return err
	}
	if err := start("kube-apiserver", s.apiserverArgs(p, creds, nodeIP, datastore)...); err != nil {
		return err
	}
	sup, err := s.startSupervisor(p, creds, pass)
	if err != nil {
		return err
	}
	defer sup.Close()
	if err := s.waitFor(ctx, kids, "containerd", func(ctx context.Context) error { return dial(ctx, "unix", ContainerdSocket) }); err != nil {
		return err
	}
	images := newAirGap(l.ImagesDir(), CtrImport(bins["ctr"], ContainerdSocket), s.logf)
	if err := images.importAtStart(ctx); err != nil {
		return err
	}
	kubeletArgs, err := s.kubeletArgs(creds, nodeIP)
	if err != nil {
		return err
	}
	if err := start("kubelet", kubeletArgs...); err != nil {
		return err
	}
	proxyCfg := filepath.Join(c.DataDir, "agent", "etc", "kube-proxy.yaml")
	if err := writeFileAtomic(proxyCfg, []byte(kubeProxyConfig(c, nodeIP, creds.proxy)), 0o600); err != nil {
		return err
	}
	if err := start("kube-proxy", "--config="+proxyCfg); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(creds.admin)
	if err != nil {
		return fmt.Errorf("make client: %w", err)
	}
	if err := s.waitFor(ctx, kids, "API server /readyz", func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		return err //nolint:wrapcheck // polled
	}); err != nil {
		return err
	}
	s.logf("API server ready after %s", time.Since(begin).Round(time.Millisecond))
	// K3s tells systemd READY=1 once the API server answers /readyz; the
	// node, its network and the packaged components come later.
	if s.Notify != nil {
		if err := s.Notify("READY=1"); err != nil {
			return fmt.Errorf("notify systemd: %w", err)
		}
	}
	// The controller manager and scheduler exit when RBAC is not
	// bootstrapped yet: they start once /readyz (which waits for it) passes.
	if err := start("kube-controller-manager", s.leaderElect(s.controllerManagerArgs(p, creds))...); err != nil {
		return err
	}
	if err := start("kube-scheduler", s.leaderElect(componentAuth(creds.scheduler, 10259))...); err != nil {
		return err
	}
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
	}()
	// The kubernetes Endpoints it keeps are a deprecated API: no warning
	// in the log at every check.
	quiet := rest.CopyConfig(creds.backend)
	quiet.WarningHandler = rest.NoWarnings{}
	backend, err := kubernetes.NewForConfig(quiet)
	if err != nil {
		return fmt.Errorf("make client: %w", err)
	}
	jobs := append(s.backgroundJobs(cs, begin), images.watch, s.supervisorJobs(backend, nodeIP))
	if useEtcd && c.FlannelBackend != "none" {
		jobs = append(jobs, func(ctx context.Context) { s.retry(ctx, "node "+c.NodeName+" podCIDR", s.podNetwork(cs)) })
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
		s.logf("asked to stop")
		return nil
	case ch := <-kids.exit:
		return fmt.Errorf("%s exited: %w", ch.name, errors.Join(ch.waitErr, errors.New("component ended")))
	}
}

// backgroundJobs run after READY=1 until the server stops, as K3s's
// controllers do: the packaged components, the service load balancer and a
// log line when the node becomes Ready (the air-gap image watcher runs
// beside them).
func (s *Server) backgroundJobs(cs kubernetes.Interface, begin time.Time) []func(context.Context) {
	c := s.Config
	jobs := []func(context.Context){
		func(ctx context.Context) {
			if s.retry(ctx, "node "+c.NodeName+" Ready", func(ctx context.Context) error { return nodeReady(ctx, cs, c.NodeName) }) {
				s.logf("node %s Ready after %s", c.NodeName, time.Since(begin).Round(time.Millisecond))
			}
		},
	}
	if !c.Disabled("coredns") {
		jobs = append(jobs, func(ctx context.Context) {
			s.retry(ctx, "CoreDNS add-on", func(ctx context.Context) error { return deployCoreDNS(ctx, cs, c) })
		})
	}
	if !c.Disabled("traefik") {
		jobs = append(jobs, func(ctx context.Context) {
			s.retry(ctx, "Traefik add-on", func(ctx context.Context) error { return deployTraefik(ctx, cs) })
		})
	}
	if !c.Disabled("metrics-server") {
		jobs = append(jobs, func(ctx context.Context) {
			s.retry(ctx, "metrics-server add-on", func(ctx context.Context) error { return deployMetricsServer(ctx, cs) })
		})
	}
	if !c.Disabled("local-storage") {
		l := Layout{Data: c.DataDir}
		jobs = append(jobs, func(ctx context.Context) {
			s.retry(ctx, "local-storage add-on", func(ctx context.Context) error { return deployLocalStorage(ctx, cs, l) })
		})
	}
	if !c.Disabled("servicelb") {
		lb := &serviceLB{cs: cs, image: ServiceLBImage, logf: s.logf}
		jobs = append(jobs, func(ctx context.Context) {
			// A failure (the caches did not sync) starts the controller
			// again, as long as the server runs.
			s.retry(ctx, "service load balancer", lb.run)
		})
	}
	return jobs
}

// retry calls fn until it succeeds (true) or ctx ends (false), logging the
// last error now and then.
func (s *Server) retry(ctx context.Context, what string, fn func(context.Context) error) bool {
	begin, told := time.Now(), time.Now()
	for {
		err := fn(ctx)
		if err == nil {
			return true
		}
		if time.Since(told) > 15*time.Second {
			s.logf("still waiting for %s after %s: %s", what, time.Since(begin).Round(time.Second), err)
			told = time.Now()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func stageNames() string {
	var parts []string
	for _, st := range StopOrder() {
		parts = append(parts, strings.Join(st, "+"))
	}
	return strings.Join(parts, " → ")
}

// hostSettings sets the sysctls a node needs, as K3s does; failures are
// logged (a container may not allow them).
func (s *Server) hostSettings() {
	for _, kv := range [][2]string{{"net/ipv4/ip_forward", "1"}, {"net/bridge/bridge-nf-call-iptables", "1"}} {
		if err := os.WriteFile(filepath.Join("/proc/sys", kv[0]), []byte(kv[1]+"\n"), 0o644); err != nil {
			s.logf("warning: set %s=%s: %s", kv[0], kv[1], err)
		}
	}
}

// waitFor polls cond until it succeeds, ctx ends or a component exits.
func (s *Server) waitFor(ctx context.Context, kids *children, what string, cond func(context.Context) error) error {
	var last error
	begin, told := time.Now(), time.Now()
	for {
		if last = cond(ctx); last == nil {
			return nil
		}
		if time.Since(told) > 15*time.Second {
			s.logf("still waiting for %s after %s: %s", what, time.Since(begin).Round(time.Second), last)
			told = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %w)", what, ctx.Err(), last)
		case ch := <-kids.exit:
			return fmt.Errorf("wait for %s: %s exited: %w", what, ch.name, errors.Join(ch.waitErr, errors.New("component ended")))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func dial(ctx context.Context, network, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn.Close()
}

func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s not Ready: %s: %s", name, c.Reason, c.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}

// defaultRouteIPv4 is the IPv4 address of the interface of the default
// route, as K3s picks the node address.
func defaultRouteIPv4() (string, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", fmt.Errorf("read /proc/net/route: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "00000000" {
			continue
		}
		ifc, err := net.InterfaceByName(f[0])
		if err != nil {
			return "", fmt.Errorf("interface %s: %w", f[0], err)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return "", fmt.Errorf("addresses of %s: %w", f[0], err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no default IPv4 route")
}

// credentials are the components' kubeconfig paths and the admin client
// (through the supervisor, as a user's), and the admin client of the API
// server itself (backend, as K3s's own controllers).
type credentials struct {
	apiserverServing, kubeletClient, kubeletServing cluster.KeyPair
	authProxy                                       cluster.KeyPair
	controllerManager, scheduler, kubelet, proxy    string
	admin, backend                                  *rest.Config
}

// credentials issues this start's certificates and writes the kubeconfigs:
// the components' into <data-dir>/server/cred, the admin's where K3s puts
// it (with write-kubeconfig-mode).
func (s *Server) credentials(p *pki, nodeIP string) (*credentials, error) {
	c := s.Config
	cr := &credentials{}
	ips, names := apiserverSANs(c, nodeIP)
	var err error
	if cr.apiserverServing, err = p.issue("serving-kube-apiserver", cluster.CertSpec{
		CommonName: "kube-apiserver", Server: true, IPs: ips, DNSNames: names}); err != nil {
		return nil, err
	}
	if cr.kubeletClient, err = p.issue("client-kube-apiserver", cluster.CertSpec{
		CommonName: "system:kube-apiserver", Organization: []string{"system:masters"}, Client: true}); err != nil {
		return nil, err
	}
	if cr.kubeletServing, err = p.issue("serving-kubelet", cluster.CertSpec{
		CommonName: c.NodeName, Server: true, IPs: []net.IP{net.ParseIP(nodeIP), net.ParseIP("127.0.0.1")}, DNSNames: []string{c.NodeName, "localhost"}}); err != nil {
		return nil, err
	}
	if cr.authProxy, err = p.issue("client-auth-proxy", cluster.CertSpec{CommonName: authProxyName, Client: true}); err != nil {
		return nil, err
	}
	// As K3s: the controller manager and scheduler use the API server's
	// own port, the node's kubelet and kube-proxy the supervisor's.
	local := "https://127.0.0.1:" + strconv.Itoa(APIServerPort)
	back := "https://127.0.0.1:" + strconv.Itoa(APIServerBackPort)
	credDir := Layout{Data: c.DataDir}.CredDir()
	kc := func(name, server string, spec cluster.CertSpec) (string, error) {
		spec.Client = true
		kp, err := p.issue("client-"+name, spec)
		if err != nil {
			return "", err
		}
		path := filepath.Join(credDir, name+".kubeconfig")
		return path, writeKubeconfig(path, server, p.ca.CertPEM, kp, 0o600)
	}
	if cr.controllerManager, err = kc("controller", back, cluster.CertSpec{CommonName: "system:kube-controller-manager"}); err != nil {
		return nil, err
	}
	if cr.scheduler, err = kc("scheduler", back, cluster.CertSpec{CommonName: "system:kube-scheduler"}); err != nil {
		return nil, err
	}
	if cr.kubelet, err = kc("kubelet", local, cluster.CertSpec{CommonName: "system:node:" + c.NodeName, Organization: []string{"system:nodes"}}); err != nil {
		return nil, err
	}
	if cr.proxy, err = kc("kube-proxy", local, cluster.CertSpec{CommonName: "system:kube-proxy"}); err != nil {
		return nil, err
	}
	admin, err := p.issue("client-admin", cluster.CertSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		return nil, err
	}
	if err := writeKubeconfig(s.Kubeconfig, local, p.ca.CertPEM, admin, c.WriteKubeconfigMode); err != nil {
		return nil, err
	}
	cr.admin = &rest.Config{Host: local, TLSClientConfig: rest.TLSClientConfig{CAData: p.ca.CertPEM, CertData: admin.CertPEM, KeyData: admin.KeyPEM}}
	cr.backend = rest.CopyConfig(cr.admin)
	cr.backend.Host = back
	return cr, nil
}

func (s *Server) apiserverArgs(p *pki, cr *credentials, nodeIP string, datastore []string) []string {
	c := s.Config
	return append(datastore,
		// K3s: loopback:6444, behind the supervisor on 6443.
		"--bind-address=127.0.0.1",
		"--advertise-address="+nodeIP,
		"--secure-port="+strconv.Itoa(APIServerBackPort),
		"--endpoint-reconciler-type=none",
		"--enable-bootstrap-token-auth=true",
		"--requestheader-client-ca-file="+p.ca.CertFile,
		"--requestheader-allowed-names="+authProxyName,
		"--requestheader-username-headers="+remoteUserHeader,
		"--requestheader-group-headers="+remoteGroupHeader,
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--tls-cert-file="+cr.apiserverServing.CertFile,
		"--tls-private-key-file="+cr.apiserverServing.KeyFile,
		"--client-ca-file="+p.ca.CertFile,
		"--kubelet-client-certificate="+cr.kubeletClient.CertFile,
		"--kubelet-client-key="+cr.kubeletClient.KeyFile,
		"--kubelet-certificate-authority="+p.ca.CertFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saPub,
		"--service-account-signing-key-file="+p.saKey,
		"--service-cluster-ip-range="+c.ServiceCIDR.String(),
		"--service-node-port-range="+c.ServiceNodePortRange,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--anonymous-auth=false",
		"--profiling=false",
	)
}

// componentAuth are the flags shared by the controller manager and the
// scheduler: one kubeconfig for everything, loopback, no leader election.
func componentAuth(kubeconfig string, port int) []string {
	return []string{"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--leader-elect=false", "--profiling=false"}
}

// leaderElect turns leader election on with embedded etcd, as K3s does
// for every server but a lone one on SQLite (NoLeaderElect).
func (s *Server) leaderElect(args []string) []string {
	if s.etcd == nil {
		return args
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a == "--leader-elect=false" {
			a = "--leader-elect=true"
		}
		out = append(out, a)
	}
	return out
}

func (s *Server) controllerManagerArgs(p *pki, cr *credentials) []string {
	c := s.Config
	caKey := filepath.Join(p.dir, "ca.key")
	return append(componentAuth(cr.controllerManager, 10257),
		"--service-account-private-key-file="+p.saKey,
		"--root-ca-file="+p.ca.CertFile,
		"--cluster-signing-cert-file="+p.ca.CertFile,
		"--cluster-signing-key-file="+caKey,
		"--use-service-account-credentials=true",
		"--allocate-node-cidrs=true",
		"--cluster-cidr="+c.ClusterCIDR.String(),
		"--node-cidr-mask-size=24",
		"--configure-cloud-routes=false",
		"--cluster-name=k3s",
		// K3s enables the bootstrap token cleaner (k3s token create --ttl).
		"--controllers=*,tokencleaner",
		"--service-cluster-ip-range="+c.ServiceCIDR.String(),
	)
}

// kubeletArgs: the config file, credentials and node identity, then the
// kubelet-arg entries as flags (they win over the file, as in K3s).
func (s *Server) kubeletArgs(cr *credentials, nodeIP string) ([]string, error) {
	c := s.Config
	l := Layout{Data: c.DataDir}
	cfg := filepath.Join(c.DataDir, "agent", "etc", "kubelet.yaml")
	if err := writeFileAtomic(cfg, []byte(kubeletConfig(c, nodeIP, filepath.Join(l.TLSDir(), "ca.crt"),
		cr.kubeletServing.CertFile, cr.kubeletServing.KeyFile)), 0o600); err != nil {
		return nil, err
	}
	args := []string{
		"--config=" + cfg,
		"--kubeconfig=" + cr.kubelet,
		"--root-dir=" + KubeletRootDir,
		"--cert-dir=" + l.path("agent", "kubelet-pki"),
		"--node-ip=" + nodeIP,
		"--hostname-override=" + c.NodeName,
	}
	for _, a := range c.KubeletArgs {
		args = append(args, "--"+a)
	}
	return args, nil
}
