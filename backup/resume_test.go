package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errKilled = errors.New("killed")

// restoreSteps runs one whole restore and returns its checkpoints in order.
func restoreSteps(t *testing.T, archive string) []string {
	t.Helper()
	root := freshNode(t, testK3s)
	var steps []string
	_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, Yes: true,
		Units: &fakeUnits{}, Cluster: &fakeCluster{inv: testInventory()}, Poll: time.Millisecond,
		interrupt: func(step string) error { steps = append(steps, step); return nil }})
	require.NoError(t, err)
	return steps
}

// assertRestored checks that root holds the archive's files (taken from
// src), the fresh node's files kept in one aside directory named at the
// first run, no staging directory and no intent.
func assertRestored(t *testing.T, src, root, aside string) {
	t.Helper()
	srcServer := filepath.Join(src, testDataDir, "server")
	dstServer := filepath.Join(root, testDataDir, "server")
	for _, f := range []string{"token", "tls/server-ca.crt", "tls/server-ca.key", "tls/etcd/server-ca.crt", "tls/service.key", "cred/passwd"} {
		want, err := os.ReadFile(filepath.Join(srcServer, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dstServer, f))
		require.NoError(t, err, f)
		assert.Equal(t, string(want), string(got), f)
		fi, err := os.Stat(filepath.Join(dstServer, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	info, err := inspectDatabase(context.Background(), filepath.Join(dstServer, "db/state.db"))
	require.NoError(t, err)
	assert.Equal(t, int64(25), info.Rows, "the archive's datastore")
	pw, err := os.ReadFile(filepath.Join(root, NodePasswordPath))
	require.NoError(t, err)
	assert.Equal(t, "nodepass\n", string(pw))

	kept, err := os.ReadFile(filepath.Join(root, aside, "token"))
	require.NoError(t, err)
	assert.Equal(t, "K10fresh::server:new\n", string(kept), "the fresh node's token is kept aside")
	info, err = inspectDatabase(context.Background(), filepath.Join(root, aside, "db/state.db"))
	require.NoError(t, err)
	assert.Equal(t, int64(3), info.Rows, "the fresh node's datastore is kept aside")
	kept, err = os.ReadFile(filepath.Join(root, aside, "node-password"))
	require.NoError(t, err)
	assert.Equal(t, "freshpass\n", string(kept))

	ents, err := os.ReadDir(dstServer)
	require.NoError(t, err)
	var asides []string
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".tpctl-restore-"), "staging %s left", e.Name())
		if strings.HasPrefix(e.Name(), "pre-restore-") {
			asides = append(asides, e.Name())
		}
	}
	assert.Equal(t, []string{filepath.Base(aside)}, asides, "one aside directory, the first run's")
	_, err = os.Stat(filepath.Join(root, RestoreIntentPath))
	assert.ErrorIs(t, err, os.ErrNotExist, "the intent is removed once the restore completed")
}

