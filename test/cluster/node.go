package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tpctl/tpctl/test/images"
)

// NodeOptions tune a Node; the zero value is ready to use.
type NodeOptions struct {
	// Binaries defaults to FindBinaries().
	Binaries *Binaries
	// NodeIP is the /32 address put on lo (default DefaultNodeIP).
	NodeIP string
	// LockPath defaults to DefaultLockPath.
	LockPath string
	// HostLock, when set, is a lock the caller already holds; the Node uses it
	// instead of taking its own and does not release it.
	HostLock *HostLock
	// Images are image tarballs imported before NewNode returns.
	Images []string
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
}

// NodeTimings are the durations measured during start and teardown.
type NodeTimings struct {
	APIReady  time.Duration // start → API server ready
	NodeReady time.Duration // start → node Ready
	Total     time.Duration // start → NewNode returned (DNS ready, images imported)
	Teardown  time.Duration // Close
}

// Node is a single-node Kubernetes on this host: kine, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy
// (iptables), bridge CNI and CoreDNS (a host process bound to the node
// address, behind the kube-dns Service). Only one runs per host at a time
// (HostLock); Close puts the host back as it found it.
type Node struct {
	layout     nodeLayout
	opts       NodeOptions
	procs      *group
	admin      credential
	kubeconfig string
	lock       *HostLock
	before     hostState
	timings    NodeTimings
	logf       func(string, ...any)
	closeOnce  sync.Once
	closeErr   error
}

// hostState is what the host looked like before the Node touched it.
type hostState struct {
	sysctls    map[string]string
	paths      map[string]bool
	mounts     map[string]bool
	links      map[string]bool
	nft        map[string]bool
	netns      map[string]bool
	aliasAdded bool
	kubepods   bool
}

// StartNode starts a Node for the test and tears it down in t.Cleanup;
// component logs go to the test log when the test failed. Needs root.
func StartNode(ctx context.Context, t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a node changes interfaces, iptables, mounts and cgroups")
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	n, err := NewNode(ctx, opts)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(n.Logs(60))
		}
		if err := n.Close(); err != nil {
			t.Errorf("tear down node: %v", err)
		}
		t.Logf("node torn down in %s", n.timings.Teardown.Round(time.Millisecond))
	})
	return n
}

