package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testDataDir = "/var/lib/rancher/k3s"
	testK3s     = "v1.33.4+k3s1"
	testTpctl   = "v0.5.0"
)

var testNow = time.Date(2026, 12, 7, 15, 30, 0, 0, time.UTC)

// kineSchema is kine's SQLite table (the columns kine creates).
const kineSchema = `CREATE TABLE IF NOT EXISTS kine (
	id INTEGER PRIMARY KEY AUTOINCREMENT, name INTEGER, created INTEGER, deleted INTEGER,
	create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB)`

// fakeCluster is a Cluster with a fixed answer.
type fakeCluster struct {
	mu      sync.Mutex
	inv     Inventory
	invErr  error
	nodeErr error
	calls   int
	since   time.Time
}

func (f *fakeCluster) Inventory(_ context.Context, since time.Time) (Inventory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.since = since
	return f.inv, f.invErr
}

func (f *fakeCluster) NodeReady(_ context.Context, since time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since = since
	return f.nodeErr
}

// fakeUnits records the unit calls.
type fakeUnits struct {
	calls []string
	// onStart runs when k3s is started (tests check the files then).
	onStart func()
}

func (u *fakeUnits) StopAndDisable(_ context.Context, unit string) error {
	u.calls = append(u.calls, "stop "+unit)
	return nil
}

func (u *fakeUnits) EnableAndStart(_ context.Context, unit string) error {
	u.calls = append(u.calls, "start "+unit)
	if u.onStart != nil {
		u.onStart()
	}
	return nil
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), mode))
}

func writeState(t *testing.T, root, dataDir, k3s string) {
	t.Helper()
	st := map[string]any{
		"version": 1, "completed": true, "steps": map[string]any{}, "created": []any{},
		"config": map[string]any{"dataDir": dataDir, "nodeName": "node1"},
		"k3s":    map[string]any{"version": k3s},
	}
	b, err := json.Marshal(st)
	require.NoError(t, err)
	writeFile(t, filepath.Join(root, "var/lib/tpctl/state.json"), string(b), 0o600)
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "wal_autocheckpoint(0)")
	db, err := sql.Open("sqlite", sqliteURI(path, q))
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(kineSchema)
	require.NoError(t, err)
	return db
}

func insertRows(t *testing.T, db *sql.DB, prefix string, n int) {
	t.Helper()
	tx, err := db.Begin()
	require.NoError(t, err)
	for i := range n {
		_, err := tx.Exec("INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value) VALUES (?, 1, 0, 0, 0, 0, ?)",
			fmt.Sprintf("/registry/%s/%d", prefix, i), []byte("v"))
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
}

// node builds a host tree with an installed node: state, datastore (WAL,
// left open so its rows are in the WAL file), token, tls, cred.
func node(t *testing.T) (string, *sql.DB) {
	t.Helper()
	root := t.TempDir()
	writeState(t, root, testDataDir, testK3s)
	server := filepath.Join(root, testDataDir, "server")
	require.NoError(t, os.MkdirAll(filepath.Join(server, "db"), 0o700))
	db := openDB(t, filepath.Join(server, "db", "state.db"))
	insertRows(t, db, "pipelines", 25)
	writeFile(t, filepath.Join(server, "token"), "K10secret-token::server:abc\n", 0o600)
	writeFile(t, filepath.Join(server, "tls", "server-ca.crt"), "CERT server-ca", 0o644)
	writeFile(t, filepath.Join(server, "tls", "server-ca.key"), "KEY server-ca", 0o600)
	writeFile(t, filepath.Join(server, "tls", "etcd", "server-ca.crt"), "CERT etcd", 0o644)
	writeFile(t, filepath.Join(server, "tls", "service.key"), "KEY service", 0o600)
	writeFile(t, filepath.Join(server, "cred", "passwd"), "secret,server,server,k3s:server", 0o600)
	writeFile(t, filepath.Join(root, "etc/rancher/k3s/config.yaml"), "node-name: node1\n", 0o600)
	writeFile(t, filepath.Join(root, "etc/rancher/node/password"), "nodepass\n", 0o600)
	return root, db
}

func testInventory() Inventory {
	return Inventory{
		CoreInstances: []Object{{Namespace: "tp", Name: "core", Ready: true}},
		Pipelines:     []Object{{Namespace: "tp", Name: "p1", Ready: true, Frontends: []string{"TCP/2200", "UDP/5170"}}},
	}
}

func create(t *testing.T, root string) (Manifest, string) {
	t.Helper()
	m, path, err := Create(context.Background(), Options{
		Root: root, TpctlVersion: testTpctl, Cluster: &fakeCluster{inv: testInventory()}, Now: func() time.Time { return testNow },
	})
	require.NoError(t, err)
	return m, path
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func readEntries(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, entry{hdr: *h, data: b})
	}
}

