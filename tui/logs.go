package tui

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tpctl/tpctl/manage"
)

// LogReader reads the logs of a pipeline's pods; *manage.LogReader is one.
// PipelineLogs calls fn for each line from one goroutine and, following,
// returns when ctx ends.
type LogReader interface {
	PipelineLogs(ctx context.Context, pipeline string, o manage.LogOptions, fn func(manage.LogLine)) error
}

// logTail is how many lines of each running container the logs page reads
// when it opens: no more than it keeps.
const logTail = logBufferLines

// logQueue is how many lines wait between the reader and the page; while
// it is full the reader stops reading (its own buffer, then the API
// server's connections, hold the rest).
const logQueue = 256

// logItem is a line of the reader, or its end (end true, err why).
type logItem struct {
	line manage.LogLine
	end  bool
	err  error
}

// logLinesMsg: the lines that were waiting, in order; end when the reader
// finished after them (err says why, nil when it ended normally).
type logLinesMsg struct {
	gen   int
	lines []manage.LogLine
	end   bool
	err   error
}

// readLogs runs the reader until ctx ends, handing its lines to ch, then
// its end; it closes ch.
func readLogs(ctx context.Context, r LogReader, pipeline string, ch chan<- logItem) tea.Cmd {
	return func() tea.Msg {
		defer close(ch)
		tail := int64(logTail)
		err := r.PipelineLogs(ctx, pipeline, manage.LogOptions{Follow: true, Tail: &tail}, func(l manage.LogLine) {
			select {
			case ch <- logItem{line: l}:
			case <-ctx.Done():
			}
		})
		select {
		case ch <- logItem{end: true, err: err}:
		case <-ctx.Done():
		}
		return nil
	}
}

// nextLogLines waits for one item, then takes the ones already waiting.
func nextLogLines(ch <-chan logItem, gen int) tea.Cmd {
	return func() tea.Msg {
		it, ok := <-ch
		if !ok {
			return logLinesMsg{gen: gen, end: true}
		}
		if it.end {
			return logLinesMsg{gen: gen, end: true, err: it.err}
		}
		msg := logLinesMsg{gen: gen, lines: []manage.LogLine{it.line}}
		for len(msg.lines) < maxBatch {
			select {
			case it, ok := <-ch:
				if !ok {
					msg.end = true
					return msg
				}
				if it.end {
					msg.end, msg.err = true, it.err
					return msg
				}
				msg.lines = append(msg.lines, it.line)
			default:
				return msg
			}
		}
		return msg
	}
}

// logsModel is the logs page of one pipeline: the merged lines of its pods
// (each after its pod's name when there are several), followed as they
// arrive. Pausing stops the view, not the reading: new lines go on filling
// the ring and are counted. The page reads while it is open; leaving it
// ends the read.
type logsModel struct {
	env      *env
	st       Styles
	keys     keys
	pipeline string

	ring   *logRing
	gen    int
	ch     <-chan logItem
	cancel context.CancelFunc
	ended  bool // the reader finished
	endErr error

	paused    bool
	top       int // number of the first line shown while paused
	pausedAt  int // ring.end() when the view stopped
	wrap      bool
	searching bool
	search    textinput.Model
	query     string
	match     int // number of the current match's line, -1: none
	counted   matchCounted

	width, height int
}

func newLogs(e *env, pipeline string, gen int) *logsModel {
	return &logsModel{env: e, st: e.st, keys: e.keys, pipeline: pipeline, gen: gen,
		ring: newLogRing(logBufferLines), search: e.st.newInput("text to find", 256), match: -1, width: 80, height: 10}
}

// start begins reading the pipeline's logs with r (nil: none is set up,
// which the page says).
func (m *logsModel) start(r LogReader) tea.Cmd {
	if r == nil {
		return func() tea.Msg {
			return logLinesMsg{gen: m.gen, end: true, err: errors.New("this terminal UI was started without a log reader")}
		}
	}
	ctx, cancel := context.WithCancel(m.env.ctx)
	m.cancel = cancel
	ch := make(chan logItem, logQueue)
	m.ch = ch
	return tea.Batch(readLogs(ctx, r, m.pipeline, ch), nextLogLines(ch, m.gen))
}

