package tui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// Options configure the manager. The zero value works: default renderer,
// wall clock, os.ReadFile and $VISUAL/$EDITOR.
type Options struct {
	// Renderer draws the styles (nil: lipgloss's default renderer).
	Renderer *lipgloss.Renderer
	// Now is the clock for ages (nil: time.Now).
	Now func() time.Time
	// ReadFile reads configuration files (nil: os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Editor is the editor command (nil: $VISUAL, $EDITOR, else vi).
	Editor []string
}

// view is what the manager shows.
type view int

const (
	viewList view = iota
	viewDetail
	viewForm
	viewInstances
	viewInstanceForm
)

// Model is the root model of `tpctl tui`.
type Model struct {
	ctx  context.Context
	api  manage.API
	opts Options
	st   Styles
	keys keys
	help help.Model

	width, height int
	view          view
	back          view // where esc returns from a form
	list          listModel
	detail        detailModel
	form          formModel
	instances     instanceModel
	instForm      instanceForm
	confirm       string // pipeline awaiting delete confirmation

	watchGen    int
	watchCh     <-chan manage.PipelineEvent
	watchCtx    context.Context
	watchCancel context.CancelFunc
	watching    bool
	detailSeq   int
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
	st := NewStyles(o.Renderer)
	k := newKeys()
	h := help.New()
	h.Styles = st.Help
	m := Model{ctx: ctx, api: api, opts: o, st: st, keys: k, help: h, width: 80, height: 24,
		list: newList(st, k), detail: newDetail(st, k, o.Now), instances: instanceModel{st: st, keys: k}}
	m.watchCtx, m.watchCancel = context.WithCancel(ctx)
	m.resize()
	return m
}

// Init starts the watch and loads the instances.
func (m Model) Init() tea.Cmd {
	return tea.Batch(startWatch(m.watchCtx, m.api, m.watchGen), loadInstances(m.ctx, m.api))
}

// watchCmd opens the watch of generation m.watchGen. Its context ends with
// the manager's; the older watch is stopped.
func (m *Model) watchCmd() tea.Cmd {
	m.watchCancel()
	m.watchCtx, m.watchCancel = context.WithCancel(m.ctx)
	return startWatch(m.watchCtx, m.api, m.watchGen)
}

// chrome is the lines besides a view's body: title, status, help.
const chrome = 3

// maxStatusLines bounds a wrapped error under the body.
const maxStatusLines = 3

func (m *Model) resize() {
	body := max(m.height-chrome, 3)
	m.list.setSize(m.width, body-listChrome+1)
	m.detail.setSize(m.width, body-1)
	m.form.setWidth(m.width)
	m.instForm.setWidth(m.width)
	m.instances.width = m.width
	m.help.Width = m.width
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.resize()
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
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
		if m.applyEvents(msg.events) && m.view == viewDetail {
			return m, tea.Batch(next, m.loadDetail(m.detail.name()))
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
		if msg.err != nil {
			m.err = fmt.Errorf("list core instances: %w", msg.err)
		}
		return m, nil
	case detailDataMsg:
		if msg.name == m.detail.name() && msg.seq == m.detailSeq {
			m.detail.loaded(msg)
		}
		return m, nil
	case pipelineSavedMsg:
		m.status, m.err = fmt.Sprintf("pipeline %s %s; the operator assigns its ports", msg.p.Name, msg.verb), nil
		m.view = viewDetail
		m.detail.show(msg.p)
		m.list.rows[msg.p.Name] = newRow(msg.p)
		m.list.resort()
		return m, m.loadDetail(msg.p.Name)
	case pipelineDeletedMsg:
		m.status, m.err = "pipeline "+msg.name+" deleted", nil
		if m.view == viewDetail && m.detail.name() == msg.name {
			m.view = viewList
		}
		return m, nil
	case instanceSavedMsg:
		m.status, m.err = "core instance "+msg.inst.Name+" updated", nil
		m.view = viewInstances
		return m, loadInstances(m.ctx, m.api)
	case formErrMsg:
		if m.view == viewForm {
			m.form.saving, m.form.saveErr = false, msg.err.Error()
		} else if m.view == viewInstanceForm {
			m.instForm.saving, m.instForm.saveErr = false, msg.err.Error()
		}
		return m, nil
	case errMsg:
		m.err = fmt.Errorf("%s: %w", msg.op, msg.err)
		return m, nil
	case configLoadedMsg:
		if m.view == viewForm {
			m.form.configLoaded(msg)
		}
		return m, nil
	case editorReadyMsg:
		return m, runEditor(m.opts.Editor, msg.path)
	case editorDoneMsg:
		if m.view == viewForm {
			m.form.edited(msg)
		}
		return m, nil
	}
	return m, nil
}

