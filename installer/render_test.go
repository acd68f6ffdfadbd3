package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
)

func fullConfig(t *testing.T) Config {
	return completed(t, Config{
		NodeName:    "edge-1",
		NodeIP:      "192.0.2.10",
		DataDir:     "/srv/k3s",
		ClusterCIDR: "10.52.0.0/16",
		ServiceCIDR: "10.53.0.0/16",
		CNI:         CNICilium,
		Disable:     []string{"traefik", "servicelb"},
		TLSSANs:     []string{"edge.example.com", "192.0.2.10"},
		HTTPProxy:   "http://proxy.example.com:3128",
		HTTPSProxy:  "http://alice:s3cret@proxy.example.com:3128",
		NoProxy:     []string{"corp.example.com", "localhost", "10.52.0.0/16", "corp.example.com"},
		KubeletArgs: []string{"max-pods=200"},
		AirGap:      true,
	})
}

func TestRenderK3sConfigDefault(t *testing.T) {
	out, err := RenderK3sConfig(completed(t, Config{}), Facts{})
	require.NoError(t, err)
	golden(t, "k3s-config-default.yaml", out)
	assertOnlyKnownKeys(t, out)
}

func TestRenderK3sConfigCiliumCgroupV1(t *testing.T) {
	out, err := RenderK3sConfig(fullConfig(t), Facts{CgroupV1: true})
	require.NoError(t, err)
	golden(t, "k3s-config-cilium-cgroupv1.yaml", out)
	assertOnlyKnownKeys(t, out)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(out, &m))
	assert.Equal(t, "none", m["flannel-backend"])
	assert.Equal(t, true, m["disable-network-policy"])
	assert.Equal(t, []any{"max-pods=200", "fail-cgroupv1=false"}, m["kubelet-arg"])
}

func TestRenderK3sConfigMergesHostKubeletArgs(t *testing.T) {
	c := completed(t, Config{KubeletArgs: []string{"resolv-conf=/etc/my-resolv.conf"}})
	f := FactsFrom(preflight.Facts{CgroupVersion: 1, RestrictOOMScoreAdj: true,
		KubeletArgs: []string{"fail-cgroupv1=false", "resolv-conf=/run/systemd/resolve/resolv.conf"}})
	assert.Equal(t, Facts{CgroupV1: true, NoCapSysResource: true,
		KubeletArgs: []string{"fail-cgroupv1=false", "resolv-conf=/run/systemd/resolve/resolv.conf"}}, f)
	out, err := RenderK3sConfig(c, f)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(out, &m))
	assert.Equal(t, []any{"resolv-conf=/etc/my-resolv.conf", "fail-cgroupv1=false"}, m["kubelet-arg"],
		"the user's resolv-conf wins; fail-cgroupv1 appears once")
}

func TestRenderK3sConfigKeepsUsersCgroupDecision(t *testing.T) {
	c := completed(t, Config{KubeletArgs: []string{"fail-cgroupv1=true"}})
	out, err := RenderK3sConfig(c, Facts{CgroupV1: true})
	require.NoError(t, err)
	assert.Contains(t, string(out), "- fail-cgroupv1=true")
	assert.NotContains(t, string(out), "fail-cgroupv1=false")
}

// assertOnlyKnownKeys checks the rendered file against K3sConfigKeys, the
// list the test launcher accepts.
func assertOnlyKnownKeys(t *testing.T, out []byte) {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(out, &m))
	for k := range m {
		assert.Contains(t, K3sConfigKeys(), k)
	}
}

func TestNoProxyList(t *testing.T) {
	assert.Equal(t, []string{"corp.example.com", "localhost", "10.52.0.0/16", "127.0.0.1", "::1", "10.53.0.0/16", ".svc", ".cluster.local"},
		NoProxyList(fullConfig(t)))
	assert.Equal(t, []string{"localhost", "127.0.0.1", "::1", "10.42.0.0/16", "10.43.0.0/16", ".svc", ".cluster.local"},
		NoProxyList(completed(t, Config{})))
	assert.Equal(t, []string{"LOCALHOST", "127.0.0.1", "::1", "10.42.0.0/16", "10.43.0.0/16", ".svc", ".cluster.local"},
		NoProxyList(completed(t, Config{NoProxy: []string{"LOCALHOST"}})), "case-insensitive duplicates go")
}

