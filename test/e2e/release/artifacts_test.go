//go:build integration

package release

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/registrytest"
)

// fakeK3sRelease writes a directory laid out like a K3s release (binaries,
// air-gap image archives, sha256sum-<arch>.txt) whose files are small
// stand-ins: the real release cannot be downloaded in this build
// environment, and the release path only copies, hashes and embeds them.
func fakeK3sRelease(t *testing.T, dir string) map[string]string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	digests := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		bin := "k3s"
		if arch != "amd64" {
			bin = "k3s-" + arch
		}
		var sums strings.Builder
		for _, f := range []string{bin, "k3s-airgap-images-" + arch + ".tar.zst"} {
			p := filepath.Join(dir, f)
			require.NoError(t, os.WriteFile(p, []byte("stand-in for "+f+" of a K3s release\n"), 0o644))
			digests[f] = sha256File(t, p)
			fmt.Fprintf(&sums, "%s  %s\n", digests[f], f)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "sha256sum-"+arch+".txt"), []byte(sums.String()), 0o644))
	}
	return digests
}

type versionJSON struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Variant string `json:"variant"`
	Payload struct {
		Arch       string `json:"arch"`
		K3sVersion string `json:"k3sVersion"`
		Complete   bool   `json:"complete"`
		Artifacts  []struct {
			Name, Kind, Arch, Version, SHA256 string
			Size                              int64
		} `json:"artifacts"`
		Missing []struct {
			Requirement struct{ Kind string } `json:"requirement"`
		} `json:"missing"`
	} `json:"payload"`
}

func tpctlVersion(t *testing.T, bin string) (versionJSON, string) {
	t.Helper()
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	require.NoError(t, err)
	var v versionJSON
	require.NoError(t, json.Unmarshal(out, &v), string(out))
	table, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	return v, string(table)
}

