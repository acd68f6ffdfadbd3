package installer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func loadWith(t *testing.T, lookup func(string) (string, bool), args ...string) (Config, *ConfigFlags, error) {
	t.Helper()
	f := &ConfigFlags{}
	fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
	f.Register(fs)
	require.NoError(t, fs.Parse(args))
	c, err := f.Load(fs, os.ReadFile, fixedHost("host"), lookup)
	return c, f, err
}

func TestProxyFromEnvironmentWhenNoneConfigured(t *testing.T) {
	env := envOf(map[string]string{
		"https_proxy": "http://alice:s3cret@proxy.example:3128",
		"HTTP_PROXY":  "proxy.example:3128",     // no scheme: http://, as Go reads it
		"http_proxy":  "http://lower.example:1", // the upper-case name wins
		"NO_PROXY":    "corp.example, 10.0.0.0/8",
	})
	c, f, err := loadWith(t, env)
	require.NoError(t, err)
	assert.Equal(t, "http://proxy.example:3128", c.HTTPProxy)
	assert.Equal(t, "http://alice:s3cret@proxy.example:3128", c.HTTPSProxy)
	assert.Equal(t, []string{"corp.example", "10.0.0.0/8"}, c.NoProxy)
	assert.Equal(t, []string{"HTTP_PROXY", "NO_PROXY", "http_proxy", "https_proxy"}, f.ProxyEnv)
	b, err := RenderEnv(c)
	require.NoError(t, err)
	assert.Contains(t, string(b), "HTTPS_PROXY=http://alice:s3cret@proxy.example:3128\n")
	assert.Contains(t, string(b), "NO_PROXY=corp.example,10.0.0.0/8,localhost,")

	// Any proxy flag or key wins over the whole environment.
	for _, args := range [][]string{{"--https-proxy", "http://other:8080"}, {"--http-proxy", ""}, {"--no-proxy", "x.example"}} {
		c, f, err = loadWith(t, env, args...)
		require.NoError(t, err, args)
		assert.Empty(t, f.ProxyEnv, args)
		assert.NotEqual(t, "http://alice:s3cret@proxy.example:3128", c.HTTPSProxy, args)
		assert.NotContains(t, c.NoProxy, "corp.example", args)
	}
	file := t.TempDir() + "/install.yaml"
	require.NoError(t, os.WriteFile(file, []byte("noProxy: [y.example]\n"), 0o600))
	c, f, err = loadWith(t, env, "--config", file)
	require.NoError(t, err)
	assert.Empty(t, f.ProxyEnv)
	assert.Empty(t, c.HTTPSProxy)

	// A bad proxy from the environment names its variable and hides its password.
	_, _, err = loadWith(t, envOf(map[string]string{"HTTPS_PROXY": "ftp://bob:hunter2@proxy:21"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTPS_PROXY (from the environment)")
	assert.NotContains(t, err.Error(), "hunter2")
}

// Preflight and install tell the same story about the same environment.
func TestPreflightAndInstallAgreeOnEnvironmentProxy(t *testing.T) {
	vars := map[string]string{"HTTPS_PROXY": "http://alice:s3cret@proxy.example:3128", "no_proxy": "corp.example"}
	env := envOf(vars)
	c, f, err := loadWith(t, env)
	require.NoError(t, err)

	root := t.TempDir()
	rep, err := DefaultPreflight(root, nil, env)(context.Background(), c)
	require.NoError(t, err)
	msg := proxyResult(t, rep)
	assert.Contains(t, msg, "carried into K3s's environment file")
	assert.NotContains(t, msg, "s3cret")

	ti := newTestInstall(t, c)
	ti.opts.ProxyEnv = f.ProxyEnv
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	dry := DryRun(context.Background(), plan)
	js, err := json.Marshal(dry)
	require.NoError(t, err)
	assert.NotContains(t, string(js), "s3cret", "no password in the dry run")
	var envFile *FilePreview
	for _, s := range dry.Steps {
		for i := range s.Files {
			if s.Files[i].Path == EnvFilePath {
				envFile = &s.Files[i]
			}
		}
	}
	require.NotNil(t, envFile)
	assert.Contains(t, envFile.Note, "HTTPS_PROXY, no_proxy")
	var lines int
	for _, line := range strings.Split(envFile.Content, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines++
		assert.Contains(t, msg, line, "preflight announces every proxy line install writes")
	}
	assert.Equal(t, 2, lines, envFile.Content)

	// With a proxy of its own, install ignores the variables and preflight says so.
	c, _, err = loadWith(t, env, "--https-proxy", "http://other.example:8080")
	require.NoError(t, err)
	rep, err = DefaultPreflight(root, nil, env)(context.Background(), c)
	require.NoError(t, err)
	assert.Contains(t, proxyResult(t, rep), "not used: the install configuration sets the proxy")
}

func proxyResult(t *testing.T, rep preflight.Report) string {
	t.Helper()
	for _, r := range rep.Results {
		if r.Name == "Proxy" {
			return r.Message
		}
	}
	t.Fatal("no Proxy result")
	return ""
}

// A proxy password taken from the environment reaches K3s's environment
// file (0600, K3s needs it) and nothing else: not the events (plain or
// JSON), the install log, the state, the dry runs of install and
// uninstall, nor the summary.
func TestEnvironmentProxyPasswordStaysSecret(t *testing.T) {
	const sentinel = "Sentinel-Pw-51c0e"
	env := envOf(map[string]string{"HTTPS_PROXY": "http://alice:" + sentinel + "@proxy.example:3128", "HTTP_PROXY": "http://bob:" + sentinel + "@proxy.example:3128"})
	c, f, err := loadWith(t, env)
	require.NoError(t, err)
	ti := newTestInstall(t, c)
	ti.opts.ProxyEnv = f.ProxyEnv

	var outputs []string
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	js, err := json.Marshal(DryRun(context.Background(), plan))
	require.NoError(t, err)
	outputs = append(outputs, "install dry run: "+string(js))

	var plain, lines strings.Builder
	log, err := OpenLogFile(filepath.Join(ti.root, LogPath))
	require.NoError(t, err)
	plan, _, err = NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, Multi(NewPlain(&plain), NewJSONLines(&lines), log)))
	require.NoError(t, log.Close())
	outputs = append(outputs, "plain events: "+plain.String(), "JSON events: "+lines.String())
	logged, _ := ti.read(t, LogPath)
	state, mode := ti.read(t, StatePath)
	assert.Equal(t, os.FileMode(0o600), mode, "state")
	outputs = append(outputs, "install log: "+logged, "state: "+state)

	envFile, mode := ti.read(t, EnvFilePath)
	assert.Equal(t, os.FileMode(0o600), mode, "K3s's environment file holds the password: 0600")
	assert.Contains(t, envFile, "HTTPS_PROXY=http://alice:"+sentinel+"@proxy.example:3128", "K3s gets the real proxy")

	ops := DefaultHostOps()
	ops.ProcDir = filepath.Join(ti.root, "proc")
	ops.Links = func() ([]string, error) { return nil, nil }
	ops.LookPath = func(string) (string, error) { return "", errors.New("not here") }
	ops.Exec = func(context.Context, []byte, string, ...string) ([]byte, error) {
		return nil, errors.New("no programs here")
	}
	un, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: ops})
	require.NoError(t, err)
	js, err = json.Marshal(DryRun(context.Background(), un))
	require.NoError(t, err)
	outputs = append(outputs, "uninstall dry run: "+string(js))

	for _, out := range outputs {
		assert.NotContains(t, out, sentinel, "%.60s…", out)
	}
	assert.Contains(t, outputs[0], "alice:xxxxx@proxy.example", "the dry run shows the proxy, redacted")
}