// NewNode starts a Node; the caller must Close it (the form for TestMain).
func NewNode(ctx context.Context, opts NodeOptions) (_ *Node, err error) {
	begin := time.Now()
	if os.Geteuid() != 0 {
		return nil, errors.New("a node needs root")
	}
	bins, err := resolveBinaries(opts.Binaries)
	if err != nil {
		return nil, err
	}
	paths, err := bins.Require("kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
		"kubelet", "kube-proxy", "coredns", "containerd", "containerd-shim-runc-v2", "ctr")
	if err != nil {
		return nil, err
	}
	n := &Node{opts: opts, procs: &group{}, logf: opts.Logf}
	if n.logf == nil {
		n.logf = func(string, ...any) {}
	}
	n.layout.nodeIP = opts.NodeIP
	if n.layout.nodeIP == "" {
		n.layout.nodeIP = DefaultNodeIP
	}
	if net.ParseIP(n.layout.nodeIP).To4() == nil {
		return nil, fmt.Errorf("node IP %q is not an IPv4 address", n.layout.nodeIP)
	}
	if err := n.acquireLock(ctx); err != nil {
		return nil, err
	}
	if err := n.recoverStale(); err != nil {
		_ = n.releaseLock()
		return nil, err
	}
	if err := n.captureHost(ctx); err != nil {
		_ = n.releaseLock()
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, n.Logs(40))
			if cerr := n.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("teardown after failed start: %w", cerr))
			}
		}
	}()
	if n.layout.dir, err = os.MkdirTemp("", "tpctl-node-"); err != nil {
		return nil, fmt.Errorf("make node dir: %w", err)
	}
	l := &n.layout
	l.containerd = l.path("containerd", "containerd.sock")
	l.pauseRef = images.PauseRef
	if err := n.setupHost(ctx); err != nil {
		return nil, err
	}
	if err := n.saveState(); err != nil {
		return nil, err
	}
	if err := n.allocatePorts(); err != nil {
		return nil, err
	}
	pki, err := newAPIServerPKI(l.path("pki"), []net.IP{net.ParseIP(l.nodeIP), net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	apiAddr := hostPort(l.nodeIP, l.apiPort)
	n.admin = pki.admin(apiAddr)
	n.kubeconfig = l.path("admin.kubeconfig")
	if err := n.admin.writeKubeconfig(n.kubeconfig, "admin"); err != nil {
		return nil, err
	}

	// Datastore, container runtime and the pause image build in parallel.
	kineAddr := hostPort("127.0.0.1", l.kinePort)
	if err := startKine(n.procs, l.dir, paths["kine"], kineAddr); err != nil {
		return nil, err
	}
	if err := n.startContainerd(paths); err != nil {
		return nil, err
	}
	pauseTar := make(chan error, 1)
	var pausePath string
	go func() {
		var err error
		pausePath, err = images.Build(ctx, l.dir, images.Pause())
		pauseTar <- err
	}()
	if err := waitUntil(ctx, n.procs, "kine", tcpReady(kineAddr)); err != nil {
		return nil, err
	}
	if err := n.start("kube-apiserver", paths["kube-apiserver"], apiserverArgs(pki, apiserverConfig{
		bind: l.nodeIP, port: l.apiPort, etcd: "http://" + kineAddr, authorization: "Node,RBAC",
		// InternalIP: the node name must never go to the host's resolver.
		extra: []string{"--enable-admission-plugins=NodeRestriction", "--kubelet-preferred-address-types=InternalIP"},
	})); err != nil {
		return nil, err
	}
	if err := <-pauseTar; err != nil {
		return nil, fmt.Errorf("build pause image: %w", err)
	}
	if err := waitUntil(ctx, n.procs, "containerd", socketReady(l.containerd)); err != nil {
		return nil, err
	}
	if err := n.ImportImage(ctx, pausePath); err != nil {
		return nil, err
	}
	// The other components wait for the API server by themselves.
	dnsKC, startControllers, err := n.startNodeComponents(pki, paths)
	if err != nil {
		return nil, err
	}
	if err := waitAPIReady(ctx, n.procs, n.admin.restConfig()); err != nil {
		return nil, err
	}
	if err := startControllers(); err != nil {
		return nil, err
	}
	n.timings.APIReady = time.Since(begin)
	n.logf("node: API server ready after %s", n.timings.APIReady.Round(time.Millisecond))
	if err := n.startDNS(ctx, paths["coredns"], dnsKC); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(n.admin.restConfig())
	if err != nil {
		return nil, fmt.Errorf("make client: %w", err)
	}
	if err := waitUntil(ctx, n.procs, "node Ready", func(ctx context.Context) error { return nodeReady(ctx, cs) }); err != nil {
		return nil, err
	}
	n.timings.NodeReady = time.Since(begin)
	n.logf("node: Ready after %s", n.timings.NodeReady.Round(time.Millisecond))
	if err := waitUntil(ctx, n.procs, "CoreDNS ready", httpOK(fmt.Sprintf("http://127.0.0.1:%d/ready", l.dns.ready))); err != nil {
		return nil, err
	}
	n.logf("node: CoreDNS ready after %s", time.Since(begin).Round(time.Millisecond))
	if err := waitUntil(ctx, n.procs, "default service account", func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err //nolint:wrapcheck // polled
	}); err != nil {
		return nil, err
	}
	n.logf("node: default service account after %s", time.Since(begin).Round(time.Millisecond))
	for _, img := range opts.Images {
		if err := n.ImportImage(ctx, img); err != nil {
			return nil, err
		}
	}
	n.timings.Total = time.Since(begin)
	return n, nil
}

// allocatePorts picks free ports: the API server and kubelet on the node
// address, everything else on 127.0.0.1.
func (n *Node) allocatePorts() error {
	l := &n.layout
	onNode, err := freePorts(l.nodeIP, 2)
	if err != nil {
		return err
	}
	l.apiPort, l.kubelet.port = onNode[0], onNode[1]
	local, err := freePorts("127.0.0.1", 8)
	if err != nil {
		return err
	}
	l.kubelet.healthz, l.proxy.healthz, l.proxy.metrics = local[0], local[1], local[2]
	l.dns.health, l.dns.ready, l.sched = local[3], local[4], local[5]
	l.kinePort, l.cm = local[6], local[7]
	return nil
}

func (n *Node) start(name, bin string, args []string) error {
	p, err := startProcess(name, n.layout.dir, bin, args, nil)
	if err != nil {
		return err
	}
	n.procs.add(p)
	return nil
}

