package installer

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/preflight"
)

// For a K3s whose generated config imports no drop-in directory (the
// fake's default config, as K3s rendered it before its base templates
// imported config-v3.toml.d): when the K3s binary is replaced (an
// upgrade), the template derived for
// the previous binary is removed as the new binary is staged: the restart
// for the new binary is the one that makes K3s generate its own config,
// and the template derived from it is applied by one more restart. Two
// restarts in all, not one with the stale template, one to regenerate and
// one to apply.
func TestNewK3sBinaryRederivesTheTemplateWithTwoRestarts(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, RestrictOOMScoreAdj: true}
	empty, err := bundle.New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	ti.opts.Bundle = empty
	dir := t.TempDir()
	oldBin, newBin := filepath.Join(dir, "k3s-old"), filepath.Join(dir, "k3s-new")
	require.NoError(t, os.WriteFile(oldBin, []byte("k3s old"), 0o755))
	require.NoError(t, os.WriteFile(newBin, []byte("k3s new"), 0o755))
	ti.opts.Sources = Sources{K3sBinary: oldBin}
	_, err = ti.run(t)
	require.NoError(t, err)
	tmplPath := filepath.Join(ContainerdDir(ti.opts.Config), templateV3)
	tmpl, _ := ti.read(t, tmplPath)
	oldSum := sha256.Sum256([]byte("k3s old"))
	require.Equal(t, hex.EncodeToString(oldSum[:]), TemplateK3sSHA256([]byte(tmpl)))
	before := len(ti.k3s.Calls())

	// The new K3s generates a config of its own with a new table.
	ti.k3s.generated = append(ti.k3s.generated, []byte("\n[plugins.\"io.containerd.new.v1\"]\n  added = true\n")...)
	ti.opts.Sources = Sources{K3sBinary: newBin}
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"stage payload", "start K3s", "containerd template"}, rec.of(EventDone))
	assert.Equal(t, []string{"restart", "restart"}, ti.k3s.Calls()[before:],
		"once for the new binary (K3s generates its own config), once to apply the template derived from it")

	newSum := sha256.Sum256([]byte("k3s new"))
	tmpl, _ = ti.read(t, tmplPath)
	assert.Equal(t, hex.EncodeToString(newSum[:]), TemplateK3sSHA256([]byte(tmpl)), "derived for the new binary")
	assert.Contains(t, tmpl, "io.containerd.new.v1", "derived from the config the new K3s generated")
	gen, _ := ti.read(t, filepath.Join(ContainerdDir(ti.opts.Config), ContainerdConfigFile))
	assert.True(t, ContainerdTemplateApplied([]byte(gen)))
	assert.Equal(t, hex.EncodeToString(newSum[:]), TemplateK3sSHA256([]byte(gen)), "K3s runs with the new template")

	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, installSteps, rec.of(EventSkipped))
}
