package installer

import (
	"errors"
	"os"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixedHost(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

func completed(t *testing.T, c Config) Config {
	t.Helper()
	c, err := c.Complete(fixedHost("node-1"))
	require.NoError(t, err)
	return c
}

func TestDefaults(t *testing.T) {
	c := completed(t, Config{})
	assert.Equal(t, Config{
		NodeName: "node-1", DataDir: DefaultDataDir, ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16",
		ClusterDNS: "10.43.0.10", NodePortRange: "30000-32767", CNI: CNIFlannel, WriteKubeconfigMode: "0600",
	}, c)
	require.NoError(t, c.Validate())

	c = completed(t, Config{ServiceCIDR: "fd00:43::/112"})
	assert.Equal(t, "fd00:43::a", c.ClusterDNS, "the default DNS address follows the service range")

	_, err := Config{}.Complete(func() (string, error) { return "", errors.New("no uts") })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodeName")
}

func TestParseConfigIsStrict(t *testing.T) {
	_, err := ParseConfig([]byte("nodeName: a\nclusterCidr: 10.0.0.0/16\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "clusterCidr"`)

	_, err = ParseConfig([]byte("nodeName: a\nnodeName: b\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodeName")

	_, err = ParseConfig([]byte("disable: traefik\n"))
	require.Error(t, err, "a list field takes a list")

	c, err := ParseConfig([]byte("# comments only\n"))
	require.NoError(t, err)
	assert.Equal(t, Config{}, c)

	c, err = ParseConfig([]byte(`
nodeName: edge-1
nodeIP: 192.0.2.10
cni: cilium
disable: [traefik, servicelb]
tlsSANs: ["edge.example.com", "192.0.2.10"]
httpsProxy: http://proxy.example.com:3128
noProxy: [corp.example.com, 192.0.2.0/24]
kubeletArgs: ["max-pods=200"]
airGap: true
writeKubeconfigMode: "0640"
`))
	require.NoError(t, err)
	assert.Equal(t, Config{NodeName: "edge-1", NodeIP: "192.0.2.10", CNI: CNICilium, Disable: []string{"traefik", "servicelb"},
		TLSSANs: []string{"edge.example.com", "192.0.2.10"}, HTTPSProxy: "http://proxy.example.com:3128",
		NoProxy: []string{"corp.example.com", "192.0.2.0/24"}, KubeletArgs: []string{"max-pods=200"}, AirGap: true,
		WriteKubeconfigMode: "0640"}, c)
	require.NoError(t, completed(t, c).Validate())
}

func TestValidateNamesEveryBadField(t *testing.T) {
	c := completed(t, Config{
		NodeName:            "Bad_Name",
		NodeIP:              "127.0.0.1",
		DataDir:             "var/lib/k3s",
		ClusterCIDR:         "10.42.0.1/16",
		ServiceCIDR:         "10.0.0.0/11",
		ClusterDNS:          "192.168.0.10",
		NodePortRange:       "32767-30000",
		CNI:                 "calico",
		Disable:             []string{"traefik", "ingress", "traefik"},
		TLSSANs:             []string{"ok.example.com", "not a name"},
		HTTPProxy:           "ftp://user:secret@proxy",
		HTTPSProxy:          "http://",
		NoProxy:             []string{"a b"},
		KubeletArgs:         []string{"--max-pods=10"},
		WriteKubeconfigMode: "0644",
	})
	err := c.Validate()
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	var fields []string
	for _, f := range ve.Fields {
		fields = append(fields, f.Field)
	}
	assert.Equal(t, []string{"nodeName", "nodeIP", "dataDir", "clusterCIDR", "serviceCIDR", "clusterDNS", "nodePortRange",
		"cni", "disable[1]", "disable[2]", "tlsSANs[1]", "httpProxy", "httpsProxy", "noProxy[0]", "kubeletArgs[0]",
		"writeKubeconfigMode"}, fields)
	msg := err.Error()
	assert.Contains(t, msg, `clusterCIDR: "10.42.0.1/16" has host bits set (did you mean 10.42.0.0/16?)`)
	assert.Contains(t, msg, `serviceCIDR: "10.0.0.0/11" is too large`)
	assert.Contains(t, msg, `disable[2]: "traefik" is listed twice`)
	assert.Contains(t, msg, `httpProxy: "ftp://user:xxxxx@proxy"`, "the password is not echoed")
	assert.NotContains(t, msg, "secret")
	assert.Contains(t, msg, "must not give other users access")
}

func TestValidateNetworkRelations(t *testing.T) {
	cases := map[string]struct {
		c    Config
		want string
	}{
		"overlap":         {Config{ClusterCIDR: "10.0.0.0/8", ServiceCIDR: "10.43.0.0/16"}, "serviceCIDR: \"10.43.0.0/16\" overlaps clusterCIDR 10.0.0.0/8"},
		"dns outside":     {Config{ClusterDNS: "10.42.0.10"}, "is outside serviceCIDR"},
		"dns first":       {Config{ClusterDNS: "10.43.0.1"}, "kubernetes Service takes"},
		"dns network":     {Config{ClusterDNS: "10.43.0.0"}, "network address"},
		"cluster small":   {Config{ClusterCIDR: "10.42.0.0/25"}, "too small"},
		"dual stack":      {Config{ClusterCIDR: "10.42.0.0/16,fd00::/56"}, "dual-stack"},
		"not a cidr":      {Config{ServiceCIDR: "10.43.0.0"}, "is not a CIDR"},
		"one port":        {Config{NodePortRange: "30000-30000"}, "more than one port"},
		"port range":      {Config{NodePortRange: "0-100"}, "1-65535"},
		"port text":       {Config{NodePortRange: "a-b"}, "port numbers"},
		"ip zone":         {Config{NodeIP: "fe80::1%eth0"}, "is not an IP address"},
		"mode setuid":     {Config{WriteKubeconfigMode: "4600"}, "at most 0777"},
		"mode owner":      {Config{WriteKubeconfigMode: "0400"}, "owner read and write"},
		"mode not octal":  {Config{WriteKubeconfigMode: "0o600"}, "octal"},
		"proxy port":      {Config{HTTPProxy: "http://proxy:99999"}, "invalid port"},
		"kubelet newline": {Config{KubeletArgs: []string{"a=b\nc"}}, "kubeletArgs[0]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := completed(t, tc.c).Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	ok := completed(t, Config{ClusterCIDR: "fd00:42::/56", ServiceCIDR: "fd00:43::/112", NodeIP: "2001:db8::5",
		TLSSANs: []string{"*.example.com"}, HTTPProxy: "socks5://proxy:1080", WriteKubeconfigMode: "640"})
	assert.NoError(t, ok.Validate())
}

func TestFlagsWinOverFile(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/install.yaml"
	require.NoError(t, os.WriteFile(file, []byte("nodeName: from-file\ncni: cilium\ndisable: [traefik]\nnoProxy: [a.example]\nairGap: true\n"), 0o600))
	var f ConfigFlags
	fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
	f.Register(fs)
	require.NoError(t, fs.Parse([]string{"--config", file, "--node-name", "from-flag", "--disable", "servicelb", "--disable", "metrics-server", "--no-proxy", "b.example, c.example", "--airgap=false"}))
	c, err := f.Load(fs, os.ReadFile, fixedHost("host"), noEnv)
	require.NoError(t, err)
	assert.Equal(t, "from-flag", c.NodeName)
	assert.Equal(t, CNICilium, c.CNI, "unset flags leave the file's value")
	assert.Equal(t, []string{"servicelb", "metrics-server"}, c.Disable)
	assert.Equal(t, []string{"b.example", "c.example"}, c.NoProxy)
	assert.False(t, c.AirGap)
	assert.Equal(t, DefaultDataDir, c.DataDir)
}

func TestLoadReportsFileAndValidationErrors(t *testing.T) {
	var f ConfigFlags
	fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
	f.Register(fs)
	require.NoError(t, fs.Parse([]string{"--config", "/nonexistent/install.yaml"}))
	_, err := f.Load(fs, os.ReadFile, fixedHost("host"), noEnv)
	require.ErrorIs(t, err, os.ErrNotExist)

	file := t.TempDir() + "/c.yaml"
	require.NoError(t, os.WriteFile(file, []byte("bogus: 1\n"), 0o600))
	require.NoError(t, fs.Parse([]string{"--config", file}))
	_, err = f.Load(fs, os.ReadFile, fixedHost("host"), noEnv)
	require.Error(t, err)
	assert.Contains(t, err.Error(), file)
	assert.Contains(t, err.Error(), `unknown field "bogus"`)

	fs = pflag.NewFlagSet("install", pflag.ContinueOnError)
	f = ConfigFlags{}
	f.Register(fs)
	require.NoError(t, fs.Parse([]string{"--cni", "weave"}))
	_, err = f.Load(fs, os.ReadFile, fixedHost("host"), noEnv)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
}

func TestRedactedAndYAMLRoundTrip(t *testing.T) {
	c := completed(t, Config{HTTPProxy: "http://bob:hunter2@proxy:3128", HTTPSProxy: "http://proxy:3128"})
	r := c.Redacted()
	assert.Equal(t, "http://bob:xxxxx@proxy:3128", r.HTTPProxy)
	assert.Equal(t, "http://proxy:3128", r.HTTPSProxy)
	assert.Equal(t, "http://bob:hunter2@proxy:3128", c.HTTPProxy, "the original is untouched")
	out, err := c.YAML()
	require.NoError(t, err)
	back, err := ParseConfig(out)
	require.NoError(t, err)
	assert.Equal(t, c, back)
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("nodeName: a\n"))
	f.Add([]byte("clusterCIDR: 10.42.0.0/16\nserviceCIDR: 10.43.0.0/16\nclusterDNS: 10.43.0.10\n"))
	f.Add([]byte("disable: [traefik]\ntlsSANs: ['*.x']\nkubeletArgs: [a=b]\nairGap: yes\n"))
	f.Add([]byte("httpProxy: http://u:p@h:1\nnoProxy: [a, 'b c']\nwriteKubeconfigMode: 0600\n"))
	f.Add([]byte("{nodeName: [1, 2]}"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			return
		}
		c, err = c.Complete(fixedHost("fuzz"))
		require.NoError(t, err)
		if c.Validate() != nil {
			return
		}
		// A valid configuration survives a round trip and renders.
		out, err := c.YAML()
		require.NoError(t, err)
		back, err := ParseConfig(out)
		require.NoError(t, err)
		require.Equal(t, c, back)
		_, err = RenderK3sConfig(c, Facts{})
		require.NoError(t, err)
		_, err = RenderEnv(c)
		require.NoError(t, err)
	})
}