// startContainerd starts containerd 2 from the harness's bin directory,
// where the versioned binaries are linked under their plain names: first in
// containerd's PATH, so it runs its own runc shim (not a packaged one) and
// ImportImage its own ctr.
func (n *Node) startContainerd(paths map[string]string) error {
	l := &n.layout
	if err := os.MkdirAll(l.path("bin"), 0o755); err != nil {
		return fmt.Errorf("make bin dir: %w", err)
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
		if err := os.Symlink(paths[b], l.path("bin", b)); err != nil {
			return fmt.Errorf("link %s: %w", b, err)
		}
	}
	if err := writeFile(l.path("cni", "net.d", "10-tpctl-test.conflist"), l.cniConfig(), 0o644); err != nil {
		return err
	}
	cfg := l.path("containerd", "config.toml")
	if err := writeFile(cfg, l.containerdConfig(), 0o644); err != nil {
		return err
	}
	p, err := startProcess("containerd", l.dir, l.path("bin", "containerd"), []string{"--config", cfg},
		[]string{"PATH=" + l.path("bin") + string(os.PathListSeparator) + os.Getenv("PATH")})
	if err != nil {
		return err
	}
	n.procs.add(p)
	return nil
}

// startNodeComponents writes the component credentials and configs, then
// starts the kubelet and kube-proxy (both wait for the API server). It returns
// the kubeconfig made for CoreDNS and a function that starts the controller
// manager and scheduler.
func (n *Node) startNodeComponents(pki *apiserverPKI, paths map[string]string) (dnsKC string, startControllers func() error, err error) {
	l := &n.layout
	api := hostPort(l.nodeIP, l.apiPort)
	kc := func(name string, spec CertSpec) (string, error) {
		cred, err := pki.client(api, name, spec)
		if err != nil {
			return "", err
		}
		path := l.path(name + ".kubeconfig")
		return path, cred.writeKubeconfig(path, name)
	}
	cmKC, err := kc("kube-controller-manager", CertSpec{CommonName: "system:kube-controller-manager"})
	if err != nil {
		return "", nil, err
	}
	schedKC, err := kc("kube-scheduler", CertSpec{CommonName: "system:kube-scheduler"})
	if err != nil {
		return "", nil, err
	}
	kubeletKC, err := kc("kubelet", CertSpec{CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}})
	if err != nil {
		return "", nil, err
	}
	proxyKC, err := kc("kube-proxy", CertSpec{CommonName: "system:kube-proxy"})
	if err != nil {
		return "", nil, err
	}
	dnsKC, err = kc("coredns", CertSpec{CommonName: corednsUser})
	if err != nil {
		return "", nil, err
	}
	serving, err := pki.ca.Issue(pki.dir, "kubelet-serving", CertSpec{
		CommonName: "system:node:" + NodeName, Server: true,
		IPs: []net.IP{net.ParseIP(l.nodeIP)}, DNSNames: []string{NodeName},
	})
	if err != nil {
		return "", nil, err
	}
	caKey, err := pki.ca.WriteKey(pki.dir)
	if err != nil {
		return "", nil, err
	}
	auth := func(kubeconfig string) []string {
		return []string{"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"}
	}
	// The controller manager and scheduler exit when RBAC is not bootstrapped
	// yet: they start once the API server is ready.
	startControllers = func() error {
		if err := n.start("kube-controller-manager", paths["kube-controller-manager"], append(auth(cmKC),
			"--secure-port="+itoa(l.cm),
			"--service-account-private-key-file="+pki.saKey,
			"--root-ca-file="+pki.ca.CertFile,
			"--cluster-signing-cert-file="+pki.ca.CertFile,
			"--cluster-signing-key-file="+caKey,
			"--use-service-account-credentials=true",
			"--allocate-node-cidrs=false",
			"--cluster-name=tpctl-test",
			"--service-cluster-ip-range="+ServiceCIDR,
		)); err != nil {
			return err
		}
		return n.start("kube-scheduler", paths["kube-scheduler"], append(auth(schedKC), "--secure-port="+itoa(l.sched)))
	}
	if err := writeFile(l.path("resolv.conf"), resolvConf(), 0o644); err != nil {
		return "", nil, err
	}
	kubeletCfg := l.path("kubelet.yaml")
	if err := writeFile(kubeletCfg, l.kubeletConfig(pki.ca.CertFile, serving.CertFile, serving.KeyFile), 0o644); err != nil {
		return "", nil, err
	}
	if err := n.start("kubelet", paths["kubelet"], []string{
		"--config=" + kubeletCfg,
		"--kubeconfig=" + kubeletKC,
		"--root-dir=" + l.path("kubelet"),
		"--cert-dir=" + l.path("kubelet-pki"),
		"--node-ip=" + l.nodeIP,
		"--hostname-override=" + NodeName,
	}); err != nil {
		return "", nil, err
	}
	proxyCfg := l.path("kube-proxy.yaml")
	if err := writeFile(proxyCfg, l.kubeProxyConfig(proxyKC), 0o644); err != nil {
		return "", nil, err
	}
	if err := n.start("kube-proxy", paths["kube-proxy"], []string{"--config=" + proxyCfg}); err != nil {
		return "", nil, err
	}
	return dnsKC, startControllers, nil
}

