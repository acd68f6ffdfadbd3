package manage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	parsers := writeTemp(t, dir, "my-parsers.conf", "[PARSER]\n    Name json\n")
	lua := writeTemp(t, dir, "filter.lua", "function f(tag, ts, r) return 1, ts, r end\n")
	got, err := manage.ReadFiles([]string{"parsers.conf=" + parsers, lua})
	require.NoError(t, err)
	assert.Equal(t, map[string]v1alpha1.FileContent{
		"parsers.conf": "[PARSER]\n    Name json\n",
		"filter.lua":   "function f(tag, ts, r) return 1, ts, r end\n",
	}, got)

	big := writeTemp(t, dir, "big.pem", strings.Repeat("x", v1alpha1.MaxFileBytes+1))
	exact := writeTemp(t, dir, "exact.pem", strings.Repeat("x", v1alpha1.MaxFileBytes))
	binary := writeTemp(t, dir, "bin", "\xff\xfe\x00")
	for _, tc := range []struct {
		spec []string
		want string
	}{
		{[]string{"ca.pem=" + big}, `file "ca.pem" (` + big + `): larger than 262144 bytes (256 KiB), the most a pipeline file may hold (all files together: 524288, 512 KiB)`},
		{[]string{"bin=" + binary}, `not UTF-8 text`},
		{[]string{"a/b=" + lua}, `only letters, digits, '-', '_' and '.'`},
		{[]string{"pipeline.yaml=" + lua}, `the configuration's own file name`},
		{[]string{"..x=" + lua}, `'..'`},
		{[]string{"x=" + lua, "x=" + parsers}, `file "x" is given twice`},
		{[]string{"x="}, `needs NAME=PATH or PATH`},
		{[]string{"x=" + filepath.Join(dir, "missing")}, `no such file`},
	} {
		_, err := manage.ReadFiles(tc.spec)
		require.Error(t, err, tc.spec)
		assert.Contains(t, err.Error(), tc.want)
	}
	got, err = manage.ReadFiles([]string{"a=" + exact})
	require.NoError(t, err, "a file of exactly the limit")
	assert.Len(t, got["a"], v1alpha1.MaxFileBytes)
}

func TestFileFlags(t *testing.T) {
	dir := t.TempDir()
	lua := writeTemp(t, dir, "filter.lua", "return\n")
	change := func(create bool, args ...string) (manage.PipelineChange, error) {
		var pf manage.PipelineFlags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		pf.Register(fs, create)
		require.NoError(t, fs.Parse(args))
		return pf.Change(fs, nil)
	}
	c, err := change(true, "--file", "f.lua="+lua)
	require.NoError(t, err)
	require.NotNil(t, c.Files)
	assert.Equal(t, map[string]v1alpha1.FileContent{"f.lua": "return\n"}, c.Files.Set)
	assert.False(t, c.IsEmpty())

	c, err = change(false, "--remove-file", "old.lua")
	require.NoError(t, err)
	assert.Equal(t, []string{"old.lua"}, c.Files.Remove)
	assert.Nil(t, c.Files.Set)

	_, err = change(false, "--file", "f.lua="+lua, "--remove-file", "f.lua")
	require.ErrorContains(t, err, `file "f.lua" is both set and removed`)
	_, err = change(false, "--remove-file", "a/b")
	require.ErrorContains(t, err, "only letters")

	c, err = change(false, "--image", "x")
	require.NoError(t, err)
	assert.Nil(t, c.Files, "no file flag keeps the files")
}

