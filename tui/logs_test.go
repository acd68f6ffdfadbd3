package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage"
)

// fakeLogs is a LogReader over lines given in advance: it hands over a
// pipeline's lines, then either fails with err or follows: it hands over
// what is sent on more until its context ends.
type fakeLogs struct {
	lines map[string][]manage.LogLine
	err   error
	more  chan manage.LogLine

	mu      sync.Mutex
	calls   []string // the pipelines asked for
	opts    []manage.LogOptions
	ctxs    []context.Context
	running int
	ended   chan struct{} // receives when a read returns
}

func newFakeLogs(lines map[string][]manage.LogLine) *fakeLogs {
	return &fakeLogs{lines: lines, more: make(chan manage.LogLine), ended: make(chan struct{}, 16)}
}

func (f *fakeLogs) PipelineLogs(ctx context.Context, pipeline string, o manage.LogOptions, fn func(manage.LogLine)) error {
	f.mu.Lock()
	f.calls, f.opts, f.ctxs = append(f.calls, pipeline), append(f.opts, o), append(f.ctxs, ctx)
	f.running++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
		f.ended <- struct{}{}
	}()
	for _, l := range f.lines[pipeline] {
		fn(l)
	}
	if f.err != nil {
		return f.err
	}
	for {
		select {
		case l := <-f.more:
			fn(l)
		case <-ctx.Done():
			return nil
		}
	}
}

func (f *fakeLogs) runningReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// numbered are n lines "<word> line i" of one pod.
func numbered(word string, from, to int) []manage.LogLine {
	var out []manage.LogLine
	for i := from; i <= to; i++ {
		out = append(out, manage.LogLine{Pod: "b-0", Container: "fluent-bit", Text: fmt.Sprintf("%s line %d", word, i)})
	}
	return out
}

func logsOptions(r LogReader) Options {
	o := options()
	o.Logs = r
	return o
}

// openLogs starts the manager on the sample cluster and opens the logs of
// pipeline b from the list, waiting for want.
func openLogs(t *testing.T, r LogReader, want ...string) *term {
	t.Helper()
	tm := start(t, sampleCluster(t), logsOptions(r))
	waitFor(t, tm, "core-health")
	send(tm, "down", "l")
	waitFor(t, tm, append([]string{"Logs of pipeline b"}, want...)...)
	return tm
}

func TestLogsScreenFollow(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": numbered("info", 1, 40)})
	tm := openLogs(t, f, "info line 40")
	f.more <- manage.LogLine{Pod: "b-0", Text: "info line 41"}
	waitFor(t, tm, "info line 41")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "following · 41 lines")
	assert.NotContains(t, s, "info line 1\n", "the first lines scrolled away")
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, []string{"b"}, f.calls)
	assert.True(t, f.opts[0].Follow, "the page follows")
	require.NotNil(t, f.opts[0].Tail)
	assert.EqualValues(t, logBufferLines, *f.opts[0].Tail, "no more than the page keeps")
}

func TestLogsScreenPaused(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": numbered("info", 1, 40)})
	tm := openLogs(t, f, "info line 40")
	send(tm, "p")
	waitFor(t, tm, "PAUSED · 0 new lines")
	for _, l := range numbered("info", 41, 45) {
		f.more <- l
	}
	waitFor(t, tm, "PAUSED · 5 new lines")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.NotContains(t, s, "info line 41", "the view does not move")
	assert.Contains(t, s, "45 lines", "the lines arrived")
}

func TestLogsPauseResumes(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": numbered("info", 1, 10)})
	tm := openLogs(t, f, "info line 10")
	send(tm, "space")
	waitFor(t, tm, "PAUSED")
	f.more <- manage.LogLine{Text: "info line 11"}
	waitFor(t, tm, "PAUSED · 1 new line")
	send(tm, "space")
	waitFor(t, tm, "following · 11 lines", "info line 11")
}

