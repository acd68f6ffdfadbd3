package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// Options configure the manager. The zero value works: the colours of
// standard output, wall clock, os.ReadFile and $VISUAL/$EDITOR.
type Options struct {
	// Colours are the terminal's (nil: those of standard output).
	Colours *Colours
	// Now is the clock for ages (nil: time.Now).
	Now func() time.Time
	// ReadFile reads configuration files (nil: os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Editor is the editor command (nil: $VISUAL, $EDITOR, else vi).
	Editor []string
	// Logs reads pipelines' logs for the logs page (nil: the page says
	// that logs cannot be read).
	Logs LogReader
	// Metrics reads the pipelines' metrics for the list's IN/S column and
	// the details' sparkline (nil: neither is shown).
	Metrics MetricsReader
	// MetricsInterval is the time between two readings (0: 5 s).
	MetricsInterval time.Duration
	// NodesInterval is the time between two reads of the nodes while the
	// nodes page is open (0: 5 s).
	NodesInterval time.Duration
}

// view is what the manager shows.
type view int

const (
	viewList view = iota
	viewDetail
	viewForm
	viewInstances
	viewInstanceForm
	viewLogs
	viewSecrets
	viewNodes
)

// Model is the root model of `tpctl tui`. It keeps the navigation between
// the pages, the watch and the status line; each page keeps its own state
// and keys.
type Model struct {
	env  *env
	help help.Model

	width, height int
	view          view
	back          view // where esc returns from a form
	list          *listModel
	detail        *detailModel
	form          *formModel // nil until a form is opened
	instances     *instanceModel
	instForm      *instanceForm // nil until an instance form is opened
	confirm       *confirmPage  // a delete awaiting confirmation, or nil
	logs          *logsModel    // the logs page while it is open, or nil
	logsBack      view          // where esc returns from the logs
	logsGen       int           // of the newest logs page: older readers' lines are dropped
	secrets       *secretsModel // the secrets page while it is open, or nil
	secretsGen    int           // of the newest secrets page: older answers are dropped
	nodes         *nodesModel   // the nodes page while it is open, or nil
	nodesBack     view          // where esc returns from the nodes
	nodesGen      int           // of the newest nodes page: older answers and ticks are dropped

	watchGen    int
	watchCh     <-chan manage.PipelineEvent
	watchCtx    context.Context
	watchCancel context.CancelFunc
	watching    bool
	status      string
	err         error
}

// New returns the manager over api; ctx bounds every call it makes.
func New(ctx context.Context, api manage.API, o Options) Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Editor == nil {
		o.Editor = editorCommand(os.Getenv)
	}
	st := NewStyles(o.Colours)
	if o.MetricsInterval <= 0 {
		o.MetricsInterval = defaultMetricsInterval
	}
	if o.NodesInterval <= 0 {
		o.NodesInterval = defaultNodesInterval
	}
	e := &env{ctx: ctx, api: api, opts: o, st: st, keys: newKeys()}
	if o.Metrics != nil {
		e.metrics = newMetricsState()
	}
	h := help.New()
	h.Styles = st.Help
	m := Model{env: e, help: h, width: 80, height: 24,
		list: newList(e), detail: newDetail(e), instances: &instanceModel{env: e, st: st, keys: e.keys}}
	m.watchCtx, m.watchCancel = context.WithCancel(ctx)
	m.resize()
	return m
}

// Init starts the watch and loads the instances.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{startWatch(m.watchCtx, m.env.api, m.watchGen), loadInstances(m.env.ctx, m.env.api)}
	if m.env.opts.Metrics != nil {
		cmds = append(cmds, collectMetrics(m.env.ctx, m.env.opts.Metrics))
	}
	return tea.Batch(cmds...)
}

// watchCmd opens the watch of generation m.watchGen. Its context ends with
// the manager's; the older watch is stopped.
func (m *Model) watchCmd() tea.Cmd {
	m.watchCancel()
	m.watchCtx, m.watchCancel = context.WithCancel(m.env.ctx)
	return startWatch(m.watchCtx, m.env.api, m.watchGen)
}