// startDNS publishes the kube-dns Service and starts CoreDNS.
func (n *Node) startDNS(ctx context.Context, bin, kubeconfig string) error {
	cs, err := kubernetes.NewForConfig(n.admin.restConfig())
	if err != nil {
		return fmt.Errorf("make client: %w", err)
	}
	if err := createDNSObjects(ctx, cs, n.layout.nodeIP); err != nil {
		return err
	}
	corefile := n.layout.path("Corefile")
	if err := writeFile(corefile, n.layout.corefile(kubeconfig), 0o644); err != nil {
		return err
	}
	return n.start("coredns", bin, []string{"-conf", corefile})
}

func nodeReady(ctx context.Context, cs kubernetes.Interface) error {
	node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node not ready: %s: %s", c.Reason, c.Message)
		}
	}
	return errors.New("node has no Ready condition yet")
}

// ImportImage imports a docker-archive/OCI tarball into the node's containerd
// (namespace k8s.io), where the kubelet finds it without pulling.
func (n *Node) ImportImage(ctx context.Context, tarball string) error {
	if _, err := run(ctx, n.layout.path("bin", "ctr"), "--address", n.layout.containerd, "-n", "k8s.io", "images", "import", tarball); err != nil {
		return fmt.Errorf("import image %s: %w", tarball, err)
	}
	return nil
}

// NodeIP is the node's address (a /32 on lo): NodePorts answer there.
func (n *Node) NodeIP() string { return n.layout.nodeIP }

// Kubeconfig returns the path of an admin kubeconfig (0600).
func (n *Node) Kubeconfig() string { return n.kubeconfig }

// RESTConfig returns a fresh admin client configuration.
func (n *Node) RESTConfig() *rest.Config { return n.admin.restConfig() }

// Dir is the harness directory (logs, configs, state); gone after Close.
func (n *Node) Dir() string { return n.layout.dir }

// ContainerdAddress is the node's containerd socket (for ctr --address).
func (n *Node) ContainerdAddress() string { return n.layout.containerd }

// Ctr is the path of the ctr of the node's containerd (containerd 2).
func (n *Node) Ctr() string { return n.layout.path("bin", "ctr") }

// Timings returns the measured start (and, after Close, teardown) durations.
func (n *Node) Timings() NodeTimings { return n.timings }

// Logs returns the last lines of every component's log.
func (n *Node) Logs(lines int) string {
	var b strings.Builder
	n.procs.dumpLogs(&b, lines)
	return b.String()
}

// DumpLogs writes the last lines of every component's log to w.
func (n *Node) DumpLogs(w io.Writer, lines int) { n.procs.dumpLogs(w, lines) }

func (n *Node) acquireLock(ctx context.Context) error {
	if n.opts.HostLock != nil {
		n.lock = n.opts.HostLock
		return nil
	}
	path := n.opts.LockPath
	if path == "" {
		path = DefaultLockPath
	}
	lock, err := AcquireHostLock(ctx, path)
	if err != nil {
		return err
	}
	n.lock = lock
	return nil
}

func (n *Node) releaseLock() error {
	if n.opts.HostLock != nil {
		return nil
	}
	return n.lock.Release()
}

func socketReady(path string) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return fmt.Errorf("dial %s: %w", path, err)
		}
		return c.Close()
	}
}

// ProcessRSS sums the resident memory (bytes) of the node's processes: its
// components, containerd shims and everything running in pods.
func (n *Node) ProcessRSS() (total int64, byName map[string]int64) {
	byName = map[string]int64{}
	seen := map[int]bool{}
	pids := append(pidsWithArg(n.layout.dir), kubepodsPIDs()...)
	for _, p := range n.procs.list() {
		pids = append(pids, p.pid())
	}
	for _, pid := range pids {
		if seen[pid] {
			continue
		}
		seen[pid] = true
		name, rss, ok := procRSS(pid)
		if !ok {
			continue
		}
		byName[name] += rss
		total += rss
	}
	return total, byName
}

// procRSS reads a process's name and VmRSS from /proc.
func procRSS(pid int) (string, int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", 0, false
	}
	var name string
	var kb int64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Name:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
		}
	}
	return name, kb * 1024, name != ""
}
