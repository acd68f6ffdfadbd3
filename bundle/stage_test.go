package bundle

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// dirEntries lists a directory's names, so tests can prove no temporary file
// was left behind.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestStageWritesVerifiesAndSkipsOnRerun(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(t, 3*stageBufSize+17)
	want := Expect{SHA256: sum(data), Size: int64(len(data))}
	dst := filepath.Join(dir, "k3s")
	var last int64
	res, err := Stage(context.Background(), bytes.NewReader(data), dst, 0o755, want, func(n int64) { last = n })
	require.NoError(t, err)
	assert.False(t, res.Skipped)
	assert.False(t, res.Existed)
	assert.Equal(t, want.SHA256, res.SHA256)
	assert.Equal(t, int64(len(data)), last, "progress reaches the full size")
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	st, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	assert.Equal(t, []string{"k3s"}, dirEntries(t, dir))

	// Second run: the file is there with the right bytes: nothing is read
	// from the source, nothing is written.
	mtime := st.ModTime()
	res, err = Stage(context.Background(), failingReader{}, dst, 0o755, want, nil)
	require.NoError(t, err)
	assert.True(t, res.Skipped)
	assert.True(t, res.Existed)
	st, err = os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, mtime, st.ModTime())
}

func TestStageFixesModeWithoutRewriting(t *testing.T) {
	dir := t.TempDir()
	data := []byte("secret")
	dst := filepath.Join(dir, "env")
	require.NoError(t, os.WriteFile(dst, data, 0o644))
	res, err := Stage(context.Background(), failingReader{}, dst, 0o600, Expect{SHA256: sum(data), Size: 6}, nil)
	require.NoError(t, err)
	assert.False(t, res.Skipped, "a mode change is a change")
	st, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestStageRefusesTamperedSourceAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(t, 2*stageBufSize)
	want := Expect{SHA256: sum(data), Size: int64(len(data))}
	tampered := bytes.Clone(data)
	tampered[stageBufSize+5] ^= 0xff
	dst := filepath.Join(dir, "images.tar")
	_, err := Stage(context.Background(), bytes.NewReader(tampered), dst, 0o644, want, nil)
	var mm *MismatchError
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, sum(tampered), mm.GotSHA256)
	assert.Empty(t, dirEntries(t, dir), "neither the target nor a temporary file remains")

	// A truncated source is refused on its size.
	_, err = Stage(context.Background(), bytes.NewReader(data[:100]), dst, 0o644, want, nil)
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, int64(100), mm.GotSize)
	assert.Contains(t, err.Error(), "size 100")
	assert.Empty(t, dirEntries(t, dir))
}

func TestStageTamperedSourceKeepsThePreviousFile(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "k3s")
	require.NoError(t, os.WriteFile(dst, []byte("old good file"), 0o755))
	data := []byte("new release")
	_, err := Stage(context.Background(), strings.NewReader("new releasX"), dst, 0o755, Expect{SHA256: sum(data), Size: 11}, nil)
	require.Error(t, err)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "old good file", string(got))
	assert.Equal(t, []string{"k3s"}, dirEntries(t, dir))
}

func TestStageReplacesPartialTarget(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(t, stageBufSize+1)
	want := Expect{SHA256: sum(data), Size: int64(len(data))}
	dst := filepath.Join(dir, "k3s")
	// What a crash in the middle of a plain write would leave: a prefix.
	require.NoError(t, os.WriteFile(dst, data[:1000], 0o755))
	res, err := Stage(context.Background(), bytes.NewReader(data), dst, 0o755, want, nil)
	require.NoError(t, err)
	assert.False(t, res.Skipped)
	assert.True(t, res.Existed)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	// Same size, other bytes: also replaced.
	other := bytes.Clone(data)
	other[0] ^= 1
	require.NoError(t, os.WriteFile(dst, other, 0o755))
	res, err = Stage(context.Background(), bytes.NewReader(data), dst, 0o755, want, nil)
	require.NoError(t, err)
	assert.False(t, res.Skipped)
	got, err = os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

func TestStageRemovesLeftoverTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	// A run killed before its rename leaves a hidden temporary file; the
	// next run removes it, writes its own and succeeds.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".k3s.tpctl-123"), []byte("partial"), 0o600))
	data := []byte("k3s")
	_, err := Stage(context.Background(), bytes.NewReader(data), filepath.Join(dir, "k3s"), 0o755, Expect{SHA256: sum(data), Size: 3}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"k3s"}, dirEntries(t, dir))
}