func writeEntries(t *testing.T, path string, es []entry) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		h := e.hdr
		h.Size = int64(len(e.data))
		require.NoError(t, tw.WriteHeader(&h))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCreateLayoutManifestAndModes(t *testing.T) {
	root, _ := node(t)
	m, path := create(t, root)

	assert.Equal(t, filepath.Join(root, DefaultDir, "tpctl-backup-20261207T153000Z.tar.gz"), path)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "archive mode")
	di, err := os.Stat(filepath.Join(root, DefaultDir))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "backup dir mode")

	assert.Equal(t, FormatVersion, m.Format)
	assert.Equal(t, testTpctl, m.TpctlVersion)
	assert.Equal(t, testK3s, m.K3sVersion)
	assert.Equal(t, testDataDir, m.DataDir)
	assert.Equal(t, "node1", m.NodeName)
	assert.Equal(t, testNow, m.CreatedAt)
	assert.Equal(t, int64(25), m.Datastore.Rows)
	assert.Equal(t, int64(25), m.Datastore.Revision)
	require.NotNil(t, m.Inventory)
	assert.Equal(t, testInventory(), *m.Inventory)

	es := readEntries(t, path)
	require.NotEmpty(t, es)
	assert.Equal(t, ManifestName, es[0].hdr.Name, "the manifest is the first entry")
	var names []string
	for _, e := range es[1:] {
		names = append(names, e.hdr.Name)
		assert.Equal(t, int64(0o600), e.hdr.Mode, e.hdr.Name)
		p, ok := m.part(e.hdr.Name)
		require.True(t, ok, "entry %s is in the manifest", e.hdr.Name)
		assert.Equal(t, p.SHA256, sum(e.data), e.hdr.Name)
		assert.Equal(t, p.Size, int64(len(e.data)), e.hdr.Name)
	}
	assert.Equal(t, []string{
		DBPart, TokenPart,
		"k3s/server/tls/etcd/server-ca.crt", "k3s/server/tls/server-ca.crt", "k3s/server/tls/server-ca.key", "k3s/server/tls/service.key",
		"k3s/server/cred/passwd", StatePart, "etc/rancher/k3s/config.yaml", "etc/rancher/node/password",
	}, names)
	assert.Len(t, m.Parts, len(names))
	tok, _ := m.part(TokenPart)
	assert.Equal(t, "/var/lib/rancher/k3s/server/token", tok.Source)

	// The manifest holds digests, never the secrets themselves.
	assert.NotContains(t, string(es[0].data), "secret-token")
	assert.NotContains(t, string(es[0].data), "KEY server-ca")

	// List shows it.
	list, err := List(filepath.Join(root, DefaultDir))
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "tpctl-backup-20261207T153000Z.tar.gz", list[0].Name)
	assert.Equal(t, testK3s, list[0].K3sVersion)
	assert.Equal(t, testTpctl, list[0].TpctlVersion)
	assert.Equal(t, fi.Size(), list[0].Size)
	assert.Equal(t, "manual", list[0].Reason)

	// The staging directory is gone.
	ents, err := os.ReadDir(filepath.Join(root, "var/lib/tpctl"))
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".backup-"), "staging %s left behind", e.Name())
	}
}