func headCommit(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", moduleRoot(t), "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("needs git to know the commit: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestReleaseFromLocalArtifacts builds the release from a directory of K3s
// release files (the path `scripts/release --artifacts DIR` and the fetch
// path share) and checks what `tpctl version` reports about it.
func TestReleaseFromLocalArtifacts(t *testing.T) {
	const k3sVersion = "v1.36.3+k3s1"
	work := t.TempDir()
	k3s := filepath.Join(work, "k3s")
	digests := fakeK3sRelease(t, k3s)
	commit := headCommit(t)

	// The Fluent Bit image comes from a registry on loopback, by digest.
	reg := registrytest.Start(t, "fluent/fluent-bit:5.1.1")
	fluentBit := []string{"FLUENT_BIT_MIRROR=" + reg.Host, "FLUENT_BIT_DIGEST=" + reg.Index.String()}

	dist := filepath.Join(work, "dist")
	out, err := buildRelease(t, dist, append([]string{"K3S_VERSION=" + k3sVersion}, fluentBit...), "--artifacts", k3s)
	require.NoError(t, err, out)
	assert.NotContains(t, out, "NO K3S PAYLOAD")
	assert.NotContains(t, out, "NO PIPELINE IMAGE")

	name := binaryName()
	sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
	assert.Equal(t, []string{"install.sh", name}, keys(sums), "SHA256SUMS lists the binary and install.sh")
	for f, sum := range sums {
		assert.Equal(t, sum, sha256File(t, filepath.Join(dist, f)), f)
	}
	script, err := os.ReadFile(filepath.Join(dist, "install.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(script), "TPCTL_BASE_URL=${TPCTL_BASE_URL:-https://github.com/tpctl/tpctl/releases/download/",
		"install.sh defaults to its own release")

	v, table := tpctlVersion(t, filepath.Join(dist, name))
	assert.Equal(t, commit, v.Commit)
	assert.NotEmpty(t, v.Date, "the commit time is stamped")
	assert.Equal(t, "release", v.Variant)
	assert.Equal(t, runtime.GOARCH, v.Payload.Arch)
	assert.Equal(t, k3sVersion, v.Payload.K3sVersion)
	assert.True(t, v.Payload.Complete, "missing: %+v", v.Payload.Missing)
	bin := "k3s"
	if runtime.GOARCH != "amd64" {
		bin = "k3s-" + runtime.GOARCH
	}
	got := map[string]string{}
	for _, a := range v.Payload.Artifacts {
		assert.Len(t, a.SHA256, 64, "%s %s has a digest", a.Kind, a.Name)
		got[a.Kind+" "+a.Name] = a.SHA256
	}
	assert.Equal(t, digests[bin], got["k3s-binary k3s"])
	assert.Equal(t, digests["k3s-airgap-images-"+runtime.GOARCH+".tar.zst"], got["k3s-images k3s-airgap-images"])
	assert.Contains(t, got, "chart tp-operator")
	assert.Contains(t, got, "chart tp-core-instance")
	assert.Contains(t, got, "operator-image tpctl-operator")
	assert.Contains(t, got, "pipeline-image fluent-bit")
	for _, a := range v.Payload.Artifacts {
		if a.Kind == "pipeline-image" {
			assert.Equal(t, "5.1.1", a.Version, "the tag of the pinned image")
		}
	}
	assert.NotContains(t, table, "NO K3S PAYLOAD")
	assert.Contains(t, table, "k3s:      "+k3sVersion)
	assert.Contains(t, table, "sha256:"+digests[bin])

	t.Run("a K3s file that does not match its checksum stops the release", func(t *testing.T) {
		bad := filepath.Join(work, "bad")
		fakeK3sRelease(t, bad)
		require.NoError(t, os.WriteFile(filepath.Join(bad, "k3s-airgap-images-arm64.tar.zst"), []byte("altered"), 0o644))
		badDist := filepath.Join(work, "bad-dist")
		out, err := buildRelease(t, badDist, []string{"K3S_VERSION=" + k3sVersion}, "--artifacts", bad)
		require.Error(t, err)
		assert.Contains(t, out, "k3s-airgap-images-arm64.tar.zst: sha256")
		_, err = os.Stat(filepath.Join(badDist, name))
		assert.ErrorIs(t, err, os.ErrNotExist, "nothing is released")
	})

	t.Run("a Fluent Bit image that is not the pinned one stops the release", func(t *testing.T) {
		badDist := filepath.Join(work, "fb-dist")
		other := "sha256:" + strings.Repeat("ab", 32)
		out, err := buildRelease(t, badDist, []string{"K3S_VERSION=" + k3sVersion, "FLUENT_BIT_MIRROR=" + reg.Host, "FLUENT_BIT_DIGEST=" + other}, "--artifacts", k3s)
		require.Error(t, err)
		assert.Contains(t, out, "the Fluent Bit image could not be fetched")
		assert.Contains(t, out, other)
		_, err = os.Stat(filepath.Join(badDist, name))
		assert.ErrorIs(t, err, os.ErrNotExist, "nothing is released")

		// Without a pinned digest nothing is fetched by tag.
		out, err = buildRelease(t, badDist, []string{"K3S_VERSION=" + k3sVersion, "FLUENT_BIT_MIRROR=" + reg.Host, "FLUENT_BIT_DIGEST="}, "--artifacts", k3s)
		require.Error(t, err)
		assert.Contains(t, out, "no digest is pinned for docker.io/fluent/fluent-bit:5.1.1")
		assert.Contains(t, out, "--no-pipeline-image")
	})

	t.Run("an incomplete artifacts directory stops the release", func(t *testing.T) {
		partial := filepath.Join(work, "partial")
		fakeK3sRelease(t, partial)
		require.NoError(t, os.Remove(filepath.Join(partial, "k3s-arm64")))
		out, err := buildRelease(t, filepath.Join(work, "partial-dist"), nil, "--artifacts", partial)
		require.Error(t, err)
		assert.Contains(t, out, "has no k3s-arm64")
	})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
