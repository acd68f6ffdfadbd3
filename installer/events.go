package installer

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// EventType says what happened.
type EventType string

const (
	EventStarted  EventType = "started"  // a step began
	EventProgress EventType = "progress" // a step moved on (bytes, or a message)
	EventDone     EventType = "done"     // a step changed the host and finished
	EventSkipped  EventType = "skipped"  // a step had nothing to do ("no change")
	EventFailed   EventType = "failed"   // a step failed; the run stops
	EventLog      EventType = "log"      // a line worth showing
)

// Event is one entry of the progress stream shared by the plain, JSON and
// TUI consumers.
type Event struct {
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	// Step names the step; Index (1-based) and Total place it in the plan.
	Step  string `json:"step,omitempty"`
	Index int    `json:"index,omitempty"`
	Total int    `json:"total,omitempty"`
	// Message says what happened, in words.
	Message string `json:"message,omitempty"`
	// Bytes of BytesTotal were handled so far (progress of a copy).
	Bytes      int64 `json:"bytes,omitempty"`
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// Warning marks a log line that needs the reader's attention.
	Warning bool `json:"warning,omitempty"`
	// Error is the failure of a failed step.
	Error string `json:"error,omitempty"`
	// Elapsed is the step's duration (done, skipped, failed).
	Elapsed time.Duration `json:"elapsedNs,omitempty"`
}

// Events consumes the progress stream. The TUI implements it too.
type Events interface{ Emit(Event) }

// EventsFunc adapts a function to Events.
type EventsFunc func(Event)

// Emit calls f.
func (f EventsFunc) Emit(e Event) { f(e) }

// Discard returns a consumer that drops every event.
func Discard() Events { return EventsFunc(func(Event) {}) }

type multi []Events

func (m multi) Emit(e Event) {
	for _, c := range m {
		c.Emit(e)
	}
}

// Multi sends every event to each consumer in turn.
func Multi(cs ...Events) Events { return multi(cs) }

// Plain writes one readable line per event, for logs and non-TTY output.
type Plain struct {
	mu sync.Mutex
	w  io.Writer
	// Timestamps prefixes each line with the event's time (log files).
	Timestamps bool
}

// NewPlain returns a plain-line consumer writing to w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

// Emit writes the event's line.
func (p *Plain) Emit(e Event) {
	line := PlainLine(e)
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Timestamps {
		fmt.Fprintf(p.w, "%s %s\n", e.Time.UTC().Format(time.RFC3339), line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// PlainLine renders an event as one line ("" for events not worth a line).
func PlainLine(e Event) string {
	pos := ""
	if e.Index > 0 {
		pos = fmt.Sprintf("[%d/%d] ", e.Index, e.Total)
	}
	took := ""
	if e.Elapsed > 0 {
		took = fmt.Sprintf(" (%s)", e.Elapsed.Round(10*time.Millisecond))
	}
	switch e.Type {
	case EventStarted:
		return pos + e.Step + " …"
	case EventProgress:
		if e.BytesTotal > 0 {
			return fmt.Sprintf("%s%s: %s %s of %s (%d%%)", pos, e.Step, e.Message, formatBytes(e.Bytes), formatBytes(e.BytesTotal), e.Bytes*100/e.BytesTotal)
		}
		return pos + e.Step + ": " + e.Message
	case EventDone:
		return pos + e.Step + ": done" + suffix(e.Message) + took
	case EventSkipped:
		return pos + e.Step + ": no change" + suffix(e.Message) + took
	case EventFailed:
		return pos + e.Step + ": FAILED: " + e.Error + took
	case EventLog:
		if e.Warning {
			return "warning: " + e.Message
		}
		return e.Message
	}
	return ""
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return " — " + msg
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// JSONLines writes each event as one JSON object per line (-o json).
type JSONLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONLines returns a JSON-lines consumer writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{enc: json.NewEncoder(w)} }

// Emit writes the event.
func (j *JSONLines) Emit(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e) // a closed pipe must not stop the install
}

// LogFile is a plain, timestamped copy of the stream in a 0600 file.
type LogFile struct {
	*Plain
	f *os.File
}

// OpenLogFile appends to path (created 0600 with its directory 0700).
func OpenLogFile(path string) (*LogFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create log directory %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("chmod log file %s: %w", path, err)
	}
	p := NewPlain(f)
	p.Timestamps = true
	return &LogFile{Plain: p, f: f}, nil
}

// Close closes the file.
func (l *LogFile) Close() error { return l.f.Close() }

// progressEvery limits byte-progress events to a few a second.
const progressEvery = 500 * time.Millisecond

// byteProgress returns a callback for bundle.Stage that emits throttled
// progress events for one file.
func byteProgress(ev Events, now func() time.Time, step, what string, total int64) func(int64) {
	var last time.Time
	return func(n int64) {
		t := now()
		if n != total && t.Sub(last) < progressEvery {
			return
		}
		last = t
		ev.Emit(Event{Time: t, Type: EventProgress, Step: step, Message: what, Bytes: n, BytesTotal: total})
	}
}