// TestRestoreKilledAtEachStepCompletesOnTheNextRun interrupts a restore at
// every checkpoint, as if it had been killed there, and runs the same
// restore again (later, from another path to the same archive): it completes.
func TestRestoreKilledAtEachStepCompletesOnTheNextRun(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)
	steps := restoreSteps(t, archive)
	assert.Equal(t, []string{"extract", "extracted", "stopped",
		"moved aside datastore", "moved aside server token", "moved aside CA material and certificates", "moved aside credentials", "moved aside node password",
		"put in place datastore", "put in place server token", "put in place CA material and certificates", "put in place credentials", "put in place node password",
		"start", "started", "back"}, steps)

	// The same archive under another name resumes too (it is named by its sha256).
	copyPath := filepath.Join(t.TempDir(), "copy.tar.gz")
	b, err := os.ReadFile(archive)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(copyPath, b, 0o600))

	for _, kill := range steps {
		t.Run(kill, func(t *testing.T) {
			root := freshNode(t, testK3s)
			first := testNow.Add(time.Hour)
			units := &fakeUnits{}
			_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, Yes: true,
				Units: units, Cluster: &fakeCluster{inv: testInventory()}, Poll: time.Millisecond,
				Now:       func() time.Time { return first },
				interrupt: func(step string) error { return map[bool]error{true: errKilled}[step == kill] }})
			require.ErrorIs(t, err, errKilled)
			_, err = os.Stat(filepath.Join(root, RestoreIntentPath))
			require.NoError(t, err, "the intent is recorded when killed at %s", kill)

			if kill == "extracted" {
				// A half-written staging file (killed while extracting).
				stag, err := filepath.Glob(filepath.Join(root, testDataDir, "server", ".tpctl-restore-*", "k3s", "server", "token"))
				require.NoError(t, err)
				require.Len(t, stag, 1)
				require.NoError(t, os.WriteFile(stag[0], []byte("K10se"), 0o600))
			}

			// Its dry run names the phase it resumes.
			plan, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, DryRun: true})
			require.NoError(t, err)
			assert.NotEmpty(t, plan.Resume)

			cl := &fakeCluster{inv: testInventory()}
			units2 := &fakeUnits{}
			var lines []string
			plan, err = Restore(context.Background(), RestoreOptions{Root: root, Archive: copyPath, TpctlVersion: testTpctl, Yes: true,
				Units: units2, Cluster: cl, Poll: time.Millisecond, Progress: func(s string) { lines = append(lines, s) },
				Now: func() time.Time { return first.Add(time.Hour) }})
			require.NoError(t, err)
			assert.Contains(t, strings.Join(lines, "\n"), "resuming the restore of "+archive)
			assert.Equal(t, "/var/lib/rancher/k3s/server/pre-restore-20261207T163000Z", plan.Aside)
			assertRestored(t, src, root, plan.Aside)
			// K3s runs at the end, whatever ran before.
			require.NotEmpty(t, units2.calls)
			assert.Equal(t, "start k3s.service", units2.calls[len(units2.calls)-1])
			if kill == "back" || kill == "started" {
				// The waits ask for what happened since K3s was started
				// by the first run, not since the resumption.
				assert.Equal(t, first, cl.since)
			}
		})
	}
}

// TestRestoreRefusesAnotherArchiveWhileOneIsInProgress: an interrupted
// restore is named and nothing is changed by another archive's restore.
func TestRestoreRefusesAnotherArchiveWhileOneIsInProgress(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)
	src2, _ := node(t)
	writeFile(t, filepath.Join(src2, testDataDir, "server", "token"), "K10other::server:def\n", 0o600)
	_, other := create(t, src2)

	root := freshNode(t, testK3s)
	_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, Yes: true,
		Units: &fakeUnits{}, Cluster: &fakeCluster{inv: testInventory()}, Poll: time.Millisecond,
		interrupt: func(step string) error {
			if step == "moved aside server token" {
				return errKilled
			}
			return nil
		}})
	require.ErrorIs(t, err, errKilled)

	before := snapshotTree(t, root)
	for _, dry := range []bool{true, false} {
		units := &fakeUnits{}
		_, err = Restore(context.Background(), RestoreOptions{Root: root, Archive: other, TpctlVersion: testTpctl, Yes: true, DryRun: dry,
			Units: units, Cluster: &fakeCluster{inv: testInventory()}, Poll: time.Millisecond})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "a restore of "+archive+" is in progress")
		assert.Contains(t, err.Error(), "phase replacing files")
		assert.Contains(t, err.Error(), other+" is refused until then")
		assert.Empty(t, units.calls)
		assert.Equal(t, before, snapshotTree(t, root), "nothing changed")
	}

	// The first archive completes it.
	plan, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, Yes: true,
		Units: &fakeUnits{}, Cluster: &fakeCluster{inv: testInventory()}, Poll: time.Millisecond})
	require.NoError(t, err)
	assertRestored(t, src, root, plan.Aside)
}

// TestRestoreUnreadableIntentIsRefused: an intent that cannot be read is
// not guessed at.
func TestRestoreUnreadableIntentIsRefused(t *testing.T) {
	src, _ := node(t)
	_, archive := create(t, src)
	root := freshNode(t, testK3s)
	writeFile(t, filepath.Join(root, RestoreIntentPath), "{not json", 0o600)
	_, err := Restore(context.Background(), RestoreOptions{Root: root, Archive: archive, TpctlVersion: testTpctl, DryRun: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "records a restore in progress but cannot be read")
}
