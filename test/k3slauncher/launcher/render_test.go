package launcher

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
)

// The generated config is K3s's containerd 2 layout (version 3) and, as
// K3s's, has no restrict_oom_score_adj key; the template tpctl derives from
// it (config-v3.toml.tmpl) turns it on.
func TestContainerdTemplateFromTpctl(t *testing.T) {
	l := Layout{Data: t.TempDir()}
	gen, from, err := ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Empty(t, from)
	assert.Contains(t, string(gen), "version = 3\n")
	assert.NotContains(t, string(gen), "restrict_oom_score_adj")
	assert.False(t, installer.ContainerdTemplateApplied(gen))
	assert.Contains(t, string(gen), "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = \""+PauseImage+"\"")
	assert.Contains(t, string(gen), `address = "/run/k3s/containerd/containerd.sock"`)

	name, tmpl, err := installer.DeriveContainerdTemplate(gen)
	require.NoError(t, err)
	require.Equal(t, "config-v3.toml.tmpl", name)
	require.NoError(t, os.MkdirAll(l.ContainerdDir(), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), name), tmpl, 0o600))
	out, from, err := ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(l.ContainerdDir(), name), from)
	assert.True(t, installer.ContainerdTemplateApplied(out))
}

// config-v3.toml.tmpl wins over config.toml.tmpl, which is still read when
// alone (containerd 2 migrates a version 2 config); both may include the
// generated config; a template reading what this launcher lacks fails.
func TestContainerdTemplates(t *testing.T) {
	l := Layout{Data: t.TempDir()}
	require.NoError(t, os.MkdirAll(l.ContainerdDir(), 0o755))
	v2 := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"x\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), "config.toml.tmpl"), []byte(v2), 0o600))
	out, from, err := ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Equal(t, v2, string(out))
	assert.Equal(t, filepath.Join(l.ContainerdDir(), "config.toml.tmpl"), from)

	v3 := "{{ template \"base\" . }}\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"/etc/x\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), "config-v3.toml.tmpl"), []byte(v3), 0o600))
	out, from, err = ContainerdConfig(l, PauseImage)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(l.ContainerdDir(), "config-v3.toml.tmpl"), from)
	assert.Contains(t, string(out), "version = 3\n")
	assert.Contains(t, string(out), `config_path = "/etc/x"`)

	require.NoError(t, os.WriteFile(filepath.Join(l.ContainerdDir(), "config-v3.toml.tmpl"), []byte("{{ .NodeConfig.AgentConfig }}"), 0o600))
	_, _, err = ContainerdConfig(l, PauseImage)
	assert.ErrorContains(t, err, "render")
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