func TestPipelineFilesCreateUpdateRemove(t *testing.T) {
	ctx := context.Background()
	m := newStore(t)
	p := manage.NewPipeline(ns, "parse", "core", manage.PipelineChange{
		Config: &v1alpha1.PipelineConfig{Content: "service:\n  parsers_file: /fluent-bit/etc/tpctl/parsers.conf\n"},
		Files:  &manage.FileChange{Set: map[string]v1alpha1.FileContent{"parsers.conf": "[PARSER]\n"}},
	})
	_, err := m.CreatePipeline(ctx, p, nil, manage.WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []manage.PipelineFile{{Name: "parsers.conf", Size: 9}}, manage.PipelineFiles(m.Pipeline("parse")))

	// Update adds and replaces, keeping the others.
	got, err := m.UpdatePipeline(ctx, "parse", manage.PipelineChange{Files: &manage.FileChange{
		Set: map[string]v1alpha1.FileContent{"f.lua": "return", "parsers.conf": "[PARSER]\n    Name x\n"}}}, manage.WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []manage.PipelineFile{{Name: "f.lua", Size: 6}, {Name: "parsers.conf", Size: 20}}, manage.PipelineFiles(got))
	assert.NotEmpty(t, got.Spec.Config.Content, "the configuration is kept")

	// A dry run stores nothing.
	before := m.Pipeline("parse")
	got, err = m.UpdatePipeline(ctx, "parse", manage.PipelineChange{Files: &manage.FileChange{Remove: []string{"f.lua"}}}, manage.WriteOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []manage.PipelineFile{{Name: "parsers.conf", Size: 20}}, manage.PipelineFiles(got))
	assert.Equal(t, before, m.Pipeline("parse"))

	// Removing a file it lacks is refused, naming the existing ones.
	_, err = m.UpdatePipeline(ctx, "parse", manage.PipelineChange{Files: &manage.FileChange{Remove: []string{"nope.lua"}}}, manage.WriteOptions{})
	var nf *manage.FileNotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, `pipeline "parse" has no file nope.lua; existing: f.lua, parsers.conf`, err.Error())
	assert.Equal(t, before, m.Pipeline("parse"))

	// Removing the last file leaves no files map.
	_, err = m.UpdatePipeline(ctx, "parse", manage.PipelineChange{Files: &manage.FileChange{Remove: []string{"f.lua", "parsers.conf"}}}, manage.WriteOptions{})
	require.NoError(t, err)
	assert.Nil(t, m.Pipeline("parse").Spec.Files)
	assert.Empty(t, manage.PipelineFiles(m.Pipeline("parse")))
}

func TestPipelineFilesTotalIsBounded(t *testing.T) {
	ctx := context.Background()
	m := newStore(t)
	half := v1alpha1.FileContent(strings.Repeat("x", v1alpha1.MaxFileBytes))
	p := manage.NewPipeline(ns, "big", "core", manage.PipelineChange{Files: &manage.FileChange{Set: map[string]v1alpha1.FileContent{"a": half, "b": half}}})
	_, err := m.CreatePipeline(ctx, p, nil, manage.WriteOptions{})
	require.NoError(t, err, "512 KiB together is allowed")
	_, err = m.UpdatePipeline(ctx, "big", manage.PipelineChange{Files: &manage.FileChange{Set: map[string]v1alpha1.FileContent{"c": "x"}}}, manage.WriteOptions{})
	var inv *manage.InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Contains(t, err.Error(), "files: 524289 bytes together, more than the 524288 (512 KiB) a pipeline's files may hold")
	assert.Len(t, m.Pipeline("big").Spec.Files, 2)

	p = manage.NewPipeline(ns, "reserved", "core", manage.PipelineChange{Files: &manage.FileChange{Set: map[string]v1alpha1.FileContent{"pipeline.conf": "x"}}})
	_, err = m.CreatePipeline(ctx, p, nil, manage.WriteOptions{})
	require.ErrorAs(t, err, &inv)
	assert.Contains(t, err.Error(), "the configuration's own file name")
}

// Files are part of the spec: export writes them and apply puts them back.
func TestFilesRoundTripThroughExportAndApply(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	p := manage.NewPipeline(ns, "parse", "core", manage.PipelineChange{
		Config: &v1alpha1.PipelineConfig{Content: "pipeline:\n  inputs:\n    - name: dummy\n"},
		Files:  &manage.FileChange{Set: map[string]v1alpha1.FileContent{"parsers.conf": "[PARSER]\n    Name x\n", "ca.pem": "-----BEGIN CERTIFICATE-----\nMII\n"}},
	})
	_, err := src.CreatePipeline(ctx, p, nil, manage.WriteOptions{})
	require.NoError(t, err)
	exported, err := manage.ExportPipelines(ctx, src, []string{"parse"})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, manage.WriteExport(&buf, exported))
	assert.Contains(t, buf.String(), "files:\n")

	dst := newStore(t)
	res := apply(t, dst, buf.String(), manage.ApplyOptions{})
	assert.Equal(t, []string{"parse created"}, actions(res))
	assert.Equal(t, src.Pipeline("parse").Spec.Files, dst.Pipeline("parse").Spec.Files)
	assert.Equal(t, []string{"parse unchanged"}, actions(apply(t, dst, buf.String(), manage.ApplyOptions{})))

	// A changed file shows in apply's diff and is written.
	changed := strings.Replace(buf.String(), "Name x", "Name y", 1)
	res = apply(t, dst, changed, manage.ApplyOptions{DryRun: true})
	assert.Equal(t, []string{"parse updated"}, actions(res))
	assert.Contains(t, res[0].Diff, "Name y")
	assert.Equal(t, src.Pipeline("parse").Spec.Files, dst.Pipeline("parse").Spec.Files, "dry run")
	apply(t, dst, changed, manage.ApplyOptions{})
	assert.Equal(t, v1alpha1.FileContent("[PARSER]\n    Name y\n"), dst.Pipeline("parse").Spec.Files["parsers.conf"])
}