func TestLogsScreenSearch(t *testing.T) {
	lines := numbered("info", 1, 5)
	lines = append(lines, manage.LogLine{Text: "[error] engine: connection refused"},
		manage.LogLine{Text: "info line 6"},
		manage.LogLine{Text: "[error] output: retry in 10s (Error again)"},
		manage.LogLine{Text: "info line 7"})
	f := newFakeLogs(map[string][]manage.LogLine{"b": lines})
	tm := openLogs(t, f, "info line 7")
	send(tm, "/", "e", "r", "r", "o", "r", "enter")
	waitFor(t, tm, "search: error · match 2 of 2")
	send(tm, "N")
	waitFor(t, tm, "search: error · match 1 of 2")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "[>>error<<] engine: connection refused", "the match is marked")
	assert.Contains(t, s, "[>>error<<] output: retry in 10s (>>Error<< again)", "lower case finds any case")
	assert.Contains(t, s, "PAUSED", "moving to a match stops the view")
}

func TestLogsSearchNextAndCase(t *testing.T) {
	lines := []manage.LogLine{{Text: "Error one"}, {Text: "error two"}, {Text: "ERROR three"}, {Text: "fine"}}
	f := newFakeLogs(map[string][]manage.LogLine{"b": lines})
	tm := openLogs(t, f, "fine")
	send(tm, "/", "E", "r", "r", "o", "r", "enter")
	waitFor(t, tm, "search: Error · match 1 of 1", ">>Error<< one")
	send(tm, "/", "backspace", "backspace", "backspace", "backspace", "backspace", "e", "r", "r", "o", "r", "enter")
	waitFor(t, tm, "search: error · match 3 of 3")
	send(tm, "n")
	waitFor(t, tm, "search: error · match 3 of 3") // no newer match: it stays
	send(tm, "N", "N")
	waitFor(t, tm, "search: error · match 1 of 3")
	send(tm, "/", "backspace", "backspace", "backspace", "backspace", "backspace", "z", "enter")
	waitFor(t, tm, "search: z · no match")
}

// long is a line wider than the screen.
var long = "[error] [output:http:http.0] " + strings.Repeat("no upstream connections available to collector.example:443 ", 3) + "END"

func TestLogsScreenWrapOff(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": {{Text: "short line"}, {Text: long}, {Text: "last line"}}})
	tm := openLogs(t, f, "last line")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "wrap off")
	assert.NotContains(t, s, "END", "the long line is cut at the screen's edge")
	assert.Contains(t, s, "…")
}

func TestLogsScreenWrapOn(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": {{Text: "short line"}, {Text: long}, {Text: "last line"}}})
	tm := openLogs(t, f, "last line")
	send(tm, "w")
	waitFor(t, tm, "wrap on")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "443 END", "the long line is shown whole")
}

func TestLogsScreenSeveralPods(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": {
		{Pod: "b-0", Text: "[ info] [fluent bit] version=4.0.3"},
		{Notice: true, Text: "pod b-1 of pipeline b started; following its log"},
		{Pod: "b-1", Prefix: "b-1", Text: "[ info] [input:syslog:syslog.0] listening on 0.0.0.0:5140"},
		{Pod: "b-0", Prefix: "b-0", Text: "[ info] [sp] stream processor started"},
		{Pod: "b-1", Prefix: "b-1", Text: "\x1b[1m[ warn]\x1b[0m\tcolours\x07 and tabs"},
	}})
	tm := openLogs(t, f, "colours")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "[b-1] [ info] [input:syslog:syslog.0] listening on 0.0.0.0:5140")
	assert.Contains(t, s, "[b-0] [ info] [sp] stream processor started")
	assert.Contains(t, s, "[b-1] [ warn]    colours\uFFFD and tabs", "escapes and control characters are not drawn")
}

func TestLogsScreenReaderError(t *testing.T) {
	f := newFakeLogs(nil)
	f.err = errors.New(`pods is forbidden: User "dev" cannot list resource "pods" in the namespace "tp"`)
	tm := openLogs(t, f, "stopped", "pods is forbidden")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "x read the logs of pipeline b: pods is forbidden")
}

func TestLogsWithoutAReader(t *testing.T) {
	tm := openLogs(t, nil, "without a log reader")
	s := screen(t, tm)
	assert.Contains(t, s, "No line could be read.")
}