func TestRenderEnv(t *testing.T) {
	out, err := RenderEnv(completed(t, Config{}))
	require.NoError(t, err)
	golden(t, "k3s.service.env.noproxy", out)

	out, err = RenderEnv(fullConfig(t))
	require.NoError(t, err)
	golden(t, "k3s.service.env", out)
	red := RedactEnv(out)
	assert.NotContains(t, string(red), "s3cret")
	assert.Contains(t, string(red), "HTTPS_PROXY=http://alice:xxxxx@proxy.example.com:3128\n")
	assert.Contains(t, string(red), "HTTP_PROXY=http://proxy.example.com:3128\n")
}

func TestRenderUnit(t *testing.T) {
	out, err := RenderUnit()
	require.NoError(t, err)
	golden(t, "k3s.service", out)
	assert.True(t, systemd.IsManaged(out))
	opts, err := systemd.Parse(out)
	require.NoError(t, err)
	assert.Equal(t, []string{"-/sbin/modprobe br_netfilter", "-/sbin/modprobe overlay"}, systemd.Values(opts, "Service", "ExecStartPre"))
	assert.Equal(t, []string{"notify"}, systemd.Values(opts, "Service", "Type"))
	assert.Equal(t, []string{"-" + EnvFilePath}, systemd.Values(opts, "Service", "EnvironmentFile"))
}

func TestDeriveContainerdTemplate(t *testing.T) {
	for _, tc := range []struct{ fixture, name string }{
		{"containerd-v3.toml", "config-v3.toml.tmpl"},
		{"containerd-v2.toml", "config.toml.tmpl"},
		{"containerd-v3-userns.toml", "config-v3.toml.tmpl"},
		{"containerd-v2-last-table.toml", "config.toml.tmpl"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			gen, err := os.ReadFile(filepath.Join("testdata", tc.fixture))
			require.NoError(t, err)
			assert.False(t, ContainerdTemplateApplied(gen))
			name, tmpl, err := DeriveContainerdTemplateFor(gen, testK3sSHA)
			require.NoError(t, err)
			assert.Equal(t, tc.name, name)
			assert.Equal(t, testK3sSHA, TemplateK3sSHA256(tmpl))
			golden(t, strings.TrimSuffix(tc.fixture, ".toml")+".tmpl", tmpl)

			// K3s executes the template; the result is the generated
			// config with the key set, every table declared once.
			rendered := execTemplate(t, tmpl)
			assert.True(t, ContainerdTemplateApplied([]byte(rendered)))
			keys := 0
			for _, line := range strings.Split(rendered, "\n") {
				if oomKey.MatchString(line) {
					keys++
				}
			}
			assert.Equal(t, 1, keys, "the key is set exactly once")
			assertTablesUnique(t, rendered)
			assert.Contains(t, rendered, `"{{literal}}"`, "braces in the generated config survive the template")
		})
	}
	_, _, err := DeriveContainerdTemplate([]byte("[plugins]\n"))
	assert.ErrorContains(t, err, "no version line")
	_, _, err = DeriveContainerdTemplate([]byte("version = 4\n"))
	assert.ErrorContains(t, err, "version 4 is not supported")
}

const testK3sSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func execTemplate(t *testing.T, tmpl []byte) string {
	t.Helper()
	tp, err := template.New("containerd").Parse(string(tmpl))
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, tp.Execute(&b, nil))
	return b.String()
}

func assertTablesUnique(t *testing.T, toml string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(toml, "\n") {
		if m := tomlTable.FindStringSubmatch(line); m != nil {
			k := strings.ReplaceAll(strings.TrimSpace(m[1]), "'", `"`)
			assert.False(t, seen[k], "table %s declared twice", k)
			seen[k] = true
		}
	}
}
