package tui

import (
	"unicode/utf8"

	"github.com/tpctl/tpctl/manage"
)

// logBufferLines is how many log lines the logs page keeps: the newest
// ones; older lines are dropped (and counted) as new ones arrive. With
// logLineBytes it bounds the page's memory to about 20 MiB whatever the
// pipeline logs (a few hundred bytes a line is usual: about 1 MiB).
const logBufferLines = 5000

// logLineBytes is the longest line the page keeps (41 screen lines of 100
// columns when wrapped); the rest is cut and the line ends with
// manage.LogTruncated, as the reader ends the lines it cuts.
const logLineBytes = 4 << 10

// logEntry is one line of the logs page as it is drawn: the reader's line
// with control characters removed, its pod prefix included.
type logEntry struct {
	text   string
	notice bool
}

// logRing keeps the last cap lines. Lines are numbered from 0 in the order
// they arrived, dropped ones included, so a position survives drops.
type logRing struct {
	buf   []logEntry
	start int // index in buf of the oldest line
	n     int // lines held
	total int // lines ever added
}

func newLogRing(capacity int) *logRing { return &logRing{buf: make([]logEntry, capacity)} }

// add keeps e, dropping the oldest line when the ring is full.
func (r *logRing) add(e logEntry) {
	if len(r.buf) == 0 {
		r.total++
		return
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
	} else {
		r.buf[r.start] = e
		r.start = (r.start + 1) % len(r.buf)
	}
	r.total++
}

// first is the number of the oldest line held; end is one past the newest.
func (r *logRing) first() int { return r.total - r.n }
func (r *logRing) end() int   { return r.total }

// dropped is how many lines were dropped to keep the bound.
func (r *logRing) dropped() int { return r.total - r.n }

// at returns line number i, which must be in [first, end).
func (r *logRing) at(i int) logEntry {
	return r.buf[(r.start+i-r.first())%len(r.buf)]
}

// entryOf is how a reader's line is kept: as `tpctl pipeline logs` prints
// it ("[pod] text"), without the escape and control characters a log may
// hold, which would move the terminal's cursor or change its colours.
func entryOf(l manage.LogLine) logEntry {
	text := l.String()
	if len(text) > logLineBytes {
		cut := logLineBytes
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + manage.LogTruncated
	}
	return logEntry{text: sanitizeLine(text), notice: l.Notice}
}