// chrome is the lines besides a view's body: title, status, help.
const chrome = 3

// maxStatusLines bounds a wrapped error under the body.
const maxStatusLines = 3

// pages are every page that exists.
func (m *Model) pages() []page {
	ps := []page{m.list, m.detail, m.instances}
	if m.form != nil {
		ps = append(ps, m.form)
	}
	if m.instForm != nil {
		ps = append(ps, m.instForm)
	}
	if m.logs != nil {
		ps = append(ps, m.logs)
	}
	if m.secrets != nil {
		ps = append(ps, m.secrets)
	}
	if m.nodes != nil {
		ps = append(ps, m.nodes)
	}
	return ps
}

func (m *Model) resize() {
	body := max(m.height-chrome, 3)
	for _, p := range m.pages() {
		p.SetSize(m.width, body)
	}
	m.help.SetWidth(m.width)
}

// page is the page of the current view.
func (m *Model) page() page {
	switch m.view {
	case viewDetail:
		return m.detail
	case viewForm:
		return m.form
	case viewInstances:
		return m.instances
	case viewInstanceForm:
		return m.instForm
	case viewLogs:
		return m.logs
	case viewSecrets:
		return m.secrets
	case viewNodes:
		return m.nodes
	}
	return m.list
}

// shown is the page on screen: the delete dialog, when asked, else the
// current view's page.
func (m *Model) shown() page {
	if m.confirm != nil {
		return m.confirm
	}
	return m.page()
}

// confirming names the pipeline awaiting delete confirmation ("": none).
func (m *Model) confirming() string {
	if m.confirm == nil {
		return ""
	}
	return m.confirm.name
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.resize()
		return m, nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.PasteMsg:
		// Pasted text goes where keys are typed, if anywhere.
		if p := m.shown(); p.Typing() {
			return m.navigate(p.Update(msg))
		}
		return m, nil
	case watchStartedMsg:
		if msg.gen != m.watchGen {
			return m, nil
		}
		m.watching, m.watchCh = true, msg.ch
		return m, nextEvents(msg.ch, msg.gen)
	case watchEventsMsg:
		if msg.gen != m.watchGen {
			return m, nil
		}
		next := nextEvents(m.watchCh, msg.gen)
		m.list.apply(msg.events)
		if m.detail.applyEvents(msg.events) && m.view == viewDetail {
			return m, tea.Batch(next, m.detail.load())
		}
		return m, next
	case watchEndedMsg:
		if msg.gen != m.watchGen {
			return m, nil
		}
		m.watching = false
		if msg.err != nil {
			m.err = fmt.Errorf("live refresh stopped (retrying): %w", msg.err)
		}
		m.watchGen++
		return m, rewatchLater(m.watchGen)
	case rewatchMsg:
		if msg.gen != m.watchGen {
			return m, nil
		}
		return m, m.watchCmd()
	case instancesMsg:
		m.instances.set(msg.items, msg.err)
		m.list.noInstance = m.instances.none()
		if m.form != nil && msg.err == nil {
			m.form.setInstances(m.instances.names())
		}
		if msg.err != nil {
			m.err = fmt.Errorf("list core instances: %w", msg.err)
		}
		return m, nil
	case detailDataMsg:
		cmd, _ := m.detail.Update(msg)
		return m, cmd
	case metricsMsg:
		if m.env.metrics == nil {
			return m, nil
		}
		m.env.metrics.update(msg)
		if m.view == viewDetail {
			m.detail.render()
		}
		return m, metricsTick(m.env.opts.MetricsInterval)
	case metricsTickMsg:
		if m.env.opts.Metrics == nil || m.env.ctx.Err() != nil {
			return m, nil
		}
		return m, collectMetrics(m.env.ctx, m.env.opts.Metrics)
	case logLinesMsg:
		if m.logs == nil || msg.gen != m.logs.gen {
			return m, nil
		}
		cmd, _ := m.logs.Update(msg)
		if msg.end && m.view == viewLogs {
			if msg.err != nil {
				m.err = &logsError{pipeline: m.logs.pipeline, err: msg.err}
			} else if m.env.ctx.Err() == nil {
				m.status = "the log of pipeline " + m.logs.pipeline + " ended"
			}
		}
		return m, cmd
	case secretsLoadedMsg, secretsChangedMsg:
		if m.secrets != nil {
			return m.navigate(m.secrets.Update(msg))
		}
		return m, nil
	case nodesMsg, nodesTickMsg:
		// Those of a closed nodes page are dropped: its reads stop.
		if m.nodes != nil {
			return m.navigate(m.nodes.Update(msg))
		}
		return m, nil
	case pipelineSavedMsg:
		m.status, m.err = fmt.Sprintf("pipeline %s %s; the operator assigns its ports", msg.p.Name, msg.verb), nil
		m.view = viewDetail
		m.detail.show(msg.p)
		m.list.rows[msg.p.Name] = newRow(msg.p)
		m.list.resort()
		return m, m.detail.load()
	case pipelineDeletedMsg:
		m.status, m.err = "pipeline "+msg.name+" deleted", nil
		if m.view == viewDetail && m.detail.name() == msg.name {
			m.view = viewList
		}
		return m, nil
	case instanceSavedMsg:
		m.status, m.err = "core instance "+msg.inst.Name+" updated", nil
		m.view = viewInstances
		return m, loadInstances(m.env.ctx, m.env.api)
	case errMsg:
		m.err = fmt.Errorf("%s: %w", msg.op, msg.err)
		return m, nil
	case formErrMsg, configLoadedMsg, editorDoneMsg:
		// Answers to a form: taken by the form on screen.
		if m.view == viewForm || m.view == viewInstanceForm {
			return m.navigate(m.page().Update(msg))
		}
		return m, nil
	case editorReadyMsg:
		if m.form != nil {
			return m.navigate(m.form.Update(msg))
		}
		return m, nil
	}
	return m, nil
}