// applyEvents folds watch events into the list and the detail view. It
// reports whether the shown pipeline's ports, Service type or readiness
// changed, which makes its endpoints and events worth loading again.
func (m *Model) applyEvents(events []manage.PipelineEvent) bool {
	m.list.apply(events)
	if m.detail.p == nil {
		return false
	}
	name := m.detail.name()
	reload := false
	show := func(p *v1alpha1.Pipeline) {
		reload = reload || statusMoved(m.detail.p, p)
		m.detail.changed(p)
	}
	for _, e := range events {
		switch {
		case e.Type == manage.EventReset:
			found := false
			for i := range e.Pipelines {
				if e.Pipelines[i].Name == name {
					show(&e.Pipelines[i])
					found = true
				}
			}
			if !found {
				m.detail.deleted()
			}
		case e.Pipeline != nil && e.Pipeline.Name == name:
			if e.Type == manage.EventDeleted {
				m.detail.deleted()
			} else {
				show(e.Pipeline)
			}
		}
	}
	return reload
}

// loadDetail loads the shown pipeline's endpoints and events; only the
// newest load is taken.
func (m *Model) loadDetail(name string) tea.Cmd {
	m.detailSeq++
	return loadDetail(m.ctx, m.api, name, m.detailSeq)
}

// statusMoved reports a change that shows in endpoints or events.
func statusMoved(old, cur *v1alpha1.Pipeline) bool {
	return old.Status.PortSummary != cur.Status.PortSummary || old.Status.ServiceType != cur.Status.ServiceType ||
		old.Status.ReadyReplicas != cur.Status.ReadyReplicas || old.Generation != cur.Generation ||
		manage.StatusText(old) != manage.StatusText(cur)
}

func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.String() == "ctrl+c" {
		return m, tea.Quit
	}
	if m.confirm != "" {
		name := m.confirm
		m.confirm = ""
		if key.Matches(msg, m.keys.Yes) {
			m.status = "deleting pipeline " + name + "…"
			return m, deletePipeline(m.ctx, m.api, name)
		}
		m.status = "delete cancelled"
		return m, nil
	}
	switch m.view {
	case viewForm:
		return m.formKey(msg)
	case viewInstanceForm:
		return m.instanceFormKey(msg)
	}
	if key.Matches(msg, m.keys.Help) && !m.list.filtering {
		m.help.ShowAll = !m.help.ShowAll
		return m, nil
	}
	switch m.view {
	case viewDetail:
		return m.detailKey(msg)
	case viewInstances:
		return m.instancesKey(msg)
	}
	return m.listKey(msg)
}

func (m Model) listKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	var handled bool
	if m.list, cmd, handled = m.list.update(msg); handled {
		return m, cmd
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.Open):
		if p := m.list.selected(); p != nil {
			m.view = viewDetail
			m.detail.show(p)
			return m, m.loadDetail(p.Name)
		}
	case key.Matches(msg, k.New):
		return m.openForm(nil, viewList)
	case key.Matches(msg, k.Edit):
		if p := m.list.selected(); p != nil {
			return m.openForm(p, viewList)
		}
	case key.Matches(msg, k.Delete):
		if p := m.list.selected(); p != nil {
			m.confirm = p.Name
		}
	case key.Matches(msg, k.Instances):
		m.view = viewInstances
		return m, loadInstances(m.ctx, m.api)
	case key.Matches(msg, k.Refresh):
		return m.refresh()
	}
	return m, nil
}

// refresh reopens the watch (its first event replaces the list).
func (m Model) refresh() (tea.Model, tea.Cmd) {
	m.watchGen++
	m.status, m.err = "refreshing…", nil
	return m, tea.Batch(m.watchCmd(), loadInstances(m.ctx, m.api))
}

func (m Model) detailKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		m.view = viewList
		return m, nil
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.Edit):
		if m.detail.p != nil && !m.detail.gone {
			return m.openForm(m.detail.p, viewDetail)
		}
	case key.Matches(msg, k.Delete):
		if m.detail.p != nil && !m.detail.gone {
			m.confirm = m.detail.name()
		}
	case key.Matches(msg, k.Refresh):
		if m.detail.p != nil {
			m.detail.loading = true
			return m, m.loadDetail(m.detail.name())
		}
	default:
		var cmd tea.Cmd
		m.detail, cmd = m.detail.update(msg)
		return m, cmd
	}
	return m, nil
}

