//go:build e2e

package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/supportbundle"
	"github.com/tpctl/tpctl/test/hosttest"
)

// TestSupportBundleOnBootedHost installs the node, takes a support bundle
// (every part collected, nothing failed), then stops k3s.service and takes
// another: the host side is still there and every cluster part is listed
// in the index as failed, with the reason. Both are bounded in time.
func TestSupportBundleOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-e2e-bundle", hosttest.Options{})
	ok := t.Run("install", func(t *testing.T) {
		r := tpctl(e.ctx(t, 10*time.Minute), e.h, nil, nil, installArgs(e.a.images)...)
		require.NoError(t, r.err, "%s", r)
	}) && t.Run("bundle of a running node", func(t *testing.T) {
		idx, files := e.supportBundle(t, "/tmp/bundle-up.tar.gz")
		// The K3s stand-in carries ctr but not crictl: those files fail
		// here (with K3s's binary they are collected) and say why.
		var failed []string
		for _, f := range failedEntries(idx) {
			if strings.Contains(f, "crictl is not provided by this launcher") {
				t.Logf("stand-in gap: %s", f)
				continue
			}
			failed = append(failed, f)
		}
		assert.Empty(t, failed, "failed parts")
		assert.NotEmpty(t, files["containerd/ctr-version.txt"])
		for _, p := range []string{"preflight.json", "status.json", "tpctl/state.json", "tpctl/install.log", "k3s/k3s.service",
			"k3s/journal.log", "k3s/config.yaml", "host/meminfo", "host/disk.json", "network/ip-addr.txt",
			"cluster/nodes.yaml", "cluster/pods.yaml", "cluster/events.txt", "cluster/coreinstances.yaml", "cluster/pipelines.yaml",
			"cluster/helm-releases.json", "containerd/crictl-ps.txt"} {
			assert.NotEmpty(t, files[p], "%s is missing or empty", p)
		}
		assert.Contains(t, string(files["status.json"]), `"installed": true`)
		assert.Contains(t, string(files["k3s/journal.log"]), "k3s")
		var rels []supportbundle.HelmRelease
		require.NoError(t, json.Unmarshal(files["cluster/helm-releases.json"], &rels))
		var deployed []string
		for _, r := range rels {
			if r.Status == "deployed" {
				deployed = append(deployed, r.Name+" "+r.Chart+" "+r.ChartVersion)
			}
		}
		t.Logf("deployed Helm releases: %v", deployed)
		assert.Len(t, deployed, 2, "the operator and the core instance releases")
		var opLogs int
		for p, d := range files {
			if strings.HasPrefix(p, "logs/operator/") && len(d) > 0 {
				opLogs++
			}
		}
		assert.Positive(t, opLogs, "no operator log in the bundle")
	}) && t.Run("bundle with the API server stopped", func(t *testing.T) {
		ctx := e.ctx(t, 5*time.Minute)
		_, err := e.h.Exec(ctx, "systemctl", "stop", "k3s.service")
		require.NoError(t, err)
		idx, files := e.supportBundle(t, "/tmp/bundle-down.tar.gz")
		clusterFailed := 0
		for _, f := range idx.Files {
			if f.Part == supportbundle.PartCluster {
				assert.NotEmpty(t, f.Error, "cluster part %s did not fail with the API server stopped", f.Path)
				clusterFailed++
			}
		}
		assert.Equal(t, 7, clusterFailed, "each cluster collector is noted: %v", failedEntries(idx))
		for _, p := range []string{"tpctl/state.json", "tpctl/install.log", "k3s/k3s.service", "k3s/journal.log",
			"k3s/config.yaml", "host/meminfo", "host/disk.json", "network/ip-addr.txt", "status.json", "preflight.json"} {
			assert.NotEmpty(t, files[p], "host part %s is missing with the API server stopped", p)
		}
		assert.Contains(t, string(files["k3s/journal.log"]), "Stopped", "the journal shows the stop")
		_, err = e.h.Exec(ctx, "systemctl", "start", "k3s.service")
		assert.NoError(t, err)
	})
	if ok {
		t.Run("uninstall", e.uninstall)
	}
}

// supportBundle runs `tpctl support-bundle` inside the host and returns its
// index (as printed by -o json and as stored in the archive) and files.
func (e *e2e) supportBundle(t *testing.T, out string) (supportbundle.Index, map[string][]byte) {
	t.Helper()
	ctx := e.ctx(t, 5*time.Minute)
	cmd := e.h.Command(ctx, tpctlBin, "support-bundle", "--output", out, "--since", "1h", "--collector-timeout", "30s", "--timeout", "3m", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
	took := time.Since(begin)
	t.Logf("progress:\n%s", stderr.String())
	var printed struct {
		Output string `json:"output"`
		supportbundle.Index
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &printed), stdout.String())
	assert.Equal(t, out, printed.Output)
	assert.Less(t, took, 4*time.Minute)

	mode, err := e.h.Exec(ctx, "stat", "-c", "%a", out)
	require.NoError(t, err)
	assert.Equal(t, "600", strings.TrimSpace(mode))
	raw, err := e.h.Exec(ctx, "cat", out)
	require.NoError(t, err)
	files := map[string][]byte{}
	zr, err := gzip.NewReader(strings.NewReader(raw))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		_, name, _ := strings.Cut(hdr.Name, "/")
		files[name] = b
	}
	var idx supportbundle.Index
	require.NoError(t, json.Unmarshal(files["index.json"], &idx))
	assert.Equal(t, len(printed.Files), len(idx.Files))
	for _, f := range idx.Files {
		if f.Error == "" {
			assert.Len(t, files[f.Path], f.Size, "index size of %s", f.Path)
		}
	}
	// K3s's token never leaves the host.
	if tok, err := e.h.Exec(ctx, "cat", "/var/lib/rancher/k3s/server/token"); err == nil && strings.TrimSpace(tok) != "" {
		tok = strings.TrimSpace(tok)
		for name, b := range files {
			assert.NotContains(t, string(b), tok, "the K3s token is in %s", name)
			if i := strings.LastIndexByte(tok, ':'); i >= 0 && len(tok)-i > 6 {
				assert.NotContains(t, string(b), tok[i+1:], "the K3s token's password is in %s", name)
			}
		}
	} else {
		t.Logf("no K3s token file on this node (%v): the token check did not run", err)
	}
	t.Logf("FIGURE support-bundle %s: %d files, %d failed, %d truncated, %d bytes compressed, %s (collect %s)",
		out, len(idx.Files), idx.Failed, idx.Trunc, len(raw), took.Round(time.Millisecond), idx.Took)
	return idx, files
}

func failedEntries(idx supportbundle.Index) []string {
	var out []string
	for _, f := range idx.Files {
		if f.Error != "" {
			out = append(out, f.Path+": "+f.Error)
		}
	}
	return out
}