// key handles the global keys (ctrl+c; ? and q unless the page takes
// typed text), then hands the key to the page on screen.
func (m Model) key(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if msg.String() == "ctrl+c" {
		return m, tea.Quit
	}
	p := m.shown()
	if !p.Typing() {
		switch {
		case key.Matches(msg, m.env.keys.Help):
			m.help.ShowAll = !m.help.ShowAll
			return m, nil
		case key.Matches(msg, m.env.keys.Quit):
			return m, tea.Quit
		}
	}
	return m.navigate(p.Update(msg))
}

// navigate runs a page's command and goes where it asked.
func (m Model) navigate(cmd tea.Cmd, to nav) (tea.Model, tea.Cmd) {
	switch to := to.(type) {
	case nil:
		return m, cmd
	case navBack:
		switch m.view {
		case viewForm:
			m.view = m.back
		case viewInstanceForm:
			m.view = viewInstances
		case viewLogs:
			m.view = m.logsBack
			m.closeLogs()
		case viewSecrets:
			m.view, m.secrets = viewDetail, nil
		case viewNodes:
			m.view, m.nodes = m.nodesBack, nil
		default:
			m.view = viewList
		}
		if to.status != "" {
			m.status = to.status
		}
		return m, cmd
	case navOpen:
		m.view = viewDetail
		m.detail.show(to.p)
		return m, tea.Batch(cmd, m.detail.load())
	case navEdit:
		var orig *v1alpha1.Pipeline
		if to.p != nil {
			orig = to.p.DeepCopy()
		}
		m.form = newForm(m.env, m.instances.names(), orig)
		m.form.SetSize(m.width, max(m.height-chrome, 3))
		m.view, m.back = viewForm, m.view
		m.status, m.err = "", nil
		return m, tea.Batch(cmd, m.form.init())
	case navDelete:
		m.confirm = newConfirm(m.env, to.name, m.page())
		return m, cmd
	case navDeleteConfirmed:
		m.confirm = nil
		m.status = "deleting pipeline " + to.name + "…"
		return m, tea.Batch(cmd, deletePipeline(m.env.ctx, m.env.api, to.name))
	case navDeleteCancelled:
		m.confirm = nil
		m.status = "delete cancelled"
		return m, cmd
	case navInstances:
		m.view = viewInstances
		return m, tea.Batch(cmd, loadInstances(m.env.ctx, m.env.api))
	case navEditInstance:
		m.instForm = newInstanceForm(m.env, to.inst)
		m.instForm.SetSize(m.width, max(m.height-chrome, 3))
		m.view = viewInstanceForm
		return m, tea.Batch(cmd, m.instForm.setFocus(iHTTP))
	case navLogs:
		m.closeLogs()
		m.logsGen++
		m.logs = newLogs(m.env, to.name, m.logsGen)
		m.logs.SetSize(m.width, max(m.height-chrome, 3))
		if m.view != viewLogs {
			m.logsBack = m.view
		}
		m.view = viewLogs
		m.status, m.err = "", nil
		return m, tea.Batch(cmd, m.logs.start(m.env.opts.Logs))
	case navSecrets:
		m.secretsGen++
		m.secrets = newSecrets(m.env, to.name, m.secretsGen)
		m.secrets.SetSize(m.width, max(m.height-chrome, 3))
		m.view = viewSecrets
		m.status, m.err = "", nil
		return m, tea.Batch(cmd, m.secrets.load())
	case navNodes:
		m.nodesGen++
		m.nodes = newNodes(m.env, m.nodesGen)
		m.nodes.SetSize(m.width, max(m.height-chrome, 3))
		m.view, m.nodesBack = viewNodes, m.view
		m.status, m.err = "", nil
		return m, tea.Batch(cmd, m.nodes.load())
	case navRefresh:
		// The watch reopens; its first event replaces the list.
		m.watchGen++
		m.status, m.err = "refreshing…", nil
		return m, tea.Batch(cmd, m.watchCmd(), loadInstances(m.env.ctx, m.env.api))
	}
	return m, cmd
}

