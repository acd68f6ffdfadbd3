package cluster

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func fixedLayout() *nodeLayout {
	l := &nodeLayout{dir: "/tmp/tpctl-node-1", nodeIP: DefaultNodeIP, apiPort: 40001, kinePort: 40002, cm: 40003, sched: 40004, pauseRef: "tpctl.test/pause:1"}
	l.containerd = l.path("containerd", "containerd.sock")
	l.kubelet.port, l.kubelet.healthz = 40005, 40006
	l.proxy.healthz, l.proxy.metrics = 40007, 40008
	l.dns.health, l.dns.ready = 40009, 40010
	return l
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update", t.Name())
	assert.Equal(t, string(want), got)
}

func TestRenderedNodeConfigs(t *testing.T) {
	l := fixedLayout()
	cases := map[string]string{
		"containerd.toml": l.containerdConfig(),
		"cni.conflist":    l.cniConfig(),
		"kubelet.yaml":    l.kubeletConfig("/pki/ca.crt", "/pki/kubelet.crt", "/pki/kubelet.key"),
		"kube-proxy.yaml": l.kubeProxyConfig("/tmp/tpctl-node-1/kube-proxy.kubeconfig"),
		"Corefile":        l.corefile("/tmp/tpctl-node-1/coredns.kubeconfig"),
	}
	for name, got := range cases {
		t.Run(name, func(t *testing.T) { golden(t, name, got) })
	}

	var cni map[string]any
	require.NoError(t, json.Unmarshal([]byte(cases["cni.conflist"]), &cni))
	assert.Equal(t, "tpctl-test", cni["name"])

	var kubelet map[string]any
	require.NoError(t, yaml.UnmarshalStrict([]byte(cases["kubelet.yaml"]), &kubelet))
	assert.Equal(t, false, kubelet["failCgroupV1"])
	assert.Equal(t, "cgroupfs", kubelet["cgroupDriver"])
	assert.Equal(t, false, kubelet["failSwapOn"])

	var proxy map[string]any
	require.NoError(t, yaml.UnmarshalStrict([]byte(cases["kube-proxy.yaml"]), &proxy))
	assert.Equal(t, "iptables", proxy["mode"])
	assert.Equal(t, map[string]any{"maxPerCore": float64(0), "min": float64(0), "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}, proxy["conntrack"])

	assert.Contains(t, cases["containerd.toml"], "restrict_oom_score_adj = true")
	ctrd := cases["containerd.toml"]
	assert.True(t, strings.HasPrefix(ctrd, "version = 3\n"), "containerd 2's configuration layout")
	for _, want := range []string{
		"[plugins.'io.containerd.cri.v1.runtime']\n  enable_selinux = false\n  restrict_oom_score_adj = true\n",
		"[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = \"tpctl.test/pause:1\"\n",
		"socket_dir = \"/tmp/tpctl-node-1/s\"",           // shim sockets
		"Root = \"/tmp/tpctl-node-1/runc\"",              // runc state
		"netns_mounts_under_state_dir = true",            // pod network namespaces
		"root = \"/tmp/tpctl-node-1/containerd/root\"",   // images, snapshots
		"state = \"/tmp/tpctl-node-1/containerd/state\"", // tasks
	} {
		assert.Contains(t, ctrd, want)
	}

	long := fixedLayout()
	long.dir = "/tmp/a-harness-directory-too-long-for-shim-sockets"
	assert.NotContains(t, long.containerdConfig(), "socket_dir", "containerd's default shim socket directory when the harness's is too long")
}
