package launcher

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
)

// Without a template the generated config leaves restrict_oom_score_adj off,
// as K3s's does; the template tpctl derives from it turns it on.
func TestContainerdTemplateFromTpctl(t *testing.T) {
	l := Layout{Data: t.TempDir()}
	gen, from, err := ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Empty(t, from)
	assert.False(t, installer.ContainerdTemplateApplied(gen))
	assert.Contains(t, string(gen), `sandbox_image = "`+PauseImage+`"`)
	assert.Contains(t, string(gen), `address = "/run/k3s/containerd/containerd.sock"`)

	name, tmpl, err := installer.DeriveContainerdTemplate(gen)
	require.NoError(t, err)
	require.Equal(t, "config.toml.tmpl", name)
	require.NoError(t, os.MkdirAll(l.ContainerdDir(), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), name), tmpl, 0o600))
	out, from, err := ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(l.ContainerdDir(), name), from)
	assert.True(t, installer.ContainerdTemplateApplied(out))
}

func TestContainerdTemplateIncludingBase(t *testing.T) {
	l := Layout{Data: t.TempDir()}
	require.NoError(t, os.MkdirAll(l.ContainerdDir(), 0o755))
	tmpl := "{{ template \"base\" . }}\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/x\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), "config.toml.tmpl"), []byte(tmpl), 0o600))
	out, _, err := ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Contains(t, string(out), "version = 2\n")
	assert.Contains(t, string(out), `config_path = "/etc/x"`)

	// A template reading what K3s would pass and this launcher lacks fails.
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), "config.toml.tmpl"), []byte("{{ .NodeConfig.AgentConfig }}"), 0o600))
	_, _, err = ContainerdConfig(l, PauseImage)
	assert.ErrorContains(t, err, "render")

	// containerd 2 templates are refused, not silently ignored.
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), "config-v3.toml.tmpl"), []byte("version = 3\n"), 0o600))
	_, _, err = ContainerdConfig(l, PauseImage)
	assert.ErrorContains(t, err, "config-v3.toml.tmpl")
}

func TestCNIAndKubeletConfigFollowTheConfig(t *testing.T) {
	c, err := Load(Args{ConfigFile: "c"}, fileOf(required+"node-name: n1\ncluster-cidr: 10.60.0.0/16\nservice-cidr: 10.61.0.0/16\n"), noDir)
	require.NoError(t, err)
	assert.Contains(t, cniConfig(c), `"subnet": "10.60.0.0/24"`)
	assert.Contains(t, cniConfig(c), `"bridge": "cni0"`)
	k := kubeletConfig(c, "10.99.0.1", "/ca", "/crt", "/key")
	assert.Contains(t, k, "- 10.61.0.10\n")
	assert.Contains(t, k, "address: 10.99.0.1\n")
	p := kubeProxyConfig(c, "10.99.0.1", "/kc")
	assert.Contains(t, p, "clusterCIDR: 10.60.0.0/16\n")
	assert.Contains(t, p, "- 10.99.0.1/32\n")
}
