package tui

import "github.com/tpctl/tpctl/manage"

// logBufferLines is how many log lines the logs page keeps: the newest
// ones; older lines are dropped (and counted) as new ones arrive. At most
// manage.MaxLogLine bytes each, in practice a few hundred, it bounds the
// page's memory to a few megabytes whatever the pipeline logs.
const logBufferLines = 5000

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
	return logEntry{text: sanitizeLine(l.String()), notice: l.Notice}
}
