package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Addresses and names of a Node. Everything stays on this host: the node
// address is a /32 alias on lo, pods live on a bridge in network namespaces
// the node creates.
const (
	DefaultNodeIP = "10.99.0.1"
	NodeName      = "tpctl-test-node"
	PodCIDR       = "10.244.0.0/24"
	ClusterDNS    = "10.96.0.10"
	BridgeName    = "tpctltest0"
	ClusterDomain = "cluster.local"
)

// nodeLayout holds every path and port of one Node.
type nodeLayout struct {
	dir        string // harness directory (removed at teardown)
	nodeIP     string
	containerd string // containerd socket
	apiPort    int
	kinePort   int
	kubelet    struct{ port, healthz int }
	proxy      struct{ healthz, metrics int }
	cm, sched  int // secure ports on 127.0.0.1
	dns        struct{ health, ready int }
	pauseRef   string
}

func (l *nodeLayout) path(parts ...string) string {
	return filepath.Join(append([]string{l.dir}, parts...)...)
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make dir for %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// maxShimSocketDir is containerd 2's limit on the length of the shim socket
// directory on Linux (core/runtime/v2/socket_linux.go).
const maxShimSocketDir = 42

// containerdConfig is containerd 2's version 3 configuration (the layout
// K3s 1.36 generates) keeping every path under the harness directory:
// root, state, sockets, the shims' sockets, runc's state and the pods'
// network namespaces. restrict_oom_score_adj is required where root lacks
// CAP_SYS_RESOURCE (runc cannot set the sandbox's negative oom_score_adj).
// NRI is off: it would listen on /var/run/nri/nri.sock.
func (l *nodeLayout) containerdConfig() string {
	shim := ""
	if dir := l.path("s"); len(dir) <= maxShimSocketDir {
		shim = fmt.Sprintf("[plugins.'io.containerd.shim.v1.manager']\n  socket_dir = %q\n\n", dir)
	}
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
oom_score = 0

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = %[5]q

%[9]s[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = %[8]q

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = %[7]q
  max_conf_num = 1

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = %[6]q
`, l.path("containerd", "root"), l.path("containerd", "state"), l.containerd, l.containerd+".ttrpc",
		l.path("containerd", "opt"), l.pauseRef, l.path("cni", "net.d"), l.path("runc"), shim)
}

// cniConfig is a bridge network with host-local IPAM (state under the harness
// directory), masquerading and portmap.
func (l *nodeLayout) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "tpctl-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, BridgeName, PodCIDR, l.path("cni", "ipam"))
}

// kubeletConfig: cgroupfs (no systemd), cgroup v1 accepted, swap tolerated,
// eviction relaxed so a busy shared disk does not evict test pods, every path
// under the harness directory.
func (l *nodeLayout) kubeletConfig(caFile, certFile, keyFile string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[4]q
authorization:
  mode: Webhook
tlsCertFile: %[5]q
tlsPrivateKeyFile: %[6]q
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%[7]s
clusterDNS:
- %[8]s
clusterDomain: %[9]s
resolvConf: %[10]q
podLogsDir: %[11]q
staticPodPath: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
  imagefs.inodesFree: "1%%"
evictionPressureTransitionPeriod: 5s
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 10s
syncFrequency: 5s
fileCheckFrequency: 5s
protectKernelDefaults: false
makeIPTablesUtilChains: true
localStorageCapacityIsolation: true
shutdownGracePeriod: 0s
`, l.nodeIP, l.kubelet.port, l.kubelet.healthz, caFile, certFile, keyFile, l.containerd,
		ClusterDNS, ClusterDomain, l.path("resolv.conf"), l.path("pod-logs"))
}

// kubeProxyConfig: iptables mode; conntrack sysctls left alone; NodePorts on
// loopback and the node address only.
func (l *nodeLayout) kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: %[1]q
bindAddress: %[2]s
hostnameOverride: %[3]s
clusterCIDR: %[4]s
healthzBindAddress: 127.0.0.1:%[5]d
metricsBindAddress: 127.0.0.1:%[6]d
nodePortAddresses:
- 127.0.0.0/8
- %[2]s/32
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  minSyncPeriod: 0s
  syncPeriod: 30s
`, kubeconfig, l.nodeIP, NodeName, PodCIDR, l.proxy.healthz, l.proxy.metrics)
}

// corefile serves cluster.local from the API on the node address. It has no
// forward upstream: the host's resolver is outside this machine, and tests
// resolve cluster names only.
func (l *nodeLayout) corefile(kubeconfig string) string {
	return fmt.Sprintf(`.:53 {
    bind %[1]s
    errors
    log
    health 127.0.0.1:%[2]d
    ready 127.0.0.1:%[3]d
    kubernetes %[4]s in-addr.arpa ip6.arpa {
        kubeconfig %[5]s tpctl-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loop
    reload
    loadbalance
}
`, l.nodeIP, l.dns.health, l.dns.ready, ClusterDomain, kubeconfig)
}

// resolvConf is the base resolver file the kubelet gives pods: the cluster
// DNS only, no host resolver.
func resolvConf() string {
	return "# tpctl test node: cluster DNS only\noptions ndots:5\n"
}

func itoa(i int) string { return strconv.Itoa(i) }
