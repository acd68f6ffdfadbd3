package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/preflight"
)

// withImports is a generated config as K3s renders it since its base
// templates import the drop-in directory (K3s 1.36): the imports line
// follows the version line.
func withImports(t *testing.T, gen []byte, c Config) []byte {
	t.Helper()
	line := `imports = ["` + filepath.Join(ContainerdDir(c), ContainerdDropInDir, "*.toml") + `"]` + "\n"
	out := strings.Replace(string(gen), "version = 3\n", "version = 3\n"+line, 1)
	require.NotEqual(t, string(gen), out)
	return []byte(out)
}

func TestImportsDropIn(t *testing.T) {
	dir := "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d"
	for _, tc := range []struct {
		gen  string
		want bool
	}{
		{"version = 3\nimports = [\"" + dir + "/*.toml\"]\n", true},
		{"version = 3\nimports = ['" + dir + "/*.toml']\n", true},
		{"version = 3\nimports = [\"/etc/other/*.toml\", \"" + dir + "//*.toml\"]\n", true},
		{"version = 3\nimports = [\"/etc/other/*.toml\"]\n", false},
		{"version = 3\nimports = [\"" + dir + "/*.conf\"]\n", false},
		{"version = 3\n# imports = [\"" + dir + "/*.toml\"]\n", false},
		{"version = 3\n", false},
	} {
		assert.Equal(t, tc.want, ImportsDropIn([]byte(tc.gen), dir), tc.gen)
	}
}

// A K3s whose generated config imports the drop-in directory (K3s 1.36):
// the drop-in is written before K3s first starts, so K3s starts once and
// is never restarted for restrict_oom_score_adj; no template is written.
func TestInstallWithoutCapSysResourceWritesDropInAndStartsOnce(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, RestrictOOMScoreAdj: true}
	ti.k3s.generated = withImports(t, ti.k3s.generated, ti.opts.Config)
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls(), "K3s starts once, with the drop-in")
	assert.Contains(t, rec.of(EventDone), "containerd drop-in")
	assert.Contains(t, rec.of(EventSkipped), "containerd template", "the generated config imports the drop-in: nothing to derive")
	got, mode := ti.read(t, ContainerdDropInPath(ti.opts.Config))
	assert.Equal(t, string(RenderContainerdDropIn()), got)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Contains(t, got, "[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n")
	assert.NoFileExists(t, filepath.Join(ti.root, ContainerdDir(ti.opts.Config), templateV3))
	assert.NoFileExists(t, filepath.Join(ti.root, ContainerdDir(ti.opts.Config), templateV2))
	st, err := LoadState(filepath.Join(ti.root, StatePath), ti.opts.Now)
	require.NoError(t, err)
	created := map[string]bool{}
	for _, c := range st.Get().Created {
		created[c.Path] = true
	}
	assert.True(t, created[ContainerdDropInPath(ti.opts.Config)], "recorded for uninstall")

	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, installSteps, rec.of(EventSkipped))
	assert.Len(t, ti.k3s.Calls(), 2)
}

// Without the drop-in in place, a config that imports the directory is
// not enough: the check derives a template as for a K3s without imports.
func TestContainerdCheckWantsTheDropInItself(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{CgroupVersion: 2, RestrictOOMScoreAdj: true}
	ti.k3s.generated = withImports(t, ti.k3s.generated, ti.opts.Config)
	s := &containerdStep{env: &Env{Options: Options{Config: ti.opts.Config}, FS: &HostFS{Root: ti.root}}}
	assert.False(t, s.dropInActive(ti.k3s.generated), "no drop-in on disk")
	p := filepath.Join(ti.root, ContainerdDropInPath(ti.opts.Config))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("version = 3\n"), 0o600))
	assert.False(t, s.dropInActive(ti.k3s.generated), "a drop-in with other content")
	require.NoError(t, os.WriteFile(p, RenderContainerdDropIn(), 0o600))
	assert.True(t, s.dropInActive(ti.k3s.generated))
	assert.False(t, s.dropInActive([]byte("version = 3\n")), "a config without the import")
}

// An upgrade from a host whose template was derived for the previous K3s
// binary (a K3s whose config imported no drop-in, or an older tpctl) to a
// K3s whose config imports the drop-in directory: the stale template goes
// as the binary is staged, the drop-in is written, and K3s restarts once.
func TestNewK3sBinaryWithDropInRestartsOnce(t *testing.T) {
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
	require.FileExists(t, filepath.Join(ti.root, tmplPath), "the old K3s's config imports no drop-in: a template was derived")
	before := len(ti.k3s.Calls())

	ti.k3s.generated = withImports(t, ti.k3s.generated, ti.opts.Config)
	ti.opts.Sources = Sources{K3sBinary: newBin}
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"stage payload", "start K3s"}, rec.of(EventDone))
	assert.Equal(t, []string{"restart"}, ti.k3s.Calls()[before:], "once, for the new binary")
	assert.NoFileExists(t, filepath.Join(ti.root, tmplPath), "the stale template is gone")
	gen, _ := ti.read(t, filepath.Join(ContainerdDir(ti.opts.Config), ContainerdConfigFile))
	assert.False(t, ownGenerated([]byte(gen)), "K3s renders its own base config")
	assert.True(t, ImportsDropIn([]byte(gen), filepath.Join(ContainerdDir(ti.opts.Config), ContainerdDropInDir)))

	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, installSteps, rec.of(EventSkipped))

	// And from there to a third binary: one restart again.
	newer := filepath.Join(dir, "k3s-newer")
	require.NoError(t, os.WriteFile(newer, []byte("k3s newer"), 0o755))
	ti.opts.Sources = Sources{K3sBinary: newer}
	before = len(ti.k3s.Calls())
	_, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"restart"}, ti.k3s.Calls()[before:])
}

// The user's own template is accepted when K3s's config rendered from it
// imports the drop-in (it includes K3s's base).
func TestForeignTemplateWithBaseAcceptedWithDropIn(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.facts = preflight.Facts{RestrictOOMScoreAdj: true}
	ti.opts.DataDirForce = true
	ti.k3s.generated = withImports(t, ti.k3s.generated, ti.opts.Config)
	p := filepath.Join(ti.root, ContainerdDir(ti.opts.Config), templateV3)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	user := "{{ template \"base\" . }}\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.custom]\n  runtime_type = \"io.containerd.runc.v2\"\n"
	require.NoError(t, os.WriteFile(p, []byte(user), 0o600))
	_, err := ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls())
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, user, string(b), "the user's template is left alone")
}
