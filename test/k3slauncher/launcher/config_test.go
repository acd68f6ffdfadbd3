package launcher

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
)

// The launcher accepts exactly the keys tpctl writes: when tpctl starts
// writing another key, this fails until the launcher learns it.
func TestKeysAreThoseTpctlWrites(t *testing.T) {
	assert.ElementsMatch(t, installer.K3sConfigKeys(), Keys())
}

func noFile(string) ([]byte, error) { return nil, os.ErrNotExist }

func noDir(string) ([]os.DirEntry, error) { return nil, os.ErrNotExist }

// files is a file tree for Load: paths as K3s would see them.
func files(tree map[string]string) (func(string) ([]byte, error), func(string) ([]os.DirEntry, error)) {
	m := fstest.MapFS{}
	for p, c := range tree {
		m[strings.TrimPrefix(p, "/")] = &fstest.MapFile{Data: []byte(c)}
	}
	return func(p string) ([]byte, error) { return fs.ReadFile(m, strings.TrimPrefix(p, "/")) },
		func(p string) ([]os.DirEntry, error) { return fs.ReadDir(m, strings.TrimPrefix(p, "/")) }
}

func fileOf(content string) func(string) ([]byte, error) {
	return func(string) ([]byte, error) { return []byte(content), nil }
}

const required = "disable: [traefik, metrics-server, local-storage]\n"

// tpctl's own rendering of a full configuration loads as it was meant.
func TestLoadsWhatTpctlRenders(t *testing.T) {
	cfg := installer.Config{
		NodeName: "edge-1", NodeIP: "10.99.0.1", DataDir: "/srv/k3s", ClusterCIDR: "10.52.0.0/16",
		ServiceCIDR: "10.53.0.0/16", ClusterDNS: "10.53.0.10", NodePortRange: "30000-30100", CNI: installer.CNICilium,
		Disable: []string{"traefik", "metrics-server", "local-storage", "servicelb"}, TLSSANs: []string{"edge.example.com", "192.0.2.7"},
		KubeletArgs: []string{"max-pods=50"}, WriteKubeconfigMode: "0640",
	}
	raw, err := installer.RenderK3sConfig(cfg, installer.Facts{CgroupV1: true})
	require.NoError(t, err)
	c, err := Load(Args{ConfigFile: "config.yaml"}, fileOf(string(raw)), noDir)
	require.NoError(t, err)
	assert.Equal(t, "edge-1", c.NodeName)
	assert.Equal(t, "10.99.0.1", c.NodeIP)
	assert.Equal(t, "/srv/k3s", c.DataDir)
	assert.Equal(t, netip.MustParsePrefix("10.52.0.0/16"), c.ClusterCIDR)
	assert.Equal(t, netip.MustParsePrefix("10.52.0.0/24"), c.PodCIDR())
	assert.Equal(t, netip.MustParseAddr("10.53.0.10"), c.ClusterDNS)
	assert.Equal(t, netip.MustParseAddr("10.53.0.1"), c.KubernetesServiceIP())
	assert.Equal(t, "30000-30100", c.ServiceNodePortRange)
	assert.Equal(t, []string{"edge.example.com", "192.0.2.7"}, c.TLSSANs)
	assert.Equal(t, "none", c.FlannelBackend)
	assert.True(t, c.DisableNetworkPolicy)
	assert.Equal(t, []string{"max-pods=50", "fail-cgroupv1=false"}, c.KubeletArgs)
	assert.Equal(t, os.FileMode(0o640), c.WriteKubeconfigMode)
}

func TestDefaultsAreK3ss(t *testing.T) {
	c, err := Load(Args{ConfigFile: "x"}, fileOf(required+"node-name: n1\n"), noDir)
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/rancher/k3s", c.DataDir)
	assert.Equal(t, netip.MustParsePrefix("10.42.0.0/16"), c.ClusterCIDR)
	assert.Equal(t, netip.MustParsePrefix("10.43.0.0/16"), c.ServiceCIDR)
	assert.Equal(t, netip.MustParseAddr("10.43.0.10"), c.ClusterDNS)
	assert.Equal(t, "30000-32767", c.ServiceNodePortRange)
	assert.Equal(t, "vxlan", c.FlannelBackend)
	assert.Equal(t, os.FileMode(0o600), c.WriteKubeconfigMode)
}

