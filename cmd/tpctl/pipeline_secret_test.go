package main

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

const secretSentinel = "zq-SENTINEL-7c1e-do-not-print"

func secretRun(t *testing.T, m *managetest.Memory, env map[string]string, args ...string) mgmtResult {
	t.Helper()
	d := mgmtDeps(m, false)
	d.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r := mgmtRun(t, newPipelineCmdWith(d), "", args...)
	assert.NotContains(t, r.out, secretSentinel, "stdout of %v", args)
	assert.NotContains(t, r.errOut, secretSentinel, "stderr of %v", args)
	if r.err != nil {
		assert.NotContains(t, r.err.Error(), secretSentinel, "error of %v", args)
	}
	return r
}

func revision(m *managetest.Memory, name string) string {
	return m.Pipeline(name).Labels[v1alpha1.LabelSecretsRevision]
}

func TestPipelineSecretsNeverPrinted(t *testing.T) {
	m := mgmtCluster(t)
	env := map[string]string{"FROM_ENV": secretSentinel + "-env"}
	file := mgmtFile(t, "s.env", "# file\nFILE_KEY='"+secretSentinel+"-file'\nTOKEN=overridden\n")
	r := secretRun(t, m, env, "create", "--name", "fwd", "--port", "tcp/5170", "--secret", "TOKEN="+secretSentinel,
		"--secret", "FROM_ENV", "--secrets-file", file)
	require.NoError(t, r.err, r.errOut)
	assert.Contains(t, r.errOut, `Secret "fwd-secrets" of pipeline "fwd" holds: FILE_KEY, FROM_ENV, TOKEN (values not shown)`)
	assert.Equal(t, map[string]string{"TOKEN": secretSentinel, "FROM_ENV": secretSentinel + "-env", "FILE_KEY": secretSentinel + "-file"},
		m.SecretValues("fwd"), "--secret wins over the file")
	rev := revision(m, "fwd")
	assert.NotEmpty(t, rev)

	for _, args := range [][]string{
		{"get", "fwd"}, {"get", "fwd", "-o", "yaml"}, {"get", "fwd", "-o", "json"}, {"list"}, {"list", "-o", "yaml"},
		{"export"}, {"export", "fwd"}, {"secret", "list", "fwd"}, {"secret", "list", "fwd", "-o", "json"}, {"secret", "list", "fwd", "-o", "yaml"},
		{"update", "fwd", "--image", "example/fb:1", "-o", "yaml"}, {"create", "--name", "dry", "--secret", "A=" + secretSentinel, "--dry-run", "-o", "yaml"},
	} {
		r := secretRun(t, m, env, args...)
		require.NoError(t, r.err, "%v: %s", args, r.errOut)
	}

	r = secretRun(t, m, env, "get", "fwd")
	assert.Contains(t, r.out, "Secrets (Secret fwd-secrets, values not shown):")
	assert.Regexp(t, `TOKEN\s+`+strconv.Itoa(len(secretSentinel))+` bytes`, r.out)
	r = secretRun(t, m, env, "secret", "list", "fwd", "-o", "json")
	var keys []manage.SecretKey
	require.NoError(t, json.Unmarshal([]byte(r.out), &keys))
	assert.Equal(t, []manage.SecretKey{{Name: "FILE_KEY", Size: len(secretSentinel) + 5}, {Name: "FROM_ENV", Size: len(secretSentinel) + 4},
		{Name: "TOKEN", Size: len(secretSentinel)}}, keys)
	r = secretRun(t, m, env, "export")
	assert.Contains(t, r.errOut, `note: pipeline "fwd" has secrets that are not exported: FILE_KEY, FROM_ENV, TOKEN`)
	assert.NotContains(t, r.out, "secrets-revision", "tpctl's label is not exported")
	assert.Nil(t, m.Pipeline("dry"), "a dry run creates nothing")
	assert.Equal(t, rev, revision(m, "fwd"), "a spec change keeps the secrets revision")
}

