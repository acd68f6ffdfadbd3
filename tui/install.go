package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"
	xterm "github.com/charmbracelet/x/term"

	"github.com/tpctl/tpctl/installer"
)

// InstallSummary is what the install screen shows once the run succeeded.
type InstallSummary struct {
	// Kubeconfig is the admin kubeconfig the install wrote.
	Kubeconfig string
	// Endpoints are "what: address" lines (API server, health check, …).
	Endpoints []string
	// Next are commands worth running next.
	Next []string
	// LogFile is where the full log is.
	LogFile string
}

// NewInstallSummary is the summary of a finished install: its kubeconfig,
// its log, the endpoints worth knowing ("API server: https://…:6443") and
// the commands people run next.
func NewInstallSummary(kubeconfig, logFile string, endpoints ...string) InstallSummary {
	return InstallSummary{Kubeconfig: kubeconfig, LogFile: logFile, Endpoints: endpoints, Next: []string{
		"tpctl instance get                      # the core instance: proxies, health check",
		"tpctl pipeline create --name NAME --config-file FILE [--port tcp/5170] --wait",
		"tpctl pipeline endpoints NAME           # where clients send data",
		"tpctl tui                               # manage pipelines interactively",
	}}
}

// stepState is where a step of the plan is.
type stepState int

const (
	stepPending stepState = iota
	stepRunning
	stepDone
	stepSkipped
	stepFailed
)

type stepRow struct {
	name    string
	state   stepState
	message string
	elapsed time.Duration
}

// Messages of the install screen.
type (
	installEventMsg installer.Event
	installDoneMsg  struct {
		summary InstallSummary
		err     error
	}
)

// maxLog is how many log lines the screen keeps.
const maxLog = 500

// InstallModel shows an install as its events arrive: every step with its
// state, a byte progress bar while a payload is copied, the latest log
// lines and, at the end, a summary (or the failure). It quits by itself
// when the run ends, leaving its last screen on the terminal.
type InstallModel struct {
	st       Styles
	bar      progress.Model
	steps    []stepRow
	log      []string
	current  int // index into steps of the running step, -1 when none
	bytes    int64
	total    int64
	what     string
	finished bool
	err      error
	summary  InstallSummary
	width    int
	height   int
}

// NewInstallModel returns the install screen drawn in colours c (nil: those
// of standard output).
func NewInstallModel(c *Colours) InstallModel {
	st := NewStyles(c)
	opts := []progress.Option{progress.WithoutPercentage(), progress.WithWidth(40)}
	if st.ASCII {
		opts = append(opts, progress.WithFillCharacters('#', '-'))
	} else {
		opts = append(opts, progress.WithDefaultBlend())
	}
	return InstallModel{st: st, bar: progress.New(opts...), current: -1, width: 80, height: 24}
}

// WithSteps names the plan's steps up front, so the screen lists every step
// before its first event arrives.
func (m InstallModel) WithSteps(names ...string) InstallModel {
	m.steps = make([]stepRow, len(names))
	for i, n := range names {
		m.steps[i].name = n
	}
	return m
}

// Init implements tea.Model.
func (m InstallModel) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m InstallModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.bar.SetWidth(min(max(msg.Width-30, 10), 60))
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" {
			m.err = errors.New("interrupted")
			return m, tea.Quit
		}
	case installEventMsg:
		m.event(installer.Event(msg))
	case installDoneMsg:
		m.finished, m.err, m.summary = true, msg.err, msg.summary
		return m, tea.Quit
	}
	return m, nil
}

// step returns the row of the event's step, adding rows as the plan's
// size becomes known.
func (m *InstallModel) step(e installer.Event) *stepRow {
	if e.Index <= 0 {
		for i := range m.steps {
			if m.steps[i].name == e.Step {
				return &m.steps[i]
			}
		}
		m.steps = append(m.steps, stepRow{name: e.Step})
		return &m.steps[len(m.steps)-1]
	}
	for len(m.steps) < max(e.Total, e.Index) {
		m.steps = append(m.steps, stepRow{})
	}
	r := &m.steps[e.Index-1]
	if e.Step != "" {
		r.name = e.Step
	}
	return r
}

func (m *InstallModel) event(e installer.Event) {
	if line := installer.PlainLine(e); line != "" && e.Type != installer.EventProgress {
		m.log = append(m.log, line)
		if len(m.log) > maxLog {
			m.log = m.log[len(m.log)-maxLog:]
		}
	}
	if e.Type == installer.EventLog {
		return
	}
	r := m.step(e)
	idx := -1
	for i := range m.steps {
		if &m.steps[i] == r {
			idx = i
		}
	}
	switch e.Type {
	case installer.EventStarted:
		r.state = stepRunning
		m.current, m.bytes, m.total, m.what = idx, 0, 0, ""
	case installer.EventProgress:
		r.state = stepRunning
		r.message = e.Message
		if e.BytesTotal > 0 {
			m.bytes, m.total, m.what = e.Bytes, e.BytesTotal, e.Message
		}
	case installer.EventDone, installer.EventSkipped, installer.EventFailed:
		r.state = map[installer.EventType]stepState{installer.EventDone: stepDone,
			installer.EventSkipped: stepSkipped, installer.EventFailed: stepFailed}[e.Type]
		r.message, r.elapsed = e.Message, e.Elapsed
		if e.Type == installer.EventFailed {
			r.message = e.Error
		}
		if m.current == idx {
			m.current, m.total = -1, 0
		}
	}
}