// As on K3s's command line, where the file's values come first: a flag
// replaces a single value and adds to a list.
func TestFlagsOverTheFile(t *testing.T) {
	a, err := ParseArgs([]string{"--config", "/etc/k.yaml", "--node-name=flag", "--kubelet-arg", "a=1", "--kubelet-arg=b=2",
		"--disable-network-policy", "--write-kubeconfig-mode", "0644"})
	require.NoError(t, err)
	assert.Equal(t, "/etc/k.yaml", a.ConfigFile)
	c, err := Load(a, fileOf(required+"node-name: file\nkubelet-arg: [c=3]\n"), noDir)
	require.NoError(t, err)
	assert.Equal(t, "flag", c.NodeName)
	assert.Equal(t, []string{"c=3", "a=1", "b=2"}, c.KubeletArgs)
	assert.True(t, c.DisableNetworkPolicy)
	assert.Equal(t, os.FileMode(0o644), c.WriteKubeconfigMode)
}

// K3s reads config.yaml, then config.yaml.d/*.yaml and *.yml in name order:
// a later plain key replaces, key+ appends to a list; other files are not
// read; unknown keys in a drop-in are refused as in the main file.
func TestDropIns(t *testing.T) {
	readFile, readDir := files(map[string]string{
		"/etc/rancher/k3s/config.yaml":                   "node-name: main\ndisable: [traefik]\nkubelet-arg: [a=1]\ntls-san: [x]\n",
		"/etc/rancher/k3s/config.yaml.d/10-more.yaml":    "disable+: [metrics-server, local-storage]\nkubelet-arg: [b=2]\n",
		"/etc/rancher/k3s/config.yaml.d/20-name.YML":     "node-name: dropin\ntls-san+: san2\n",
		"/etc/rancher/k3s/config.yaml.d/30-ignored.txt":  "token: x\n",
		"/etc/rancher/k3s/config.yaml.d/dir.yaml/a.yaml": "token: x\n",
	})
	c, err := Load(Args{ConfigFile: DefaultConfigFile}, readFile, readDir)
	require.NoError(t, err)
	assert.Equal(t, "dropin", c.NodeName)
	assert.Equal(t, []string{"traefik", "metrics-server", "local-storage"}, c.Disable)
	assert.Equal(t, []string{"b=2"}, c.KubeletArgs)
	assert.Equal(t, []string{"x", "san2"}, c.TLSSANs)

	// Drop-ins alone, without config.yaml.
	readFile, readDir = files(map[string]string{
		"/etc/rancher/k3s/config.yaml.d/a.yaml": required + "node-name: only\n",
	})
	c, err = Load(Args{ConfigFile: DefaultConfigFile}, readFile, readDir)
	require.NoError(t, err)
	assert.Equal(t, "only", c.NodeName)

	readFile, readDir = files(map[string]string{
		"/etc/rancher/k3s/config.yaml":          required + "node-name: n\n",
		"/etc/rancher/k3s/config.yaml.d/z.yaml": "datastore-endpoint: x\n",
	})
	_, err = Load(Args{ConfigFile: DefaultConfigFile}, readFile, readDir)
	assert.ErrorContains(t, err, `z.yaml: config key "datastore-endpoint"`)
	readFile, readDir = files(map[string]string{
		"/etc/rancher/k3s/config.yaml.d/z.yaml": required + "node-name+: [a, b]\n",
	})
	_, err = Load(Args{ConfigFile: DefaultConfigFile}, readFile, readDir)
	assert.ErrorContains(t, err, "takes one value")
}

func TestMissingConfigFileIsFine(t *testing.T) {
	a, err := ParseArgs([]string{"--disable", "traefik,metrics-server", "--disable=local-storage", "--node-name", "n"})
	require.NoError(t, err)
	assert.Equal(t, DefaultConfigFile, a.ConfigFile)
	c, err := Load(a, noFile, noDir)
	require.NoError(t, err)
	assert.Equal(t, []string{"traefik", "metrics-server", "local-storage"}, c.Disable)
}

