package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

// detailModel shows one pipeline: settings, port triplets with their
// addresses, conditions, recent events and the configuration, scrollable.
type detailModel struct {
	env       *env
	st        Styles
	keys      keys
	p         *v1alpha1.Pipeline
	endpoints []manage.Endpoint
	events    []manage.Event
	loading   bool
	loadErr   error
	gone      bool // deleted while shown
	vp        viewport.Model
	now       func() time.Time
	seq       int // of the newest load: only its answer is taken
}

func newDetail(e *env) *detailModel {
	return &detailModel{env: e, st: e.st, keys: e.keys, vp: viewport.New(viewport.WithWidth(80), viewport.WithHeight(10)), now: e.opts.Now}
}

// show starts showing p; endpoints and events load separately.
func (m *detailModel) show(p *v1alpha1.Pipeline) {
	m.p, m.endpoints, m.events, m.loading, m.loadErr, m.gone = p, nil, nil, true, nil, false
	m.vp.GotoTop()
	m.render()
}

func (m *detailModel) name() string {
	if m.p == nil {
		return ""
	}
	return m.p.Name
}

// changed takes a newer version of the pipeline from the watch.
func (m *detailModel) changed(p *v1alpha1.Pipeline) {
	m.p = p
	m.render()
}

func (m *detailModel) deleted() {
	m.gone = true
	m.render()
}

// load loads the shown pipeline's endpoints and events; only the newest
// load is taken.
func (m *detailModel) load() tea.Cmd {
	m.seq++
	return loadDetail(m.env.ctx, m.env.api, m.name(), m.seq)
}

// applyEvents folds watch events into the shown pipeline. It reports
// whether its ports, Service type or readiness changed, which makes its
// endpoints and events worth loading again.
func (m *detailModel) applyEvents(events []manage.PipelineEvent) bool {
	if m.p == nil {
		return false
	}
	name := m.name()
	reload := false
	show := func(p *v1alpha1.Pipeline) {
		reload = reload || statusMoved(m.p, p)
		m.changed(p)
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
				m.deleted()
			}
		case e.Pipeline != nil && e.Pipeline.Name == name:
			if e.Type == manage.EventDeleted {
				m.deleted()
			} else {
				show(e.Pipeline)
			}
		}
	}
	return reload
}

// statusMoved reports a change that shows in endpoints or events.
func statusMoved(old, cur *v1alpha1.Pipeline) bool {
	return old.Status.PortSummary != cur.Status.PortSummary || old.Status.ServiceType != cur.Status.ServiceType ||
		old.Status.ReadyReplicas != cur.Status.ReadyReplicas || old.Generation != cur.Generation ||
		manage.StatusText(old) != manage.StatusText(cur)
}

// SetSize implements page: the body less a line of room.
func (m *detailModel) SetSize(w, h int) {
	m.vp.SetWidth(w)
	m.vp.SetHeight(max(h-1, 1))
	m.render()
}

// Title implements page.
func (m *detailModel) Title() string { return "Pipeline " + m.name() }

// Typing implements page.
func (m *detailModel) Typing() bool { return false }

// ShortHelp implements help.KeyMap.
func (m *detailModel) ShortHelp() []key.Binding { return m.keys.detailHelp().ShortHelp() }

// FullHelp implements help.KeyMap.
func (m *detailModel) FullHelp() [][]key.Binding { return m.keys.detailHelp().FullHelp() }

// Update implements page.
func (m *detailModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	switch msg := msg.(type) {
	case detailDataMsg:
		if msg.name == m.name() && msg.seq == m.seq {
			m.loading = false
			m.endpoints, m.events, m.loadErr = msg.endpoints, msg.events, msg.err
			m.render()
		}
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return nil, nil
}

func (m *detailModel) key(msg tea.KeyPressMsg) (tea.Cmd, nav) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		return nil, navBack{}
	case key.Matches(msg, k.Logs):
		if m.p != nil {
			return nil, navLogs{name: m.name()}
		}
	case key.Matches(msg, k.Secrets):
		if m.p != nil && !m.gone {
			return nil, navSecrets{name: m.name()}
		}
	case key.Matches(msg, k.Edit):
		if m.p != nil && !m.gone {
			return nil, navEdit{p: m.p}
		}
	case key.Matches(msg, k.Delete):
		if m.p != nil && !m.gone {
			return nil, navDelete{name: m.name()}
		}
	case key.Matches(msg, k.Refresh):
		if m.p != nil {
			m.loading = true
			return m.load(), nil
		}
	case key.Matches(msg, k.Top):
		m.vp.GotoTop()
	case key.Matches(msg, k.Bottom):
		m.vp.GotoBottom()
	default:
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(msg)
		return cmd, nil
	}
	return nil, nil
}

// View implements page.
func (m *detailModel) View() string { return m.vp.View() }

