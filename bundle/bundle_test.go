package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// payload builds an in-memory payload whose manifest lists files.
func payload(t *testing.T, files map[string][]byte, arts ...Artifact) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	raw, err := json.Marshal(Manifest{SchemaVersion: SchemaVersion, K3sVersion: "v1.36.3+k3s1", Artifacts: arts})
	require.NoError(t, err)
	fsys[ManifestFile] = &fstest.MapFile{Data: raw}
	return fsys
}

func art(kind Kind, name, arch, file string, data []byte) Artifact {
	return Artifact{Name: name, Kind: kind, Arch: arch, Version: "v1", Size: int64(len(data)), SHA256: sum(data), File: file}
}

func completeFiles() (map[string][]byte, []Artifact) {
	files := map[string][]byte{
		"amd64/k3s":            []byte("k3s binary"),
		"amd64/images.tar.zst": []byte("images"),
		"charts/op.tgz":        []byte("operator chart"),
		"charts/ci.tgz":        []byte("core chart"),
		"amd64/operator.tar":   []byte("operator image"),
		"amd64/fluent-bit.tar": []byte("fluent bit image"),
		"arm64/k3s":            []byte("arm k3s"),
	}
	arts := []Artifact{
		art(KindK3sBinary, "k3s", "amd64", "amd64/k3s", files["amd64/k3s"]),
		art(KindK3sImages, "k3s-airgap-images", "amd64", "amd64/images.tar.zst", files["amd64/images.tar.zst"]),
		art(KindChart, ChartOperator, "", "charts/op.tgz", files["charts/op.tgz"]),
		art(KindChart, ChartCoreInstance, "", "charts/ci.tgz", files["charts/ci.tgz"]),
		art(KindOperatorImage, "tp-operator", "amd64", "amd64/operator.tar", files["amd64/operator.tar"]),
		art(KindPipelineImage, "fluent-bit", "amd64", "amd64/fluent-bit.tar", files["amd64/fluent-bit.tar"]),
		art(KindK3sBinary, "k3s", "arm64", "arm64/k3s", files["arm64/k3s"]),
	}
	return files, arts
}

func TestNewWithoutManifestReportsEveryRequirementMissing(t *testing.T) {
	b, err := New(fstest.MapFS{}, "amd64")
	require.NoError(t, err)
	assert.Nil(t, b.Manifest)
	assert.Empty(t, b.Present)
	require.Len(t, b.Missing, len(Required("amd64")))
	for i, m := range b.Missing {
		assert.Equal(t, Required("amd64")[i], m.Requirement)
		assert.Contains(t, m.Reason, "carries no payload")
	}
	assert.False(t, b.Complete())
	_, ok := b.Find(KindK3sBinary, "")
	assert.False(t, ok)
}

func TestNewCompletePayload(t *testing.T) {
	files, arts := completeFiles()
	b, err := New(payload(t, files, arts...), "amd64")
	require.NoError(t, err)
	assert.True(t, b.Complete(), "missing: %v", b.Missing)
	assert.Len(t, b.Present, 6, "the arm64 binary is not part of an amd64 bundle")
	k3s, ok := b.Find(KindK3sBinary, "")
	require.True(t, ok)
	assert.Equal(t, "amd64/k3s", k3s.File)
	chart, ok := b.Find(KindChart, ChartOperator)
	require.True(t, ok)
	assert.Equal(t, "charts/op.tgz", chart.File)
	assert.NoError(t, b.VerifyAll())
	d := b.Describe()
	assert.Equal(t, "v1.36.3+k3s1", d.K3sVersion)
	assert.True(t, d.Complete)
	assert.Equal(t, KindChart, d.Artifacts[0].Kind, "description is sorted by kind")
}

func TestNewSaysPreciselyWhatIsMissing(t *testing.T) {
	files, arts := completeFiles()
	delete(files, "amd64/images.tar.zst")        // listed, not embedded
	files["charts/ci.tgz"] = []byte("truncated") // wrong size
	arts = append(arts[:4:4], arts[5])           // operator image not listed
	b, err := New(payload(t, files, arts...), "amd64")
	require.NoError(t, err)
	var got []string
	for _, m := range b.Missing {
		got = append(got, m.String())
	}
	assert.Equal(t, []string{
		"k3s-images (amd64): listed in manifest.json as amd64/images.tar.zst but the file is not embedded",
		"chart tp-core-instance: charts/ci.tgz holds 9 bytes, manifest.json says 10",
		"operator-image (amd64): not listed in manifest.json",
	}, got)
}

