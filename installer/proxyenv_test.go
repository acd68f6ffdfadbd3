package installer

import (
	"context"
	"encoding/json"
	"os"
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
