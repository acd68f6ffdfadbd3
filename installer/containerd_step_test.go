package installer

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight"
)

// In a user namespace K3s sets restrict_oom_score_adj itself: no template,
// no restart.
func TestContainerdTemplateNotWrittenWhenK3sSetsTheKey(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, RestrictOOMScoreAdj: true}
	ti.k3s.generated = []byte(strings.Replace(string(ti.k3s.generated), "  enable_selinux = false\n", "  enable_selinux = false\n  restrict_oom_score_adj = true\n", 1))
	require.True(t, ContainerdTemplateApplied(ti.k3s.generated))
	_, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls(), "K3s is not restarted")
	assert.NoFileExists(t, filepath.Join(ti.root, ContainerdDir(ti.opts.Config), templateV3))
	assert.NoFileExists(t, filepath.Join(ti.root, ContainerdDir(ti.opts.Config), templateV2))

	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventSkipped), "containerd template")
	assert.Len(t, ti.k3s.Calls(), 2)
}

// A template derived from another K3s binary's config is derived again from
// the config the installed K3s generates.
func TestContainerdTemplateDerivedAgainWhenK3sChanges(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, RestrictOOMScoreAdj: true}
	_, err := ti.run(t)
	require.NoError(t, err)
	tmplPath := filepath.Join(ContainerdDir(ti.opts.Config), templateV3)
	tmpl, _ := ti.read(t, tmplPath)
	sum := TemplateK3sSHA256([]byte(tmpl))
	require.Len(t, sum, 64, "the template records the K3s binary")
	gen, _ := ti.read(t, filepath.Join(ContainerdDir(ti.opts.Config), ContainerdConfigFile))
	assert.Equal(t, sum, TemplateK3sSHA256([]byte(gen)))

	// As after an upgrade: the template records another binary, and the
	// installed K3s generates a config of its own with a new table.
	old := strings.Repeat("0", 64)
	writeRoot(t, ti.root, tmplPath, strings.Replace(tmpl, sum, old, 1))
	ti.k3s.generated = append(ti.k3s.generated, []byte("\n[plugins.\"io.containerd.new.v1\"]\n  added = true\n")...)
	require.NoError(t, ti.k3s.start()) // K3s renders from the stale template
	before := len(ti.k3s.Calls())

	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "containerd template")
	assert.Equal(t, []string{"restart", "restart"}, ti.k3s.Calls()[before:], "once to regenerate, once to apply")
	tmpl, _ = ti.read(t, tmplPath)
	assert.Equal(t, sum, TemplateK3sSHA256([]byte(tmpl)))
	assert.Contains(t, tmpl, `io.containerd.new.v1`, "derived from the new config")
	assert.Len(t, regexp.MustCompile(`(?m)^# tpctl: k3s sha256`).FindAllString(tmpl, -1), 1)
	gen, _ = ti.read(t, filepath.Join(ContainerdDir(ti.opts.Config), ContainerdConfigFile))
	assert.True(t, ContainerdTemplateApplied([]byte(gen)))
	assert.Contains(t, gen, "io.containerd.new.v1")

	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventSkipped), "containerd template")
}

func writeRoot(t *testing.T, root, p, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(content), 0o600))
}