func (m Model) instancesKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		m.view = viewList
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.Refresh):
		return m, loadInstances(m.ctx, m.api)
	case key.Matches(msg, k.Edit):
		if inst := m.instances.selected(); inst != nil {
			m.instForm = newInstanceForm(m.st, inst.DeepCopy())
			m.instForm.setWidth(m.width)
			m.view = viewInstanceForm
			return m, m.instForm.setFocus(iHTTP)
		}
	default:
		m.instances = m.instances.update(msg)
	}
	return m, nil
}

func (m Model) openForm(p *v1alpha1.Pipeline, back view) (tea.Model, tea.Cmd) {
	names := make([]string, len(m.instances.items))
	for i, inst := range m.instances.items {
		names[i] = inst.Name
	}
	var orig *v1alpha1.Pipeline
	if p != nil {
		orig = p.DeepCopy()
	}
	m.form = newForm(m.st, m.api.Namespace(), names, orig)
	m.form.setWidth(m.width)
	m.view, m.back = viewForm, back
	m.status, m.err = "", nil
	return m, m.form.init()
}

func (m Model) formKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	var act formAction
	m.form, cmd, act = m.form.update(msg)
	switch act {
	case formCancel:
		m.view = m.back
		m.status = "nothing saved"
		return m, nil
	case formLoadConfig:
		path := strings.TrimSpace(m.form.configPath.Value())
		return m, tea.Batch(cmd, readConfigFile(m.opts.ReadFile, path))
	case formEditor:
		content, ext := m.form.editorContent()
		return m, prepareEditor(content, ext)
	case formSubmit:
		m.form.saving, m.form.saveErr = true, ""
		ch := m.form.change()
		if m.form.editing() {
			if ch.IsEmpty() {
				m.form.saving, m.form.saveErr = false, "nothing changed yet"
				return m, nil
			}
			return m, updatePipeline(m.ctx, m.api, m.form.orig.Name, ch)
		}
		p := m.form.candidate()
		return m, createPipeline(m.ctx, m.api, p, ch.PortTexts)
	}
	return m, cmd
}

func (m Model) instanceFormKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	var act formAction
	m.instForm, cmd, act = m.instForm.update(msg)
	switch act {
	case formCancel:
		m.view = viewInstances
		m.status = "nothing saved"
		return m, nil
	case formSubmit:
		m.instForm.saving, m.instForm.saveErr = true, ""
		return m, updateInstance(m.ctx, m.api, m.instForm.orig.Name, m.instForm.change())
	}
	return m, cmd
}

// View implements tea.Model.
func (m Model) View() string {
	st := m.st
	var title, body string
	var km help.KeyMap
	switch m.view {
	case viewDetail:
		title = "Pipeline " + m.detail.name()
		body = m.detail.view()
		km = m.keys.detailHelp()
	case viewForm:
		title = "Pipelines"
		body = m.form.view()
		km = m.keys.formHelp(m.form.focus == fPorts)
	case viewInstances:
		title = "Core instances"
		body = m.instances.view(m.api.Namespace())
		km = m.keys.instanceHelp()
	case viewInstanceForm:
		title = "Core instances"
		body = m.instForm.view()
		km = m.keys.instanceFormHelp()
	default:
		title = "Pipelines"
		body = m.list.view(m.api.Namespace(), m.instances.loaded && len(m.instances.items) == 0 && m.instances.err == nil)
		km = m.keys.listHelp(m.list.filtering)
	}
	if m.confirm != "" {
		km = m.keys.confirmHelp()
		dialog := st.Dialog.Render(fmt.Sprintf("Delete pipeline %q?\nIts workload, Service and ConfigMap go with it.\n\n(y)es / (n)o", m.confirm))
		body = dialog + "\n" + body
	}
	live := st.marker("live", "● live")
	if !m.watching {
		live = st.marker("not live", "○ not live")
	}
	head := st.Title.Render("tpctl") + st.Dim.Render(" · "+title+" · namespace "+m.api.Namespace()+" · "+live)

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
	return head + "\n" + body + "\n" + status + "\n" + m.help.View(km)
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