func TestCreateOutputAndReason(t *testing.T) {
	root, _ := node(t)
	out := filepath.Join(t.TempDir(), "snap.tar.gz")
	m, path, err := Create(context.Background(), Options{Root: root, Output: out, Reason: "pre-upgrade", TpctlVersion: testTpctl,
		Cluster: &fakeCluster{invErr: errors.New("connection refused")}, Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	assert.Equal(t, out, path)
	assert.Equal(t, "pre-upgrade", m.Reason)
	assert.Nil(t, m.Inventory)
	assert.Equal(t, "connection refused", m.InventoryError)
	assert.Equal(t, "tpctl-backup-20261207T153000Z-pre-upgrade.tar.gz", ArchiveName(testNow, "pre-upgrade"))
	_, err = os.Stat(filepath.Join(root, DefaultDir))
	assert.ErrorIs(t, err, os.ErrNotExist, "an explicit output leaves the default directory alone")
}

func TestCreateRefusesWithoutInstall(t *testing.T) {
	root := t.TempDir()
	_, _, err := Create(context.Background(), Options{Root: root, TpctlVersion: testTpctl})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no completed install")
}

// A writer keeps committing transactions of 10 rows into the WAL (no
// checkpoint) while the backup copies the database: the copy opens, passes
// the integrity check and holds whole transactions only, at least those
// committed before the copy started.
func TestCreateWhileWriting(t *testing.T) {
	root, db := node(t)
	var committed atomic.Int64
	committed.Store(25)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := db.Begin()
			if err != nil {
				done <- err
				return
			}
			for j := range 10 {
				if _, err := tx.Exec("INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value) VALUES (?, 1, 0, 0, 0, 0, ?)",
					fmt.Sprintf("/registry/w/%d/%d", i, j), bytes.Repeat([]byte("x"), 512)); err != nil {
					tx.Rollback()
					done <- err
					return
				}
			}
			if err := tx.Commit(); err != nil {
				done <- err
				return
			}
			committed.Add(10)
		}
	}()
	// Let the writer fill the WAL before the copy.
	require.Eventually(t, func() bool { return committed.Load() >= 2000 }, 30*time.Second, 10*time.Millisecond)
	before := committed.Load()
	wal, err := os.Stat(filepath.Join(root, testDataDir, "server/db/state.db-wal"))
	require.NoError(t, err)
	assert.Positive(t, wal.Size(), "rows are in the WAL")

	out := filepath.Join(t.TempDir(), "b.tar.gz")
	m, _, err := Create(context.Background(), Options{Root: root, Output: out, TpctlVersion: testTpctl})
	close(stop)
	require.NoError(t, err)
	require.NoError(t, <-done)

	assert.GreaterOrEqual(t, m.Datastore.Rows, before, "the copy holds every row committed before it started")
	assert.Equal(t, int64(5), m.Datastore.Rows%10, "whole transactions only (25 + 10n)")
	assert.Equal(t, m.Datastore.Rows, m.Datastore.Revision)

	// Extract and open the copy independently.
	dir := t.TempDir()
	_, err = Verify(out, dir)
	require.NoError(t, err)
	copyDB, err := sql.Open("sqlite", sqliteURI(filepath.Join(dir, filepath.FromSlash(DBPart)), url.Values{"mode": {"ro"}}))
	require.NoError(t, err)
	defer copyDB.Close()
	var n int64
	require.NoError(t, copyDB.QueryRow("SELECT COUNT(*) FROM kine WHERE name LIKE '/registry/pipelines/%'").Scan(&n))
	assert.Equal(t, int64(25), n)
	require.NoError(t, copyDB.QueryRow("SELECT COUNT(*) FROM kine").Scan(&n))
	assert.Equal(t, m.Datastore.Rows, n)
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(DBPart)))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestVerifyRefusals(t *testing.T) {
	root, _ := node(t)
	_, path := create(t, root)
	orig := readEntries(t, path)

	tamper := func(t *testing.T, f func([]entry) []entry) string {
		t.Helper()
		es := make([]entry, len(orig))
		for i, e := range orig {
			es[i] = entry{hdr: e.hdr, data: append([]byte(nil), e.data...)}
		}
		p := filepath.Join(t.TempDir(), "t.tar.gz")
		writeEntries(t, p, f(es))
		return p
	}
	idx := func(es []entry, name string) int {
		for i, e := range es {
			if e.hdr.Name == name {
				return i
			}
		}
		t.Fatalf("no entry %s", name)
		return -1
	}
	editManifest := func(es []entry, f func(*Manifest)) []entry {
		var m Manifest
		require.NoError(t, json.Unmarshal(es[0].data, &m))
		f(&m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		es[0].data = b
		return es
	}

	cases := []struct {
		name, part, text string
		edit             func([]entry) []entry
	}{
		{"changed token", TokenPart, "sha256", func(es []entry) []entry {
			i := idx(es, TokenPart)
			es[i].data[0] ^= 1
			return es
		}},
		{"changed database", DBPart, "sha256", func(es []entry) []entry {
			i := idx(es, DBPart)
			es[i].data[len(es[i].data)-1] ^= 1
			return es
		}},
		{"truncated key", "k3s/server/tls/service.key", "size", func(es []entry) []entry {
			i := idx(es, "k3s/server/tls/service.key")
			es[i].data = es[i].data[:3]
			return es
		}},
		{"missing part", "k3s/server/cred/passwd", "not in the archive", func(es []entry) []entry {
			i := idx(es, "k3s/server/cred/passwd")
			return append(es[:i], es[i+1:]...)
		}},
		{"extra part", "k3s/server/tls/extra.key", "not in the manifest", func(es []entry) []entry {
			return append(es, entry{hdr: tar.Header{Name: "k3s/server/tls/extra.key", Mode: 0o600, Typeflag: tar.TypeReg}, data: []byte("x")})
		}},
		{"escaping name", "../../etc/passwd", "not a clean relative path", func(es []entry) []entry {
			return editManifest(es, func(m *Manifest) {
				m.Parts = append(m.Parts, Part{Path: "../../etc/passwd", SHA256: strings.Repeat("0", 64)})
			})
		}},
		{"newer format", "manifest format", "format 2", func(es []entry) []entry {
			return editManifest(es, func(m *Manifest) { m.Format = 2 })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(tamper(t, c.edit), "")
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.part)
			assert.Contains(t, err.Error(), c.text)
		})
	}
	_, err := Verify(path, "")
	require.NoError(t, err, "the untouched archive verifies")
}

