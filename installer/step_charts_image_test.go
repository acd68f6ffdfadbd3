package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/internal/operatorimage"
	"github.com/tpctl/tpctl/internal/operatorimage/imagetest"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// selfBuildInstall is a chart install whose payload has no operator image.
func selfBuildInstall(t *testing.T, exe string) *chartInstall {
	t.Helper()
	ci := newChartInstall(t, Config{}, "1.2.3")
	b, _ := testPayload(t) // K3s only
	ci.opts.Bundle = b
	ci.charts.Executable = func() (string, error) { return exe, nil }
	ci.opts.Charts = &ci.charts
	return ci
}

func TestOperatorImageBuiltFromTheRunningBinary(t *testing.T) {
	exe := imagetest.StaticBinary(t)
	bin, err := os.ReadFile(exe)
	require.NoError(t, err)
	want, err := operatorimage.Archive("v1.2.3", bin)
	require.NoError(t, err)
	ci := selfBuildInstall(t, exe)

	env := newEnv(ci.opts)
	stage := ci.charts.steps(env)[0]
	require.Equal(t, "stage operator image", stage.Name())
	done, err := stage.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done)
	rec := &recorder{}
	require.NoError(t, stage.Run(context.Background(), &stepEvents{ev: rec, step: stage.Name(), now: env.Now}))
	dst := filepath.Join(ImagesDir(env.Config), "tpctl-operator-1.2.3.tar")
	got, err := os.ReadFile(env.FS.Path(dst))
	require.NoError(t, err)
	assert.Equal(t, sha256Hex(want), sha256Hex(got))
	assert.Contains(t, env.State.Get().Created, Created{Path: dst, Kind: KindFile, Step: "stage operator image", Data: true})
	vals, err := env.charts.values("tp-operator")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"repository": "tpctl.local/tpctl-operator", "tag": "1.2.3", "pullPolicy": "IfNotPresent"}, vals["image"],
		"the chart points at the tag the archive carries")

	// Another run (another process): the same bytes are built again, so
	// the file is in place.
	env2 := newEnv(ci.opts)
	require.NoError(t, env2.State.Load())
	stage2 := ci.charts.steps(env2)[0]
	done, err = stage2.Done(context.Background())
	require.NoError(t, err)
	assert.True(t, done)
	files := stage2.(FileLister).Files()
	require.Len(t, files, 1)
	assert.Equal(t, "built from "+exe, files[0].Source)
	assert.Equal(t, sha256Hex(want), files[0].SHA256)

	// A file that was changed is not "done".
	require.NoError(t, os.WriteFile(env.FS.Path(dst), bytes.ToUpper(got), 0o644))
	done, err = stage2.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done)
}

func TestDynamicTpctlIsRefusedClearly(t *testing.T) {
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("needs /bin/true")
	}
	if err := operatorimage.CheckStatic("/bin/true"); err == nil {
		t.Skip("/bin/true is static on this system")
	}
	ci := selfBuildInstall(t, "/bin/true")
	plan, _, err := NewInstallPlan(context.Background(), ci.opts)
	require.NoError(t, err)
	dry := DryRun(context.Background(), plan)
	require.Equal(t, "stage operator image", dry.Steps[2].Name)
	assert.Equal(t, "fail", dry.Steps[2].Would, "the dry run says so too")
	assert.Contains(t, dry.Steps[2].Error, "dynamically linked")

	rec, err := ci.run(t)
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "stage operator image", se.Step, "refused before K3s is configured or started")
	assert.Contains(t, err.Error(), "dynamically linked")
	assert.NotContains(t, rec.of(EventStarted), "start K3s")
}

func TestTamperedPayloadImageIsRefused(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	ci.opts.Bundle = chartPayload(t, "1.2.3", true)
	_, err := ci.run(t)
	var mm *bundle.MismatchError
	require.ErrorAs(t, err, &mm)
	dir := filepath.Join(ci.root, ImagesDir(ci.opts.Config))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"fluent-bit-4.0.3.tar", "k3s-airgap-images-amd64.tar.zst"}, names,
		"the payload's images staged before are whole; nothing of the operator image is left")
}

func TestImportIntoRunningK3s(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	env := newEnv(ci.opts)
	imp := ci.charts.steps(env)[1]
	require.Equal(t, "import operator image", imp.Name())
	done, err := imp.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done, "no K3s yet")
	assert.Empty(t, ci.cluster.k3s, "and nobody asked it")

	for _, p := range []string{K3sBinaryPath, KubeconfigPath} {
		require.NoError(t, os.MkdirAll(filepath.Dir(env.FS.Path(p)), 0o755))
		require.NoError(t, os.WriteFile(env.FS.Path(p), nil, 0o600))
	}
	done, err = imp.Done(context.Background())
	require.NoError(t, err)
	assert.False(t, done, "containerd lacks the image")
	require.NoError(t, imp.Run(context.Background(), &recorder{}))
	assert.Equal(t, []string{env.FS.Path(filepath.Join(ImagesDir(env.Config), "tpctl-operator-1.2.3.tar"))}, ci.cluster.imports)
	done, err = imp.Done(context.Background())
	require.NoError(t, err)
	assert.True(t, done)

	failing := ci.charts
	failing.Ctr = func(context.Context, string, ...string) ([]byte, error) {
		return nil, errors.New("connect: no such file or directory")
	}
	imp = failing.steps(env)[1]
	_, err = imp.Done(context.Background())
	assert.ErrorContains(t, err, "list the node's images: connect: no such file or directory")
}

func TestChartSourcesPayloadOrBuiltIn(t *testing.T) {
	ci := newChartInstall(t, Config{}, "1.2.3")
	env := newEnv(ci.opts)
	r := &chartsRun{Charts: ci.charts, env: env, src: map[string]*chartSource{}}
	src, err := r.chart("tp-operator")
	require.NoError(t, err)
	assert.Equal(t, "payload:charts/tp-operator-1.2.3.tgz", src.from)
	assert.Equal(t, "1.2.3", src.version)

	// Without a payload: the charts built into tpctl, at its version.
	empty, err := bundle.New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	env.Bundle = empty
	r = &chartsRun{Charts: Charts{Version: "be72aee-dirty"}, env: env, src: map[string]*chartSource{}}
	src, err = r.chart("tp-core-instance")
	require.NoError(t, err)
	assert.Equal(t, "built into tpctl", src.from)
	assert.Equal(t, "0.0.0-be72aee-dirty", src.version)
}