func TestPipelineSecretSetUnsetRollThePods(t *testing.T) {
	m := mgmtCluster(t)
	r := secretRun(t, m, nil, "create", "--name", "fwd", "--port", "tcp/5170")
	require.NoError(t, r.err, r.errOut)
	assert.Empty(t, revision(m, "fwd"), "no secrets, no Secret")
	assert.Nil(t, m.SecretValues("fwd"))

	r = secretRun(t, m, nil, "secret", "list", "fwd")
	require.NoError(t, r.err)
	assert.Equal(t, "pipeline \"fwd\" has no secrets\n", r.out)

	// update with secrets only.
	r = secretRun(t, m, nil, "update", "fwd", "--secret", "A="+secretSentinel)
	require.NoError(t, r.err, r.errOut)
	rev1 := revision(m, "fwd")
	require.NotEmpty(t, rev1)

	r = secretRun(t, m, nil, "secret", "set", "fwd", "B=2", "--dry-run")
	require.NoError(t, r.err)
	assert.Equal(t, "Secret \"fwd-secrets\" of pipeline \"fwd\" would hold (dry run): A, B (values not shown)\n", r.out)
	assert.Equal(t, map[string]string{"A": secretSentinel}, m.SecretValues("fwd"))
	assert.Equal(t, rev1, revision(m, "fwd"))

	r = secretRun(t, m, nil, "secret", "set", "fwd", "B=2")
	require.NoError(t, r.err)
	rev2 := revision(m, "fwd")
	assert.NotEqual(t, rev1, rev2, "a change rolls the pods")

	r = secretRun(t, m, nil, "secret", "set", "fwd", "B=2")
	require.NoError(t, r.err)
	assert.Equal(t, rev2, revision(m, "fwd"), "the same value again changes nothing")

	r = secretRun(t, m, nil, "secret", "unset", "fwd", "A", "--dry-run")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "would hold (dry run): B")
	assert.Len(t, m.SecretValues("fwd"), 2)

	r = secretRun(t, m, nil, "secret", "unset", "fwd", "A")
	require.NoError(t, r.err)
	assert.Equal(t, map[string]string{"B": "2"}, m.SecretValues("fwd"))
	assert.NotEqual(t, rev2, revision(m, "fwd"))

	// Errors: a missing key, a missing pipeline, a bad name; nothing changes.
	rev3 := revision(m, "fwd")
	r = secretRun(t, m, nil, "secret", "unset", "fwd", "NOPE")
	assert.EqualError(t, r.err, `pipeline "fwd" has no secret NOPE; existing: B`)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	r = secretRun(t, m, nil, "secret", "set", "nope", "A=1")
	assert.ErrorContains(t, r.err, `pipeline "nope" not found in namespace "tp"; existing: fwd`)
	r = secretRun(t, m, nil, "secret", "set", "fwd", "bad-name="+secretSentinel)
	assert.ErrorContains(t, r.err, `secret name "bad-name" is not a valid environment variable name`)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	r = secretRun(t, m, nil, "update", "fwd", "--image", "x/y:1", "--secret", "ok=1", "--secret", "1x="+secretSentinel)
	assert.ErrorContains(t, r.err, `"1x" is not a valid environment variable name`)
	assert.Empty(t, m.Pipeline("fwd").Spec.Image, "a bad secret stops the whole update")
	r = secretRun(t, m, nil, "secret", "set", "fwd", secretSentinel)
	assert.ErrorContains(t, r.err, "not shown, in case it is a value")
	r = secretRun(t, m, nil, "secret", "set", "fwd", "UNSET_VAR")
	assert.ErrorContains(t, r.err, "no environment variable UNSET_VAR is set")
	r = secretRun(t, m, nil, "secret", "set", "fwd")
	assert.ErrorContains(t, r.err, "nothing to set")
	r = secretRun(t, m, nil, "create", "--name", "x", "--config-file", "-", "--secrets-file", "-")
	assert.ErrorContains(t, r.err, "cannot both read stdin")
	assert.Equal(t, rev3, revision(m, "fwd"))
	assert.Equal(t, map[string]string{"B": "2"}, m.SecretValues("fwd"))

	// --from-file, and the Secret goes with the pipeline.
	r = secretRun(t, m, nil, "secret", "set", "fwd", "--from-file", mgmtFile(t, "s.yaml", "C: \""+secretSentinel+"\"\n"))
	require.NoError(t, r.err, r.errOut)
	assert.Equal(t, map[string]string{"B": "2", "C": secretSentinel}, m.SecretValues("fwd"))
	r = secretRun(t, m, nil, "delete", "fwd", "--yes")
	require.NoError(t, r.err)
	assert.Nil(t, m.SecretValues("fwd"))
}