// snapshotTree maps every file below root to its content and mode.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			out[rel+"/"] = fi.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = fi.Mode().String() + " " + sum(b)
		return nil
	}))
	return out
}

// freshNode is a node installed after the backup: other token, CA,
// datastore.
func freshNode(t *testing.T, k3s string) string {
	t.Helper()
	root := t.TempDir()
	writeState(t, root, testDataDir, k3s)
	server := filepath.Join(root, testDataDir, "server")
	require.NoError(t, os.MkdirAll(filepath.Join(server, "db"), 0o700))
	db := openDB(t, filepath.Join(server, "db", "state.db"))
	insertRows(t, db, "fresh", 3)
	require.NoError(t, db.Close())
	writeFile(t, filepath.Join(server, "token"), "K10fresh::server:new\n", 0o600)
	writeFile(t, filepath.Join(server, "tls", "server-ca.crt"), "CERT fresh", 0o644)
	writeFile(t, filepath.Join(server, "cred", "passwd"), "fresh", 0o600)
	writeFile(t, filepath.Join(root, "etc/rancher/node/password"), "freshpass\n", 0o600)
	return root
}

func TestRestoreRefusesNamingWhatDoesNotFit(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)

	cases := []struct {
		name, k3s, tpctl, dataDir, want string
	}{
		{"older K3s installed", "v1.33.3+k3s1", testTpctl, testDataDir, "K3s version v1.33.4+k3s1 does not fit (installed: v1.33.3+k3s1)"},
		{"other K3s minor", "v1.34.1+k3s1", testTpctl, testDataDir, "K3s version v1.33.4+k3s1 does not fit (installed: v1.34.1+k3s1)"},
		{"older tpctl running", testK3s, "v0.4.9", testDataDir, "tpctl version v0.5.0 does not fit (installed: v0.4.9)"},
		{"other data dir", testK3s, testTpctl, "/srv/k3s", "dataDir /var/lib/rancher/k3s does not fit (installed: /srv/k3s)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := freshNode(t, c.k3s)
			writeState(t, root, c.dataDir, c.k3s)
			before := snapshotTree(t, root)
			units := &fakeUnits{}
			_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: c.tpctl, Yes: true,
				Units: units, Cluster: &fakeCluster{}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			var ve *VersionError
			assert.ErrorAs(t, err, &ve)
			assert.Empty(t, units.calls, "k3s untouched")
			assert.Equal(t, before, snapshotTree(t, root), "nothing changed")
		})
	}

	t.Run("tampered archive", func(t *testing.T) {
		es := readEntries(t, archive)
		for i := range es {
			if es[i].hdr.Name == "k3s/server/tls/server-ca.key" {
				es[i].data = []byte("KEY other")
			}
		}
		bad := filepath.Join(t.TempDir(), "bad.tar.gz")
		writeEntries(t, bad, es)
		root := freshNode(t, testK3s)
		before := snapshotTree(t, root)
		units := &fakeUnits{}
		_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: bad, TpctlVersion: testTpctl, Yes: true,
			Units: units, Cluster: &fakeCluster{}})
		var de *DigestError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "k3s/server/tls/server-ca.key", de.Part)
		assert.Empty(t, units.calls)
		assert.Equal(t, before, snapshotTree(t, root))
	})

	t.Run("without --yes", func(t *testing.T) {
		root := freshNode(t, testK3s)
		before := snapshotTree(t, root)
		units := &fakeUnits{}
		_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl,
			Units: units, Cluster: &fakeCluster{}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "nothing was changed")
		assert.Empty(t, units.calls)
		assert.Equal(t, before, snapshotTree(t, root))
	})
}