func (m *detailModel) render() {
	if m.p == nil {
		m.vp.SetContent("")
		return
	}
	st := m.st
	p := m.p
	var b strings.Builder
	section := func(title string) { b.WriteString("\n" + st.Header.Render(title) + "\n") }
	kv := func(k, v string) { b.WriteString(st.Label.Render(pad(k, 18)) + v + "\n") }

	if m.gone {
		b.WriteString(st.Warn.Render("This pipeline was deleted.") + "\n")
	}
	kv("Instance", p.Spec.Instance)
	kind := string(p.Spec.WorkloadKind())
	if p.Spec.WorkloadKind() != v1alpha1.WorkloadDaemonSet {
		kind += " · " + plural(int(p.Spec.ReplicaCount()), "replica")
	}
	kv("Workload", kind)
	kv("Ready", manage.ReadyText(p)+" · "+manage.StatusText(p))
	kv("Service type", manage.ServiceTypeText(p))
	kv("Image", dashIfEmpty(p.Spec.Image, "instance default"))
	if len(p.Spec.Args) > 0 {
		kv("Args", strings.Join(p.Spec.Args, " "))
	}
	kv("Auto-detect ports", strconv.FormatBool(p.Spec.AutoDetect()))
	if m.env != nil && m.env.metrics != nil {
		if line := m.env.metrics.detail(p.Name, m.st.ASCII); line != "" {
			kv("Bytes/s", line)
		}
	}

	section("Ports")
	m.renderPorts(&b)

	section("Conditions")
	if len(p.Status.Conditions) == 0 {
		b.WriteString(st.Dim.Render("none yet: the operator has not reported") + "\n")
	}
	for _, c := range p.Status.Conditions {
		state := st.OK.Render(string(c.Status))
		if c.Status != "True" {
			state = st.Warn.Render(string(c.Status))
		}
		stale := ""
		if c.ObservedGeneration != p.Generation {
			stale = st.Dim.Render(" (older generation)")
		}
		b.WriteString(pad(c.Type, 15) + " " + pad(state, 5) + " " + c.Reason + stale + "\n")
		if c.Message != "" {
			b.WriteString(st.Dim.Render("  "+c.Message) + "\n")
		}
	}

	section("Recent events")
	switch {
	case m.loading:
		b.WriteString(st.Dim.Render("loading…") + "\n")
	case m.loadErr != nil:
		b.WriteString(st.Error.Render("cannot load: "+m.loadErr.Error()) + "\n")
	case len(m.events) == 0:
		b.WriteString(st.Dim.Render("none") + "\n")
	}
	for _, e := range m.events {
		typ := e.Type
		if typ == "Warning" {
			typ = st.Warn.Render(pad(typ, 7))
		} else {
			typ = pad(typ, 7)
		}
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		b.WriteString(pad(manage.Age(m.now(), e.Last), 4) + " " + typ + " " + e.Reason + ": " + e.Message + count + "\n")
	}

	section(fmt.Sprintf("Configuration (%s, %d bytes)", p.Spec.ConfigFormat(), len(p.Spec.Config.Content)))
	if p.Spec.Config.Content == "" {
		b.WriteString(st.Dim.Render("empty") + "\n")
	}
	for i, line := range strings.Split(strings.TrimRight(p.Spec.Config.Content, "\n"), "\n") {
		if p.Spec.Config.Content == "" {
			break
		}
		b.WriteString(st.Dim.Render(fmt.Sprintf("%3d ", i+1)) + line + "\n")
	}
	m.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}

func (m *detailModel) renderPorts(b *strings.Builder) {
	st := m.st
	ts := manage.Triplets(m.p)
	if len(ts) == 0 {
		b.WriteString(st.Dim.Render("none") + "\n")
		return
	}
	byFront := map[string]manage.Endpoint{}
	for _, e := range m.endpoints {
		byFront[pipeline.Port{Protocol: e.Protocol, Number: e.Frontend}.String()] = e
	}
	b.WriteString(st.Label.Render(pad("NAME", 15)+" "+pad("PROTO", 5)+" "+pad("FRONTEND", 13)+" "+pad("BACKEND", 7)+" "+pad("ADDRESS", 21)+" SOURCE") + "\n")
	for _, t := range ts {
		name := t.Name
		if name == "" {
			name = pipeline.DefaultPortName(pipeline.Port{Protocol: t.Protocol, Number: t.Backend})
		}
		front := strconv.Itoa(int(t.Frontend))
		switch {
		case t.Pending:
			front = "pending"
		case t.Frontend == 0:
			front = "none"
		case t.Reassigned:
			front += st.marker(" (moved)", " ↑moved")
		}
		front = pad(front, 13)
		if t.Reassigned {
			front = st.Reassigned.Render(front)
		}
		addr := ""
		if e, ok := byFront[pipeline.Port{Protocol: t.Protocol, Number: t.Frontend}.String()]; ok && !t.Pending {
			addr = e.Address
			if addr == "" {
				addr = "(" + e.Note + ")"
			}
		}
		b.WriteString(pad(name, 15) + " " + pad(strings.ToLower(string(t.Protocol)), 5) + " " + front + " " +
			pad(strconv.Itoa(int(t.Backend)), 7) + " " + pad(addr, 21) + " " + t.Source + "\n")
	}
}

func dashIfEmpty(s, what string) string {
	if s == "" {
		return "(" + what + ")"
	}
	return s
}