func TestStageWithoutDigestHashesAndSkipsIdentical(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "k3s")
	data := []byte("user supplied binary")
	res, err := Stage(context.Background(), bytes.NewReader(data), dst, 0o755, Expect{Size: -1}, nil)
	require.NoError(t, err)
	assert.Equal(t, sum(data), res.SHA256)
	assert.False(t, res.Skipped)
	res, err = Stage(context.Background(), bytes.NewReader(data), dst, 0o755, Expect{Size: -1}, nil)
	require.NoError(t, err)
	assert.True(t, res.Skipped)
	assert.Equal(t, []string{"k3s"}, dirEntries(t, dir))
}

func TestStageCancelledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	data := randomBytes(t, 4*stageBufSize)
	_, err := Stage(ctx, bytes.NewReader(data), filepath.Join(dir, "k3s"), 0o755, Expect{Size: -1}, func(n int64) {
		if n >= stageBufSize {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, dirEntries(t, dir))
}

func TestStageReadErrorLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	_, err := Stage(context.Background(), io.MultiReader(strings.NewReader("abc"), failingReader{}), filepath.Join(dir, "k3s"), 0o755, Expect{Size: -1}, nil)
	require.ErrorIs(t, err, errBroken)
	assert.Empty(t, dirEntries(t, dir))
}

func TestStageRefusesNonRegularTarget(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "k3s"), 0o755))
	_, err := Stage(context.Background(), strings.NewReader("x"), filepath.Join(dir, "k3s"), 0o755, Expect{Size: -1}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")
}

func TestStageDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a 1 MiB tmpfs to fill it")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tpctl-test", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("needs permission to mount tmpfs (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { assert.NoError(t, syscall.Unmount(dir, 0)) })

	// An older, smaller file is in place; the new one does not fit.
	dst := filepath.Join(dir, "images.tar")
	require.NoError(t, os.WriteFile(dst, []byte("previous"), 0o644))
	data := randomBytes(t, 2*stageBufSize)
	_, err := Stage(context.Background(), bytes.NewReader(data), dst, 0o644, Expect{SHA256: sum(data), Size: int64(len(data))}, nil)
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, []string{"images.tar"}, dirEntries(t, dir), "the temporary file is gone")
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "previous", string(got))

	// The space is free again: a file that fits stages fine.
	small := randomBytes(t, 256<<10)
	_, err = Stage(context.Background(), bytes.NewReader(small), dst, 0o644, Expect{SHA256: sum(small), Size: int64(len(small))}, nil)
	require.NoError(t, err)
}

func TestStageArtifactFromPayload(t *testing.T) {
	files, arts := completeFiles()
	fsys := payload(t, files, arts...)
	b, err := New(fsys, "amd64")
	require.NoError(t, err)
	a, ok := b.Find(KindK3sBinary, "")
	require.True(t, ok)
	dir := t.TempDir()
	res, err := b.StageArtifact(context.Background(), a, filepath.Join(dir, "k3s"), 0o755, nil)
	require.NoError(t, err)
	assert.Equal(t, a.SHA256, res.SHA256)

	// The embedded bytes were altered after the manifest was written.
	fsys["amd64/k3s"] = &fstest.MapFile{Data: []byte("k3s binarY")}
	_, err = b.StageArtifact(context.Background(), a, filepath.Join(dir, "k3s-2"), 0o755, nil)
	var mm *MismatchError
	require.ErrorAs(t, err, &mm)
	assert.Contains(t, err.Error(), "k3s-binary k3s v1 (amd64)")
	assert.Equal(t, []string{"k3s"}, dirEntries(t, dir))
}

var errBroken = errors.New("broken source")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errBroken }
