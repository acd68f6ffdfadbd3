package installer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlainLines(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Type: EventStarted, Step: "stage payload", Index: 2, Total: 8}, "[2/8] stage payload …"},
		{Event{Type: EventProgress, Step: "stage payload", Index: 2, Total: 8, Message: "K3s binary", Bytes: 3 << 20, BytesTotal: 12 << 20}, "[2/8] stage payload: K3s binary 3.0 MiB of 12.0 MiB (25%)"},
		{Event{Type: EventProgress, Step: "start K3s", Index: 6, Total: 8, Message: "waiting (5s)"}, "[6/8] start K3s: waiting (5s)"},
		{Event{Type: EventDone, Step: "write unit", Index: 5, Total: 8, Message: "/etc/systemd/system/k3s.service written", Elapsed: 1234 * time.Millisecond}, "[5/8] write unit: done — /etc/systemd/system/k3s.service written (1.23s)"},
		{Event{Type: EventSkipped, Step: "preflight", Index: 1, Total: 8}, "[1/8] preflight: no change"},
		{Event{Type: EventFailed, Step: "start K3s", Index: 6, Total: 8, Error: "boom"}, "[6/8] start K3s: FAILED: boom"},
		{Event{Type: EventLog, Message: "no images", Warning: true}, "warning: no images"},
		{Event{Type: "other"}, ""},
	} {
		tc.e.Time = at
		assert.Equal(t, tc.want, PlainLine(tc.e))
	}
	var b bytes.Buffer
	Multi(NewPlain(&b), Discard()).Emit(Event{Type: EventLog, Message: "hello"})
	assert.Equal(t, "hello\n", b.String())
}

func TestJSONLinesAndLogFile(t *testing.T) {
	var b bytes.Buffer
	j := NewJSONLines(&b)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j.Emit(Event{Time: at, Type: EventProgress, Step: "stage payload", Index: 2, Total: 8, Bytes: 10, BytesTotal: 20})
	j.Emit(Event{Time: at, Type: EventDone, Step: "stage payload", Index: 2, Total: 8})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2)
	var e Event
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &e))
	assert.Equal(t, Event{Time: at, Type: EventProgress, Step: "stage payload", Index: 2, Total: 8, Bytes: 10, BytesTotal: 20}, e)
	assert.Equal(t, `{"time":"2026-01-02T03:04:05Z","type":"done","step":"stage payload","index":2,"total":8}`, lines[1])

	path := filepath.Join(t.TempDir(), "log", "tpctl", "install.log")
	lf, err := OpenLogFile(path)
	require.NoError(t, err)
	lf.Emit(Event{Time: at, Type: EventLog, Message: "first"})
	require.NoError(t, lf.Close())
	lf, err = OpenLogFile(path)
	require.NoError(t, err)
	lf.Emit(Event{Time: at, Type: EventLog, Message: "second"})
	require.NoError(t, lf.Close())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "2026-01-02T03:04:05Z first\n2026-01-02T03:04:05Z second\n", string(got), "appended, timestamped")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestByteProgressIsThrottled(t *testing.T) {
	rec := &recorder{}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return clock }
	p := byteProgress(rec, now, "stage payload", "images", 100)
	p(10) // first: shown
	p(20) // same instant: dropped
	clock = clock.Add(time.Second)
	p(50)  // later: shown
	p(100) // the end: always shown
	var got []int64
	for _, e := range rec.events {
		got = append(got, e.Bytes)
	}
	assert.Equal(t, []int64{10, 50, 100}, got)
}

func TestStateRejectsUnknownVersionAndGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"version": 9}`), 0o600))
	_, err := LoadState(p, time.Now)
	assert.ErrorContains(t, err, "version 9 is not supported")
	require.NoError(t, os.WriteFile(p, []byte(`{`), 0o600))
	_, err = LoadState(p, time.Now)
	assert.ErrorContains(t, err, "cannot be used: not a state file")
	st, err := LoadState(filepath.Join(t.TempDir(), "none.json"), time.Now)
	require.NoError(t, err)
	assert.False(t, st.Exists())
	require.NoError(t, st.Record(Created{Path: "/a", Kind: KindDir}))
	require.NoError(t, st.Record(Created{Path: "/a", Kind: KindDir}))
	assert.Len(t, st.Get().Created, 1, "recorded once")
	assert.True(t, st.CreatedUnder("/a/b"))
	assert.False(t, st.CreatedUnder("/ab"))
}
