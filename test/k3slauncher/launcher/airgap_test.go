package launcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an ImportFunc that records the archives it was given.
type recorder struct {
	got  []string
	fail map[string]bool
}

func (r *recorder) imp(_ context.Context, p string) ([]string, error) {
	r.got = append(r.got, filepath.Base(p))
	if r.fail[filepath.Base(p)] {
		return nil, errors.New("broken archive")
	}
	return []string{"example/" + filepath.Base(p) + ":1"}, nil
}

func write(t *testing.T, p, content string, mtime time.Time) {
	t.Helper()
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	require.NoError(t, os.Chtimes(p, mtime, mtime))
}

// Every archive is imported at every start; other files are not.
func TestImportAtStartWithoutCache(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, filepath.Join(dir, "b.tar"), "bb", t0)
	write(t, filepath.Join(dir, "a.tar.zst"), "a", t0)
	write(t, filepath.Join(dir, "notes.md"), "x", t0)
	for range 2 {
		r := &recorder{}
		require.NoError(t, newAirGap(dir, r.imp, t.Logf).importAtStart(context.Background()))
		assert.Equal(t, []string{"a.tar.zst", "b.tar"}, r.got)
	}
	_, err := os.Stat(filepath.Join(dir, ".cache.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no cache unless the user creates one")

	r := &recorder{fail: map[string]bool{"b.tar": true}}
	assert.ErrorContains(t, newAirGap(dir, r.imp, t.Logf).importAtStart(context.Background()), "b.tar")
}

// With an (empty) .cache.json, the first start records the archives and
// the next skips those whose size and modification time did not change.
func TestImportCacheSkipsUnchanged(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, filepath.Join(dir, "a.tar"), "a", t0)
	write(t, filepath.Join(dir, "b.tar"), "b", t0)
	write(t, filepath.Join(dir, ".cache.json"), "", t0)
	r := &recorder{}
	require.NoError(t, newAirGap(dir, r.imp, t.Logf).importAtStart(context.Background()))
	assert.Equal(t, []string{"a.tar", "b.tar"}, r.got)

	write(t, filepath.Join(dir, "b.tar"), "b2", t0.Add(time.Minute))
	r = &recorder{}
	require.NoError(t, newAirGap(dir, r.imp, t.Logf).importAtStart(context.Background()))
	assert.Equal(t, []string{"b.tar"}, r.got, "a.tar is unchanged, b.tar changed")

	r = &recorder{}
	require.NoError(t, newAirGap(dir, r.imp, t.Logf).importAtStart(context.Background()))
	assert.Empty(t, r.got)

	write(t, filepath.Join(dir, ".cache.json"), "{not json", t0)
	assert.ErrorContains(t, newAirGap(dir, r.imp, t.Logf).importAtStart(context.Background()), ".cache.json")
}

// While running, an archive that appears is imported once it held still
// for a poll; one that changes (new size, later time) is imported again;
// a failed import is retried only after the archive changes.
func TestWatcherImportsNewArchives(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, filepath.Join(dir, "a.tar"), "a", t0)
	write(t, filepath.Join(dir, ".cache.json"), "", t0)
	r := &recorder{fail: map[string]bool{"bad.tar": true}}
	a := newAirGap(dir, r.imp, t.Logf)
	ctx := context.Background()
	require.NoError(t, a.importAtStart(ctx))
	r.got = nil

	a.scan(ctx)
	assert.Empty(t, r.got, "nothing new")
	write(t, filepath.Join(dir, "new.tar"), "n", t0)
	write(t, filepath.Join(dir, "bad.tar"), "x", t0)
	a.scan(ctx)
	assert.Empty(t, r.got, "a new archive waits one poll")
	a.scan(ctx)
	assert.Equal(t, []string{"bad.tar", "new.tar"}, r.got)
	r.got = nil
	a.scan(ctx)
	assert.Empty(t, r.got, "no retry of an unchanged archive")

	write(t, filepath.Join(dir, "a.tar"), "a-bigger", t0.Add(time.Minute))
	a.scan(ctx)
	a.scan(ctx)
	assert.Equal(t, []string{"a.tar"}, r.got)

	// Same size, later time: not imported again (K3s's rule).
	r.got = nil
	write(t, filepath.Join(dir, "new.tar"), "m", t0.Add(2*time.Minute))
	a.scan(ctx)
	a.scan(ctx)
	assert.Empty(t, r.got)

	cache, err := a.loadCache()
	require.NoError(t, err)
	assert.Contains(t, cache, filepath.Join(dir, "new.tar"), "the watcher's imports are recorded")
	assert.NotContains(t, cache, filepath.Join(dir, "bad.tar"))
}

func TestImportedRefs(t *testing.T) {
	out := "unpacking tpctl.test/pause:1 (sha256:0123)...done\nunpacking docker.io/rancher/klipper-lb:v0.4.9 (sha256:ab)...done\n"
	assert.Equal(t, []string{"tpctl.test/pause:1", "docker.io/rancher/klipper-lb:v0.4.9"}, ImportedRefs([]byte(out)))
	assert.Empty(t, ImportedRefs([]byte("ctr: unrecognized image format\n")))
}