func TestVerifyDetectsTampering(t *testing.T) {
	files, arts := completeFiles()
	fsys := payload(t, files, arts...)
	fsys["amd64/k3s"] = &fstest.MapFile{Data: []byte("k3s binarY")} // same size, other bytes
	b, err := New(fsys, "amd64")
	require.NoError(t, err)
	a, ok := b.Find(KindK3sBinary, "")
	require.True(t, ok)
	err = b.Verify(a)
	var mm *MismatchError
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, a.SHA256, mm.WantSHA256)
	assert.Contains(t, err.Error(), "refusing an altered artifact")
	assert.Error(t, b.VerifyAll())
}

func TestParseManifestErrorsNameTheField(t *testing.T) {
	good := art(KindK3sBinary, "k3s", "amd64", "amd64/k3s", []byte("x"))
	cases := map[string]struct {
		raw  string
		want []string
	}{
		"unknown field": {`{"schemaVersion":1,"artifacts":[],"extra":1}`, []string{`unknown field "extra"`}},
		"schema":        {`{"schemaVersion":2,"artifacts":[]}`, []string{"schemaVersion 2 is not supported"}},
		"trailing":      {`{"schemaVersion":1,"artifacts":[]} {}`, []string{"trailing data"}},
		"fields": {mustJSON(t, Manifest{SchemaVersion: 1, Artifacts: []Artifact{
			{Kind: "tarball", SHA256: "ABC", File: "../x", Size: -1},
			{Name: "c", Kind: KindChart, Arch: "amd64", SHA256: good.SHA256, File: "c.tgz"},
			{Name: "k", Kind: KindK3sImages, SHA256: good.SHA256, File: "c.tgz"},
		}}), []string{
			"artifacts[0].name: must not be empty",
			`artifacts[0].kind: "tarball" is not one of`,
			"artifacts[0].size: -1 is negative",
			"artifacts[0].sha256: want 64 hex digits",
			`artifacts[0].file: "../x" must be a clean relative path`,
			"artifacts[1].arch: a chart serves every architecture",
			"artifacts[2].arch: a k3s-images needs an architecture",
			`artifacts[2].file: "c.tgz" is also artifacts[1]`,
		}},
		"upper-case digest": {mustJSON(t, Manifest{SchemaVersion: 1, Artifacts: []Artifact{
			{Name: "k3s", Kind: KindK3sBinary, Arch: "amd64", SHA256: strings.ToUpper(good.SHA256), File: "k3s"},
		}}), []string{"is not lower-case hex"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.raw))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	m, err := ParseManifest([]byte(mustJSON(t, Manifest{SchemaVersion: 1, Artifacts: []Artifact{good}})))
	require.NoError(t, err)
	assert.Equal(t, good, m.Artifacts[0])
}

func TestNewRejectsBrokenManifest(t *testing.T) {
	_, err := New(fstest.MapFS{ManifestFile: {Data: []byte("{")}}, "amd64")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "embedded payload")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":1,"artifacts":[]}`))
	f.Add([]byte(`{"schemaVersion":1,"k3sVersion":"v1.36.3+k3s1","artifacts":[{"name":"k3s","kind":"k3s-binary","arch":"amd64","version":"v1","size":3,"sha256":"` + strings.Repeat("a", 64) + `","file":"amd64/k3s"}]}`))
	f.Add([]byte(`{"schemaVersion":1,"artifacts":[{"kind":"chart","file":"/etc/passwd"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseManifest(raw)
		if err != nil {
			return
		}
		// Whatever parses is valid, and every file stays inside the payload.
		require.NoError(t, m.Validate())
		for _, a := range m.Artifacts {
			assert.False(t, strings.HasPrefix(a.File, "/") || strings.HasPrefix(a.File, "../") || a.File == "..", a.File)
			assert.True(t, a.Kind.Valid())
			assert.Len(t, a.SHA256, 64)
		}
		// Re-encoding and parsing again gives the same manifest.
		again, err := ParseManifest([]byte(mustJSON(t, m)))
		require.NoError(t, err)
		assert.Equal(t, m, again)
	})
}

func TestWriteDescription(t *testing.T) {
	files, arts := completeFiles()
	delete(files, "amd64/operator.tar")
	b, err := New(payload(t, files, arts...), "amd64")
	require.NoError(t, err)
	var out strings.Builder
	require.NoError(t, WriteDescription(&out, b.Describe()))
	assert.Equal(t, `  k3s:      v1.36.3+k3s1
  payload (amd64):
    chart           tp-core-instance             v1                     10 B  sha256:`+sum([]byte("core chart"))+`
    chart           tp-operator                  v1                     14 B  sha256:`+sum([]byte("operator chart"))+`
    k3s-binary      k3s                          v1                     10 B  sha256:`+sum([]byte("k3s binary"))+`
    k3s-images      k3s-airgap-images            v1                      6 B  sha256:`+sum([]byte("images"))+`
    pipeline-image  fluent-bit                   v1                     16 B  sha256:`+sum([]byte("fluent bit image"))+`
    missing: operator-image (amd64): listed in manifest.json as amd64/operator.tar but the file is not embedded
`, out.String())
}