// Leaving the page ends the read: the reader's context ends and its
// PipelineLogs returns; going back there starts a new one.
func TestLogsLeavingCancelsTheReader(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": numbered("info", 1, 3)})
	tm := openLogs(t, f, "info line 3")
	require.Equal(t, 1, f.runningReads())
	send(tm, "esc")
	waitFor(t, tm, "sort: name")
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not end when the page was left")
	}
	f.mu.Lock()
	ctxErr := f.ctxs[0].Err()
	f.mu.Unlock()
	assert.ErrorIs(t, ctxErr, context.Canceled)
	assert.Zero(t, f.runningReads())

	send(tm, "enter", "l")
	waitFor(t, tm, "Logs of pipeline b")
	require.Eventually(t, func() bool { return f.runningReads() == 1 }, 5*time.Second, 10*time.Millisecond)
	send(tm, "esc")
	waitFor(t, tm, "Pipeline b ·")
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the read opened from the details did not end when the page was left")
	}
}

// runCmd runs cmd and the commands of the batches it returns, each in a
// goroutine, sending every message they end with on out.
func runCmd(cmd tea.Cmd, out chan<- tea.Msg, wg *sync.WaitGroup) {
	if cmd == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				runCmd(c, out, wg)
			}
			return
		}
		out <- msg
	}()
}

// The page's commands (the reader and the wait for its lines) all return
// once the page stops, even while lines wait and nobody takes them: no
// goroutine is left behind.
func TestLogsStopEndsEveryCommand(t *testing.T) {
	f := newFakeLogs(map[string][]manage.LogLine{"b": numbered("info", 1, logQueue*3)})
	e := &env{ctx: t.Context(), opts: options(), st: NewStyles(plain), keys: newKeys()}
	m := newLogs(e, "b", 1)
	out := make(chan tea.Msg, 16)
	var wg sync.WaitGroup
	runCmd(m.start(f), out, &wg)
	first := (<-out).(logLinesMsg)
	require.NotEmpty(t, first.lines)
	require.Eventually(t, func() bool { return len(m.ch) == logQueue }, 5*time.Second, time.Millisecond,
		"the queue fills while nobody takes the lines")
	m.stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a command of the logs page still runs after stop")
	}
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not return")
	}
}

func TestLogRingBound(t *testing.T) {
	r := newLogRing(logBufferLines)
	const n = 12345
	for i := range n {
		r.add(logEntry{text: fmt.Sprint(i)})
	}
	assert.Equal(t, logBufferLines, r.n, "the ring holds its capacity")
	assert.Len(t, r.buf, logBufferLines, "and never grows")
	assert.Equal(t, n-logBufferLines, r.dropped())
	assert.Equal(t, n-logBufferLines, r.first())
	assert.Equal(t, n, r.end())
	assert.Equal(t, fmt.Sprint(n-logBufferLines), r.at(r.first()).text, "the oldest line kept")
	assert.Equal(t, fmt.Sprint(n-1), r.at(r.end()-1).text, "the newest line")
	for i := r.first(); i < r.end(); i++ {
		require.Equal(t, fmt.Sprint(i), r.at(i).text)
	}

	small := newLogRing(3)
	for _, s := range []string{"a", "b"} {
		small.add(logEntry{text: s})
	}
	assert.Equal(t, 0, small.dropped())
	assert.Equal(t, "a", small.at(0).text)
}