// stop ends the read: its context is cancelled, so the reader returns and
// its goroutines end.
func (m *logsModel) stop() {
	if m.cancel != nil {
		m.cancel()
	}
}

// SetSize implements page: an info line above the lines.
func (m *logsModel) SetSize(w, h int) {
	m.width, m.height = w, h
	m.search.SetWidth(max(w-40, 10))
	m.clampTop()
}

// rows is the number of screen lines the log lines get.
func (m *logsModel) rows() int { return max(m.height-1, 1) }

// Title implements page.
func (m *logsModel) Title() string { return "Logs of pipeline " + m.pipeline }

// Typing implements page: the search has the keys while it is typed.
func (m *logsModel) Typing() bool { return m.searching }

// ShortHelp implements help.KeyMap.
func (m *logsModel) ShortHelp() []key.Binding { return m.keys.logsHelp(m.searching).ShortHelp() }

// FullHelp implements help.KeyMap.
func (m *logsModel) FullHelp() [][]key.Binding { return m.keys.logsHelp(m.searching).FullHelp() }

// Update implements page.
func (m *logsModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	switch msg := msg.(type) {
	case logLinesMsg:
		return m.take(msg), nil
	case tea.PasteMsg:
		if m.searching {
			var cmd tea.Cmd
			m.search, cmd = m.search.Update(msg)
			return cmd, nil
		}
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return nil, nil
}

// take adds the lines of a batch and asks for the next one.
func (m *logsModel) take(msg logLinesMsg) tea.Cmd {
	if msg.gen != m.gen || m.ended {
		return nil
	}
	for _, l := range msg.lines {
		m.ring.add(entryOf(l))
	}
	m.clampTop()
	if msg.end {
		m.ended, m.endErr = true, msg.err
		return nil
	}
	return nextLogLines(m.ch, m.gen)
}

func (m *logsModel) key(msg tea.KeyPressMsg) (tea.Cmd, nav) {
	if m.searching {
		switch msg.String() {
		case "enter":
			m.searching = false
			m.search.Blur()
			m.query = m.search.Value()
			m.match = -1
			if m.query != "" {
				m.findFrom(m.ring.end()-1, -1)
			}
			return nil, nil
		case "esc":
			m.searching = false
			m.search.Blur()
			m.search.SetValue(m.query)
			return nil, nil
		}
		var cmd tea.Cmd
		m.search, cmd = m.search.Update(msg)
		return cmd, nil
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		m.stop()
		return nil, navBack{}
	case key.Matches(msg, k.Pause):
		if m.paused {
			m.follow()
		} else {
			m.pause()
		}
	case key.Matches(msg, k.Wrap):
		m.wrap = !m.wrap
		m.clampTop()
	case key.Matches(msg, k.Filter):
		m.searching = true
		m.search.SetValue(m.query)
		m.search.CursorEnd()
		return m.search.Focus(), nil
	case key.Matches(msg, k.NextMatch):
		if m.query != "" {
			m.findFrom(m.matchOrView()+1, 1)
		}
	case key.Matches(msg, k.PrevMatch):
		if m.query != "" {
			m.findFrom(m.matchOrView()-1, -1)
		}
	case key.Matches(msg, k.Up):
		m.scroll(-1)
	case key.Matches(msg, k.Down):
		m.scroll(1)
	case key.Matches(msg, k.PageUp):
		m.scroll(-m.rows())
	case key.Matches(msg, k.PageDown):
		m.scroll(m.rows())
	case key.Matches(msg, k.Top):
		m.pause()
		m.top = m.ring.first()
	case key.Matches(msg, k.Bottom):
		m.follow()
	}
	return nil, nil
}

// pause stops the view where it is.
func (m *logsModel) pause() {
	if m.paused {
		return
	}
	m.paused, m.pausedAt = true, m.ring.end()
	m.top = m.followTop()
}

// follow shows the newest lines again, as they arrive.
func (m *logsModel) follow() {
	m.paused = false
}

// scroll moves the view by n lines; moving it pauses it, and reaching the
// end follows again.
func (m *logsModel) scroll(n int) {
	if !m.paused {
		if n > 0 {
			return
		}
		m.pause()
	}
	m.top += n
	m.clampTop()
	if n > 0 && m.top >= m.followTop() {
		m.follow()
	}
}

// followTop is the first line shown when following: the last lines that
// fill the screen.
func (m *logsModel) followTop() int {
	room := m.rows()
	i := m.ring.end()
	for i > m.ring.first() {
		h := m.heightOf(m.ring.at(i - 1))
		if h > room {
			break
		}
		room -= h
		i--
	}
	if i == m.ring.end() && i > m.ring.first() {
		i-- // a line taller than the screen: its start is shown
	}
	return i
}

// clampTop keeps the paused view on lines the ring still holds.
func (m *logsModel) clampTop() {
	if !m.paused {
		return
	}
	m.top = min(max(m.top, m.ring.first()), max(m.followTop(), m.ring.first()))
}

// heightOf is the number of screen lines e takes.
func (m *logsModel) heightOf(e logEntry) int {
	if !m.wrap {
		return 1
	}
	return max(len(wrapLine(m.lineText(e), m.width)), 1)
}

// lineText is the text drawn for e: a notice of the reader (a pod came or
// went) is marked as not the pipeline's own.
func (m *logsModel) lineText(e logEntry) string {
	if e.notice {
		return m.st.marker("-- ", "· ") + e.text
	}
	return e.text
}

// viewTop is the first line on screen.
func (m *logsModel) viewTop() int {
	if m.paused {
		return m.top
	}
	return m.followTop()
}

// matchOrView is where n and N start: the current match, else the top of
// the view.
func (m *logsModel) matchOrView() int {
	if m.match >= m.ring.first() {
		return m.match
	}
	return m.viewTop()
}

// findFrom looks for the query from line i in direction dir (1: newer, -1:
// older) and shows the match at the top of a paused view; without a match
// the view stays.
func (m *logsModel) findFrom(i, dir int) {
	for ; i >= m.ring.first() && i < m.ring.end(); i += dir {
		if len(matchRanges(m.ring.at(i).text, m.query)) > 0 {
			m.match = i
			m.pause()
			m.top = i
			m.clampTop()
			return
		}
	}
}

// matchCounted is the last count of matching lines, kept while the lines,
// the query and the current match stay the same (a frame is drawn far
// more often than they change).
type matchCounted struct {
	total, match   int
	query          string
	lines, current int
}

// matchCount counts the lines held that match the query, and the
// current match's rank among them.
func (m *logsModel) matchCount() (lines, current int) {
	c := &m.counted
	if c.total == m.ring.total && c.query == m.query && c.match == m.match {
		return c.lines, c.current
	}
	defer func() {
		*c = matchCounted{total: m.ring.total, match: m.match, query: m.query, lines: lines, current: current}
	}()
	for i := m.ring.first(); i < m.ring.end(); i++ {
		if len(matchRanges(m.ring.at(i).text, m.query)) > 0 {
			lines++
			if i <= m.match {
				current = lines
			}
		}
	}
	return lines, current
}

// View implements page: the info line, then the lines on screen.
func (m *logsModel) View() string {
	st := m.st
	var b strings.Builder
	b.WriteString(pad(m.info(), m.width))
	b.WriteByte('\n')
	if m.ring.end() == 0 {
		switch {
		case m.ended && m.endErr == nil:
			b.WriteString(st.Dim.Render("The log ended without a line."))
		case m.ended:
			b.WriteString(st.Dim.Render("No line could be read."))
		default:
			b.WriteString(st.Dim.Render("Waiting for the first line of pipeline " + m.pipeline + "…"))
		}
		return b.String()
	}
	rows := m.rows()
	for i := m.viewTop(); i < m.ring.end() && rows > 0; i++ {
		e := m.ring.at(i)
		text := m.lineText(e)
		parts := []string{text}
		if m.wrap {
			parts = wrapLine(text, m.width)
		}
		for _, p := range parts {
			if rows == 0 {
				break
			}
			b.WriteString(m.drawLine(p, e.notice, i == m.match))
			b.WriteByte('\n')
			rows--
		}
	}
	return b.String()
}

// info says what the page shows: following or paused (with the lines that
// arrived since), how many lines it holds and dropped, wrap, the search.
func (m *logsModel) info() string {
	st := m.st
	var parts []string
	switch {
	case m.ended && m.endErr == nil:
		parts = append(parts, st.marker("ended", "■ ended"))
	case m.ended:
		parts = append(parts, st.marker("stopped", "■ stopped"))
	case m.paused:
		n := m.ring.end() - m.pausedAt
		parts = append(parts, st.Warn.Render(st.marker("PAUSED", "⏸ paused")+" · "+plural(n, "new line")))
	default:
		parts = append(parts, st.OK.Render(st.marker("following", "▶ following")))
	}
	held := plural(m.ring.n, "line")
	if d := m.ring.dropped(); d > 0 {
		held += " (" + strconv.Itoa(d) + " older dropped, last " + strconv.Itoa(logBufferLines) + " kept)"
	}
	parts = append(parts, held)
	if m.wrap {
		parts = append(parts, "wrap on")
	} else {
		parts = append(parts, "wrap off")
	}
	switch {
	case m.searching:
		parts = append(parts, "search: "+m.search.View())
	case m.query != "":
		n, cur := m.matchCount()
		s := "search: " + m.query + " · "
		switch {
		case n == 0:
			s += "no match"
		case m.match < m.ring.first():
			s += plural(n, "matching line")
		default:
			s += "match " + strconv.Itoa(cur) + " of " + strconv.Itoa(n)
		}
		parts = append(parts, s)
	}
	return st.Dim.Render(strings.Join(parts, " · "))
}

// drawLine draws one screen line: notices dimmed, the query's matches
// highlighted (between >> and << without colours), the current match's
// line marked.
func (m *logsModel) drawLine(text string, notice, current bool) string {
	st := m.st
	var rs [][2]int
	if !m.searching {
		rs = matchRanges(text, m.query)
	}
	if len(rs) == 0 {
		if notice {
			return st.Dim.Render(pad(text, m.width))
		}
		return pad(text, m.width)
	}
	hl := st.Match
	if current {
		hl = st.CurrentMatch
	}
	var b strings.Builder
	last := 0
	for _, r := range rs {
		b.WriteString(text[last:r[0]])
		if st.ASCII {
			b.WriteString(">>" + text[r[0]:r[1]] + "<<")
		} else {
			b.WriteString(hl.Render(text[r[0]:r[1]]))
		}
		last = r[1]
	}
	b.WriteString(text[last:])
	return pad(b.String(), m.width)
}

// matchRanges are the byte ranges of q in s: ignoring case when q is all
// lower case (as less's -i and vim's smartcase do), exactly otherwise.
func matchRanges(s, q string) [][2]int {
	if q == "" {
		return nil
	}
	hay := s
	if q == strings.ToLower(q) {
		if low := strings.ToLower(s); len(low) == len(s) {
			hay = low
		}
	}
	var out [][2]int
	for off := 0; off <= len(hay); {
		i := strings.Index(hay[off:], q)
		if i < 0 {
			break
		}
		out = append(out, [2]int{off + i, off + i + len(q)})
		off += i + len(q)
	}
	return out
}

// wrapLine cuts s into lines of at most w columns, between words when it
// can, inside a word longer than a line.
func wrapLine(s string, w int) []string {
	if w <= 0 || ansi.StringWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Wrap(s, w, ""), "\n")
}

// sanitizeLine makes a log line safe to draw: escape sequences removed,
// tabs expanded to spaces, other control characters and invalid UTF-8
// replaced.
func sanitizeLine(s string) string {
	s = ansi.Strip(strings.ToValidUTF8(s, "\uFFFD"))
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case unicode.IsControl(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
