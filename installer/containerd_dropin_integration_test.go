//go:build integration

package installer_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// The containerd K3s 1.36 embeds (containerd 2; the stand-in runs the same
// release) merges tpctl's drop-in into the config K3s generates: `config
// dump` shows restrict_oom_score_adj = true in the CRI runtime table, with
// the table's other keys and the runc runtime K3s generated kept.
func TestContainerdMergesTheDropIn(t *testing.T) {
	bins, err := cluster.FindBinaries()
	require.NoError(t, err)
	ctrd := filepath.Join(bins.Dir, "containerd-"+launcher.ContainerdVersion())
	if _, err := os.Stat(ctrd); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("containerd %s is not built (scripts/test-deps builds it), and CI must run this test: %v", launcher.ContainerdVersion(), err)
		}
		t.Skipf("needs containerd %s (scripts/test-deps builds it): %v", launcher.ContainerdVersion(), err)
	}
	data := t.TempDir()
	c := installer.Config{DataDir: data}
	gen, _, err := launcher.ContainerdConfig(launcher.Layout{Data: data}, "pause:3")
	require.NoError(t, err)
	dropInDir := filepath.Join(installer.ContainerdDir(c), installer.ContainerdDropInDir)
	require.True(t, installer.ImportsDropIn(gen, dropInDir), "the generated config imports the drop-in directory:\n%s", gen)
	cfg := filepath.Join(installer.ContainerdDir(c), installer.ContainerdConfigFile)
	require.NoError(t, os.MkdirAll(dropInDir, 0o755))
	require.NoError(t, os.WriteFile(cfg, gen, 0o600))

	dump := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, ctrd, "--config", cfg, "config", "dump").CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	key := regexp.MustCompile(`(?m)^\s*restrict_oom_score_adj = (true|false)$`)
	m := key.FindStringSubmatch(dump())
	require.NotNil(t, m)
	assert.Equal(t, "false", m[1], "without the drop-in containerd's default applies")

	require.NoError(t, os.WriteFile(installer.ContainerdDropInPath(c), installer.RenderContainerdDropIn(), 0o600))
	out := dump()
	m = key.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, "true", m[1], "the drop-in's key is merged in:\n%s", out)
	assert.Regexp(t, `(?m)^\s*enable_unprivileged_ports = true$`, out, "the generated table's own keys stay")
	assert.Regexp(t, `(?m)^\s*\[plugins\.'io\.containerd\.cri\.v1\.runtime'\.containerd\.runtimes\.runc\]\n\s*runtime_type = 'io\.containerd\.runc\.v2'`, out, "the generated runc runtime stays")
	assert.Contains(t, out, filepath.Join(dropInDir, "*.toml"), "imported")
}