// closeLogs ends the logs page's read and forgets its lines, and the
// error it showed.
func (m *Model) closeLogs() {
	if m.logs == nil {
		return
	}
	m.logs.stop()
	m.logs = nil
	var le *logsError
	if errors.As(m.err, &le) {
		m.err = nil
	}
}

// logsError is the logs page's reader failing.
type logsError struct {
	pipeline string
	err      error
}

func (e *logsError) Error() string {
	return "read the logs of pipeline " + e.pipeline + ": " + e.err.Error()
}
func (e *logsError) Unwrap() error { return e.err }

// View implements tea.Model: the manager takes the alternate screen.
func (m Model) View() tea.View {
	v := tea.NewView(m.env.st.screen(m.render()))
	v.AltScreen = true
	return v
}

// render draws the title line, the page, the status line and the keys.
func (m Model) render() string {
	st := m.env.st
	p := m.shown()
	body := p.View()
	live := st.marker("live", "● live")
	if !m.watching {
		live = st.marker("not live", "○ not live")
	}
	head := st.Title.Render("tpctl") + st.Dim.Render(" · "+p.Title()+" · namespace "+m.env.api.Namespace()+" · "+live)

	status := ""
	switch {
	case m.err != nil:
		status = strings.TrimRight(st.errorBlock(m.err.Error(), m.width, ""), "\n")
		if lines := strings.Split(status, "\n"); len(lines) > maxStatusLines {
			status = strings.Join(lines[:maxStatusLines], "\n")
		}
	case m.status != "":
		status = pad(st.Dim.Render(m.status), m.width)
	}
	bodyHeight := max(m.height-chrome-strings.Count(status, "\n"), 1)
	body = fitLines(body, bodyHeight, m.width)
	return head + "\n" + body + "\n" + status + "\n" + m.help.View(p)
}

// fitLines pads or cuts s to exactly h lines of at most w columns.
func fitLines(s string, h, w int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if lipgloss.Width(l) > w {
			lines[i] = pad(l, w)
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}