// Every key and flag outside tpctl's set is refused, naming it.
func TestRejectsUnknownKeysAndFlags(t *testing.T) {
	for _, bad := range []string{"--agent-token=x", "--cluster-reset", "-x", "--flannel-iface=eth0", "server2", "--"} {
		_, err := ParseArgs([]string{bad})
		require.Error(t, err, bad)
	}
	_, err := ParseArgs([]string{"--agent-token=secret"})
	assert.ErrorContains(t, err, "--agent-token")
	for key, doc := range map[string]string{
		"agent-token":         required + "agent-token: abc\n",
		"etcd-expose-metrics": required + "etcd-expose-metrics: true\n",
		"Node-Name":           required + "Node-Name: x\n",
	} {
		_, err := Load(Args{ConfigFile: "c"}, fileOf(doc), noDir)
		require.Error(t, err, key)
		assert.ErrorContains(t, err, `"`+key+`"`)
	}
}

func TestRejectsBadValues(t *testing.T) {
	for name, doc := range map[string]string{
		"node-ip":                "node-ip: 127.0.0.1\n",
		"node-ip v6":             "node-ip: fd00::1\n",
		"cluster-cidr":           "cluster-cidr: 10.42.0.1/16\n",
		"service-cidr small":     "service-cidr: 10.43.0.0/31\n",
		"cluster-dns outside":    "cluster-dns: 10.0.0.10\n",
		"port range":             "service-node-port-range: 30000\n",
		"disable unknown":        "disable: [traefik, metrics-server, local-storage, nginx]\n",
		"flannel-backend":        "flannel-backend: wireguard-native\n",
		"disable-network-policy": "disable-network-policy: maybe\n",
		"kubelet-arg":            "kubelet-arg: [--max-pods=3]\n",
		"write-kubeconfig-mode":  "write-kubeconfig-mode: rw\n",
		"list for a single key":  "node-name: [a, b]\n",
		"data-dir":               "data-dir: var/lib\n",
	} {
		t.Run(name, func(t *testing.T) {
			doc := doc
			if name != "disable unknown" {
				doc = required + doc
			}
			_, err := Load(Args{ConfigFile: "c"}, fileOf("node-name: n\n"+doc), noDir)
			assert.Error(t, err)
		})
	}
	// K3s's defaults: nothing disabled is a valid configuration (every
	// packaged component is deployed, metrics-server included).
	c, err := Load(Args{ConfigFile: "c"}, fileOf("node-name: n\n"), noDir)
	require.NoError(t, err)
	assert.Empty(t, c.Disable)
	assert.False(t, c.Disabled("metrics-server"))
}

func TestConfigFileReadError(t *testing.T) {
	_, err := Load(Args{ConfigFile: "c"}, func(string) ([]byte, error) { return nil, errors.New("boom") }, noDir)
	assert.ErrorContains(t, err, "boom")
}

func TestChildEnvDropsNotifySocket(t *testing.T) {
	env := ChildEnv([]string{"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "HTTP_PROXY=http://p:3128", "WATCHDOG_USEC=1"})
	assert.Equal(t, []string{"PATH=/bin", "HTTP_PROXY=http://p:3128"}, env)
}

func TestStopOrder(t *testing.T) {
	order := StopOrder()
	require.Len(t, order, 4)
	assert.ElementsMatch(t, []string{"kubelet", "kube-proxy"}, order[0])
	assert.Equal(t, []string{"kine", "etcd"}, order[len(order)-1])
}

func FuzzParseConfigFile(f *testing.F) {
	f.Add([]byte(required + "node-name: a\nkubelet-arg: [x=1]\n"))
	f.Add([]byte("token: x\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("disable-network-policy: true\nwrite-kubeconfig-mode: 0644\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		vals, err := ParseConfigFile(raw)
		if err != nil {
			return
		}
		for k := range vals {
			assert.Contains(t, append(Keys(), ServerJoinKeys()...), k)
		}
		_, _ = Build(vals)
	})
}

func FuzzParseArgs(f *testing.F) {
	f.Add("--node-name", "x")
	f.Add("--config", "/c")
	f.Add("--token=1", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		args, err := ParseArgs([]string{a, b})
		if err != nil {
			return
		}
		for k := range args.Values {
			assert.Contains(t, append(Keys(), ServerJoinKeys()...), k)
		}
	})
}