// shown is the page's view with each line's padding removed.
func shown(m *logsModel) string {
	lines := strings.Split(m.View(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestLogsPageDropsOldLines(t *testing.T) {
	e := &env{ctx: t.Context(), opts: options(), st: NewStyles(plain), keys: newKeys()}
	m := newLogs(e, "b", 1)
	m.SetSize(screenW, 20)
	_, _ = m.Update(logLinesMsg{gen: 1, lines: numbered("info", 1, logBufferLines+1000)})
	v := shown(m)
	assert.Contains(t, v, "5000 lines (1000 older dropped, last 5000 kept)")
	assert.Contains(t, v, fmt.Sprintf("info line %d", logBufferLines+1000))
	send := func(k string) { _, _ = m.Update(keyMsg(k)) }
	send("g")
	assert.Contains(t, shown(m), "info line 1001\n", "the oldest line kept is the first one shown")

	// Paused at the top while the ring drops lines: the view keeps to lines held.
	_, _ = m.Update(logLinesMsg{gen: 1, lines: numbered("info", logBufferLines+1001, logBufferLines+1100)})
	assert.Contains(t, shown(m), "info line 1101\n")
	assert.Contains(t, shown(m), "100 new lines")

	_, _ = m.Update(logLinesMsg{gen: 2, lines: numbered("stale", 1, 1)})
	assert.NotContains(t, shown(m), "stale", "lines of an older read are dropped")
}

func TestLogsScrolling(t *testing.T) {
	e := &env{ctx: t.Context(), opts: options(), st: NewStyles(plain), keys: newKeys()}
	m := newLogs(e, "b", 1)
	m.SetSize(screenW, 11) // 10 rows of lines
	_, _ = m.Update(logLinesMsg{gen: 1, lines: numbered("info", 1, 100)})
	assert.Contains(t, shown(m), "info line 91\n")
	_, _ = m.Update(keyMsg("up"))
	assert.True(t, m.paused, "scrolling back stops the view")
	assert.Contains(t, shown(m), "info line 90\n")
	_, _ = m.Update(keyMsg("down"))
	assert.False(t, m.paused, "back at the end, it follows again")
	_, _ = m.Update(keyMsg("g"))
	assert.Contains(t, shown(m), "info line 1\n")
	_, _ = m.Update(keyMsg("G"))
	assert.False(t, m.paused)
	assert.Contains(t, shown(m), "info line 100\n")
}

func TestSanitizeLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                          "plain",
		"\x1b[31mred\x1b[0m text":        "red text",
		"a\tb":                           "a    b",
		"bell\x07 cr\r":                  "bell\uFFFD cr\uFFFD",
		"bad \xff utf-8":                 "bad \uFFFD utf-8",
		"\x1b]0;title\x07after":          "after",
		"clear\x1b[2J\x1b[Hscreen":       "clearscreen",
		"[2025/01/01 00:00:00] [ info] ": "[2025/01/01 00:00:00] [ info] ",
	} {
		assert.Equal(t, want, sanitizeLine(in), "%q", in)
	}
}

func TestMatchRanges(t *testing.T) {
	assert.Equal(t, [][2]int{{0, 5}, {10, 15}}, matchRanges("Error and ERROR", "error"))
	assert.Equal(t, [][2]int{{0, 5}}, matchRanges("Error and ERROR", "Error"))
	assert.Nil(t, matchRanges("anything", ""))
	assert.Equal(t, [][2]int{{0, 2}, {2, 4}}, matchRanges("aaaa", "aa"), "matches do not overlap")
}

func TestLogsMatchCountFollowsNewLines(t *testing.T) {
	e := &env{ctx: t.Context(), opts: options(), st: NewStyles(plain), keys: newKeys()}
	m := newLogs(e, "b", 1)
	m.SetSize(screenW, 20)
	_, _ = m.Update(logLinesMsg{gen: 1, lines: []manage.LogLine{{Text: "warn one"}, {Text: "fine"}}})
	for _, k := range []string{"/", "w", "a", "r", "n", "enter"} {
		_, _ = m.Update(keyMsg(k))
	}
	assert.Contains(t, m.info(), "search: warn · match 1 of 1")
	_, _ = m.Update(logLinesMsg{gen: 1, lines: []manage.LogLine{{Text: "warn two"}}})
	assert.Contains(t, m.info(), "search: warn · match 1 of 2", "a new matching line is counted")
	_, _ = m.Update(keyMsg("n"))
	assert.Contains(t, m.info(), "search: warn · match 2 of 2")
}

func TestLogEntryKeepsAtMostLogLineBytes(t *testing.T) {
	long := strings.Repeat("é", logLineBytes) // two bytes each
	e := entryOf(manage.LogLine{Prefix: "b-0", Text: long})
	assert.LessOrEqual(t, len(e.text), logLineBytes+len(manage.LogTruncated))
	assert.True(t, strings.HasPrefix(e.text, "[b-0] éé"))
	assert.True(t, strings.HasSuffix(e.text, "é"+manage.LogTruncated), "cut between characters, marked")
	assert.NotContains(t, e.text, "\uFFFD")
	short := entryOf(manage.LogLine{Text: "short"})
	assert.Equal(t, "short", short.text)
}