// View implements tea.Model.
func (m InstallModel) View() tea.View {
	return tea.NewView(m.st.screen(m.render()))
}

func (m InstallModel) render() string {
	st := m.st
	var b strings.Builder
	b.WriteString(st.Title.Render("tpctl install") + "\n\n")
	for _, r := range m.steps {
		var mark string
		switch r.state {
		case stepRunning:
			mark = st.Focused.Render(st.marker("[..]", " ● "))
		case stepDone:
			mark = st.OK.Render(st.marker("[ok]", " ✓ "))
		case stepSkipped:
			mark = st.Dim.Render(st.marker("[--]", " – "))
		case stepFailed:
			mark = st.Error.Render(st.marker("[!!]", " ✗ "))
		default:
			mark = st.Dim.Render(st.marker("[  ]", " ○ "))
		}
		name := r.name
		if name == "" {
			name = "…"
		}
		line := mark + " " + name
		switch r.state {
		case stepDone:
			line += st.Dim.Render(suffix(r.message) + took(r.elapsed))
		case stepSkipped:
			line += st.Dim.Render(": no change" + suffix(r.message) + took(r.elapsed))
		case stepFailed:
			line += ": " + st.Error.Render("failed: "+r.message)
		case stepRunning:
			if r.message != "" {
				line += st.Dim.Render(": " + r.message)
			}
		}
		b.WriteString(pad(line, m.width) + "\n")
	}
	if m.total > 0 && !m.finished {
		pct := float64(m.bytes) / float64(m.total)
		b.WriteString("\n" + m.what + "\n" + m.bar.ViewAs(pct) +
			fmt.Sprintf(" %3.0f%%  %s of %s", pct*100, formatBytes(m.bytes), formatBytes(m.total)) + "\n")
	}
	b.WriteString("\n" + st.Header.Render("Log") + "\n")
	logLines := max(m.height-len(m.steps)-12, 3)
	if m.finished {
		logLines = min(logLines, 5)
	}
	from := max(len(m.log)-logLines, 0)
	for _, l := range m.log[from:] {
		b.WriteString(st.Dim.Render(pad(l, m.width)) + "\n")
	}
	if m.finished {
		b.WriteString("\n" + m.summaryView())
	}
	return b.String()
}

func (m InstallModel) summaryView() string {
	st := m.st
	var b strings.Builder
	if m.err != nil {
		b.WriteString(st.Error.Render("Install failed: "+m.err.Error()) + "\n")
		if m.summary.LogFile != "" {
			b.WriteString("The full log is in " + m.summary.LogFile + "; running tpctl install again resumes.\n")
		}
		return b.String()
	}
	b.WriteString(st.OK.Render("Installed.") + "\n")
	if m.summary.Kubeconfig != "" {
		b.WriteString(st.Label.Render("Kubeconfig  ") + m.summary.Kubeconfig + "\n")
	}
	for i, e := range m.summary.Endpoints {
		lbl := "            "
		if i == 0 {
			lbl = "Endpoints   "
		}
		b.WriteString(st.Label.Render(lbl) + e + "\n")
	}
	if m.summary.LogFile != "" {
		b.WriteString(st.Label.Render("Log         ") + m.summary.LogFile + "\n")
	}
	if len(m.summary.Next) > 0 {
		b.WriteString("\n" + st.Header.Render("Next") + "\n")
		for _, n := range m.summary.Next {
			b.WriteString("  " + n + "\n")
		}
	}
	return b.String()
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func took(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " (" + d.Round(10*time.Millisecond).String() + ")"
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for q := n / unit; q >= unit; q /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Finished reports whether the run ended, and its error.
func (m InstallModel) Finished() (bool, error) { return m.finished, m.err }

// InstallRun is the work the install screen watches: it emits its progress
// to ev and returns what the summary shows.
type InstallRun func(ctx context.Context, ev installer.Events) (InstallSummary, error)

// RunInstall runs run while the install screen shows its events on out
// (reading keys from in), and returns run's error. Ctrl+C on the screen
// cancels run's context; RunInstall still waits for run to return, so
// the installer can stop cleanly. steps, when given, name the plan's steps
// so the screen lists them all from the start.
// c are the colours of out (nil: found from out).
func RunInstall(ctx context.Context, in io.Reader, out io.Writer, c *Colours, run InstallRun, steps ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c == nil {
		c = coloursOf(in, out)
	}
	m := NewInstallModel(c).WithSteps(steps...)
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithColorProfile(c.Profile)}
	if f, ok := out.(xterm.File); !ok || !xterm.IsTerminal(f.Fd()) {
		// No terminal to ask for its size: draw at the screen's own.
		opts = append(opts, tea.WithWindowSize(m.width, m.height))
	}
	p := tea.NewProgram(m, opts...)
	errc := make(chan error, 1)
	go func() {
		sum, err := run(ctx, installer.EventsFunc(func(e installer.Event) { p.Send(installEventMsg(e)) }))
		p.Send(installDoneMsg{summary: sum, err: err})
		errc <- err
	}()
	_, perr := p.Run()
	cancel()
	err := <-errc
	if err == nil && perr != nil && !errors.Is(perr, tea.ErrProgramKilled) {
		return fmt.Errorf("install screen: %w", perr)
	}
	return err
}