func TestRestoreDryRunChangesNothing(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)
	root := freshNode(t, testK3s)
	before := snapshotTree(t, root)
	plan, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, DryRun: true,
		Now: func() time.Time { return testNow.Add(time.Hour) }})
	require.NoError(t, err)
	assert.Equal(t, before, snapshotTree(t, root))
	aside := "/var/lib/rancher/k3s/server/pre-restore-20261207T163000Z"
	assert.Equal(t, aside, plan.Aside)
	assert.Equal(t, []Move{
		{What: "datastore", From: "/var/lib/rancher/k3s/server/db", To: aside + "/db"},
		{What: "server token", From: "/var/lib/rancher/k3s/server/token", To: aside + "/token"},
		{What: "CA material and certificates", From: "/var/lib/rancher/k3s/server/tls", To: aside + "/tls"},
		{What: "credentials", From: "/var/lib/rancher/k3s/server/cred", To: aside + "/cred"},
		{What: "node password", From: "/etc/rancher/node/password", To: aside + "/node-password"},
	}, plan.MoveAside)
	assert.Len(t, plan.PutInPlace, 5)
	assert.Contains(t, plan.WaitFor, "Pipeline tp/p1 Ready with frontends TCP/2200, UDP/5170")
}

func TestRestorePutsTheArchiveInPlace(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)
	root := freshNode(t, testK3s)
	freshToken, err := os.ReadFile(filepath.Join(root, testDataDir, "server/token"))
	require.NoError(t, err)
	// Files restore did not record or K3s does not own in these places, beside
	// the parts it replaces: they must stay where they are, unchanged.
	foreign := map[string]string{
		filepath.Join(testDataDir, "server", "operator-notes.txt"): "not K3s's\n",
		filepath.Join(filepath.Dir(NodePasswordPath), "mine"):      "keep me\n",
	}
	for rel, body := range foreign {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, rel), []byte(body), 0o644))
	}

	cl := &fakeCluster{nodeErr: errors.New("node node1 is not Ready")}
	var atStart map[string]string
	units := &fakeUnits{}
	units.onStart = func() {
		atStart = snapshotTree(t, filepath.Join(root, testDataDir, "server"))
		// The intent is recorded while K3s starts.
		_, err := os.Stat(filepath.Join(root, RestoreIntentPath))
		assert.NoError(t, err, "intent recorded")
		go func() {
			time.Sleep(30 * time.Millisecond)
			cl.mu.Lock()
			cl.nodeErr = nil
			cl.inv = testInventory()
			cl.mu.Unlock()
		}()
	}
	var lines []string
	plan, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, Yes: true,
		Units: units, Cluster: cl, Poll: 5 * time.Millisecond, Progress: func(s string) { lines = append(lines, s) },
		Now: func() time.Time { return testNow.Add(time.Hour) }})
	require.NoError(t, err)
	assert.Equal(t, []string{"stop k3s.service", "start k3s.service"}, units.calls)
	require.NotNil(t, atStart)
	assert.Equal(t, testNow.Add(time.Hour), cl.since, "the waits ask for what happened since K3s was started again")

	srcServer := filepath.Join(src, testDataDir, "server")
	dstServer := filepath.Join(root, testDataDir, "server")
	for _, f := range []string{"token", "tls/server-ca.crt", "tls/server-ca.key", "tls/etcd/server-ca.crt", "tls/service.key", "cred/passwd"} {
		want, err := os.ReadFile(filepath.Join(srcServer, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dstServer, f))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), f)
		fi, err := os.Stat(filepath.Join(dstServer, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	di, err := os.Stat(filepath.Join(dstServer, "tls"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	pw, err := os.ReadFile(filepath.Join(root, NodePasswordPath))
	require.NoError(t, err)
	assert.Equal(t, "nodepass\n", string(pw))

	// The restored datastore is the backup's.
	info, err := inspectDatabase(context.Background(), filepath.Join(dstServer, "db/state.db"))
	require.NoError(t, err)
	assert.Equal(t, int64(25), info.Rows)

	// The previous files are kept aside.
	aside := filepath.Join(root, plan.Aside)
	kept, err := os.ReadFile(filepath.Join(aside, "token"))
	require.NoError(t, err)
	assert.Equal(t, string(freshToken), string(kept))
	info, err = inspectDatabase(context.Background(), filepath.Join(aside, "db/state.db"))
	require.NoError(t, err)
	assert.Equal(t, int64(3), info.Rows)
	kept, err = os.ReadFile(filepath.Join(aside, "node-password"))
	require.NoError(t, err)
	assert.Equal(t, "freshpass\n", string(kept))

	_, err = os.Stat(filepath.Join(root, RestoreIntentPath))
	assert.ErrorIs(t, err, os.ErrNotExist, "the intent is removed once the node is back")
	for rel, body := range foreign {
		got, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err, "foreign file %s moved or removed", rel)
		assert.Equal(t, body, string(got), rel)
	}
	for k := range atStart {
		assert.False(t, strings.Contains(k, ".tpctl-restore-"), "staging %s left when K3s started", k)
	}
	joined := strings.Join(lines, "\n")
	assert.Contains(t, joined, "waiting: node node1 is not Ready")
	assert.NotContains(t, joined, "secret-token")
	assert.NotContains(t, joined, "K10fresh")
}

func TestRestoreTimesOutNamingWhatIsMissing(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)
	root := freshNode(t, testK3s)
	inv := testInventory()
	inv.Pipelines[0].Frontends = []string{"TCP/2201", "UDP/5170"}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Restore(ctx, RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, Yes: true,
		Units: &fakeUnits{}, Cluster: &fakeCluster{inv: inv}, Poll: 5 * time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Pipeline tp/p1 has frontends [TCP/2201 UDP/5170], the backup had [TCP/2200 UDP/5170]")
	assert.Contains(t, err.Error(), "pre-restore-")
	_, err = os.Stat(filepath.Join(root, RestoreIntentPath))
	require.NoError(t, err, "the intent stays while the restore is not complete")

	// The same archive again resumes it (its dry run shows where).
	plan, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, phaseWait, plan.Resume)
}

func TestInventoryMissing(t *testing.T) {
	want := testInventory()
	assert.Empty(t, InventoryMissing(want, want))
	got := testInventory()
	got.CoreInstances[0].Ready = false
	got.Pipelines = nil
	assert.Equal(t, "CoreInstance tp/core is not Ready; Pipeline tp/p1 is absent", InventoryMissing(want, got))
	// An object that was not Ready at backup time need only be present.
	want.Pipelines[0].Ready = false
	got = testInventory()
	got.Pipelines[0].Ready = false
	assert.Empty(t, InventoryMissing(want, got))
}

func TestVersionChecks(t *testing.T) {
	assert.NoError(t, checkK3sVersion("v1.33.4+k3s1", "v1.33.4+k3s1"))
	assert.NoError(t, checkK3sVersion("v1.33.3+k3s1", "v1.33.4+k3s1"))
	assert.NoError(t, checkK3sVersion("v1.33.4+k3s1", "v1.33.4+k3s2"))
	assert.Error(t, checkK3sVersion("v1.33.4+k3s2", "v1.33.4+k3s1"))
	assert.Error(t, checkK3sVersion("v1.32.9+k3s1", "v1.33.4+k3s1"))
	assert.Error(t, checkK3sVersion("garbage", "v1.33.4+k3s1"))
	assert.NoError(t, checkTpctlVersion("dev", "dev"))
	assert.NoError(t, checkTpctlVersion("v0.4.0", "v0.5.0"))
	assert.Error(t, checkTpctlVersion("v0.5.0", "v0.5.0-rc.1"))
	assert.Error(t, checkTpctlVersion("dev", "v0.5.0"))
}

// A host tpctl join made an agent holds no datastore, and a joined server
// member's is the cluster's etcd: backup and restore refuse both, saying
// why, and change nothing.
func TestAgentHostIsRefused(t *testing.T) {
	for role, want := range map[string]string{
		"agent":  "K3s agent joined to https://192.0.2.10:6443",
		"server": "control-plane member joined with `tpctl join --role server`",
	} {
		t.Run(role, func(t *testing.T) { testJoinedHostIsRefused(t, role, want) })
	}
}

func testJoinedHostIsRefused(t *testing.T, role, want string) {
	root := t.TempDir()
	st := map[string]any{
		"version": 1, "completed": true, "steps": map[string]any{}, "created": []any{},
		"role": role, "join": map[string]any{"server": "https://192.0.2.10:6443"},
		"config": map[string]any{"dataDir": testDataDir, "nodeName": "node2"},
		"k3s":    map[string]any{"version": testK3s},
	}
	b, err := json.Marshal(st)
	require.NoError(t, err)
	writeFile(t, filepath.Join(root, "var/lib/tpctl/state.json"), string(b), 0o600)
	before := snapshotTree(t, root)

	_, _, err = Create(context.Background(), Options{Root: root, TpctlVersion: testTpctl})
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)

	archive := filepath.Join(t.TempDir(), "x.tar.gz")
	writeFile(t, archive, "not read", 0o600)
	_, err = Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl})
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)
	assert.Equal(t, before, snapshotTree(t, root))
}

// A server K3s moved into embedded etcd (converted for high availability)
// keeps a stale SQLite file at most: backup refuses, saying why, and writes
// no archive.
func TestCreateRefusesAnEtcdDatastore(t *testing.T) {
	root, _ := node(t)
	require.NoError(t, os.MkdirAll(filepath.Join(root, testDataDir, "server", "db", "etcd", "member", "wal"), 0o700))
	_, _, err := Create(context.Background(), Options{Root: root, TpctlVersion: testTpctl})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "embedded etcd")
	assert.Contains(t, err.Error(), "nothing was changed")
	_, err = os.Stat(filepath.Join(root, DefaultDir))
	if err == nil {
		ents, rerr := os.ReadDir(filepath.Join(root, DefaultDir))
		require.NoError(t, rerr)
		assert.Empty(t, ents, "no archive is written")
	}
}
