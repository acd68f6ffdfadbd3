package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
)

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(bytes.NewReader(nil))
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	err := cmd.Execute()
	return out.String(), err
}

func TestInstallPrintConfigFlagsWin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "install.yaml")
	require.NoError(t, os.WriteFile(file, []byte("nodeName: from-file\ncni: cilium\nhttpProxy: http://bob:hunter2@proxy:3128\n"), 0o600))
	out, err := runCmd(t, newInstallCmd(), "--config", file, "--node-name", "edge-1", "--print-config")
	require.NoError(t, err)
	assert.Equal(t, `clusterCIDR: 10.42.0.0/16
clusterDNS: 10.43.0.10
cni: cilium
dataDir: /var/lib/rancher/k3s
httpProxy: http://bob:xxxxx@proxy:3128
nodeName: edge-1
nodePortRange: 30000-32767
serviceCIDR: 10.43.0.0/16
writeKubeconfigMode: "0600"
`, out)
}

func TestInstallPrintConfigTakesProxyFromEnvironment(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://bob:hunter2@proxy.example:3128")
	t.Setenv("NO_PROXY", "corp.example")
	out, err := runCmd(t, newInstallCmd(), "--node-name", "edge-1", "--print-config")
	require.NoError(t, err)
	assert.Contains(t, out, "# The proxy comes from the environment (HTTPS_PROXY, NO_PROXY)")
	assert.Contains(t, out, "httpsProxy: http://bob:xxxxx@proxy.example:3128\n")
	assert.Contains(t, out, "noProxy:\n- corp.example\n")
	assert.NotContains(t, out, "hunter2")

	out, err = runCmd(t, newInstallCmd(), "--node-name", "edge-1", "--https-proxy", "http://other.example:8080", "--print-config")
	require.NoError(t, err)
	assert.NotContains(t, out, "proxy.example")
	assert.NotContains(t, out, "corp.example")
}

func TestInstallConfigErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--cni", "weave", "--print-config"},
		{"--config", "/nonexistent/install.yaml", "--dry-run"},
		{"--service-cidr", "10.42.0.0/16", "--dry-run"},
		{"-o", "yaml", "--print-config"},
		{"--no-such-flag"},
	} {
		_, err := runCmd(t, newInstallCmd(), args...)
		require.Error(t, err, args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(err), "%v: %v", args, err)
	}
}

func TestInstallWithoutBinaryIsRefusedBeforeAnything(t *testing.T) {
	// The unit tests build without the payload tag.
	_, err := runCmd(t, newInstallCmd(), "--dry-run", "--k3s-binary", "/nonexistent/k3s")
	require.Error(t, err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
	assert.Contains(t, err.Error(), "/nonexistent/k3s")
}

func TestInstallDataDirRefusals(t *testing.T) {
	_, err := runCmd(t, newInstallCmd(), "--dry-run", "--data-dir", "/usr")
	require.Error(t, err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
	assert.Contains(t, err.Error(), "is a system directory")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mine.txt"), nil, 0o600))
	_, err = runCmd(t, newInstallCmd(), "--dry-run", "--data-dir", dir, "--k3s-binary", "/nonexistent/k3s")
	require.Error(t, err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
	assert.Contains(t, err.Error(), "--data-dir-force")
	assert.Contains(t, err.Error(), "mine.txt")

	// Forced, the data dir passes; the run stops at the next check.
	_, err = runCmd(t, newInstallCmd(), "--dry-run", "--data-dir", dir, "--data-dir-force", "--k3s-binary", "/nonexistent/k3s")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "--data-dir-force")
	assert.Contains(t, err.Error(), "/nonexistent/k3s")
}

func TestInstallRefusesImageArchivesK3sWouldSkip(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"images.zip", "images.tar.xz", "images.txt", ".tar"} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
		_, err := runCmd(t, newInstallCmd(), "--dry-run", "--k3s-images", p)
		require.Error(t, err, name)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(err), name)
		assert.Contains(t, err.Error(), "K3s imports only image archives named", name)
		assert.Contains(t, err.Error(), "*.tar.zst", name)
	}
	for _, name := range []string{"a.tar", "a.tar.lz4", "a.tar.bz2", "a.tbz", "a.tar.gz", "a.tgz", "a.tar.zst", "a.tzst", "A.TAR.ZST"} {
		assert.NoError(t, installer.CheckImageArchive(filepath.Join(dir, name)), name)
	}
}

// The progress screen's closing addresses: the health-check URL the
// install asked from the host; before that is known, a NodePort install
// (servicelb disabled) names a node port, never :2020.
func TestInstallEndpointsHealthCheck(t *testing.T) {
	cfg := installer.Config{NodeIP: "192.0.2.10"}
	assert.Equal(t, []string{"API server: https://192.0.2.10:6443", "Health check: http://192.0.2.10:31234/api/v1/health"},
		installEndpoints(cfg, true, "http://192.0.2.10:31234/api/v1/health"))
	assert.Equal(t, "Health check: http://192.0.2.10:2020/api/v1/health", installEndpoints(cfg, true, "")[1])
	cfg.Disable = []string{"servicelb"}
	assert.Equal(t, "Health check: http://192.0.2.10:<node port>/api/v1/health (`tpctl pipeline endpoints` shows it)", installEndpoints(cfg, true, "")[1])
	assert.Len(t, installEndpoints(cfg, false, ""), 1)
}
