package tui

import (
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// sortKey is a column of the list.
type sortKey int

const (
	sortName sortKey = iota
	sortInstance
	sortWorkload
	sortService
	sortReady
	sortStatus
	sortPorts
	numSortKeys
)

var sortNames = [numSortKeys]string{"name", "instance", "workload", "service", "ready", "status", "ports"}

// row is a pipeline with its cells computed once, when it changes.
type row struct {
	p                                          *v1alpha1.Pipeline
	name, instance, workload, svc, ready, stat string
	ports                                      []manage.PortTriplet
	portsText                                  string
	health                                     bool
	search                                     string // lower-case text the filter matches
}

func newRow(p *v1alpha1.Pipeline) *row {
	r := &row{p: p, name: p.Name, instance: p.Spec.Instance, workload: string(p.Spec.WorkloadKind()),
		svc: manage.ServiceTypeText(p), ready: manage.ReadyText(p), stat: manage.StatusText(p),
		ports: manage.Triplets(p), health: manage.IsHealthCheck(p)}
	parts := make([]string, len(r.ports))
	for i, t := range r.ports {
		parts[i] = t.Text()
	}
	r.portsText = strings.Join(parts, ", ")
	r.search = strings.ToLower(strings.Join([]string{r.name, r.instance, r.workload, r.svc, r.stat, r.portsText}, " "))
	return r
}

func (r *row) cell(k sortKey) string {
	switch k {
	case sortInstance:
		return r.instance
	case sortWorkload:
		return r.workload
	case sortService:
		return r.svc
	case sortReady:
		return r.ready
	case sortStatus:
		return r.stat
	case sortPorts:
		return r.portsText
	}
	return r.name
}

// listModel is the pipelines list: rows kept sorted and filtered as the
// watch changes them; only the rows on screen are rendered.
type listModel struct {
	env       *env
	st        Styles
	keys      keys
	rows      map[string]*row
	sorted    []*row
	visible   []*row
	cursor    int
	offset    int
	sortBy    sortKey
	desc      bool
	filter    textinput.Model
	filtering bool
	loaded    bool
	// noInstance: the namespace has no core instance (the empty list
	// says to install one).
	noInstance bool
	width      int
	height     int // rows of the table body
}

func newList(e *env) *listModel {
	f := e.st.newInput("text in any column", 64)
	return &listModel{env: e, st: e.st, keys: e.keys, rows: map[string]*row{}, filter: f}
}

// selected returns the pipeline under the cursor, or nil.
func (m *listModel) selected() *v1alpha1.Pipeline {
	if m.cursor < 0 || m.cursor >= len(m.visible) {
		return nil
	}
	return m.visible[m.cursor].p
}

// reset replaces every row.
func (m *listModel) reset(items []v1alpha1.Pipeline) {
	m.rows = make(map[string]*row, len(items))
	for i := range items {
		m.rows[items[i].Name] = newRow(&items[i])
	}
	m.loaded = true
	m.resort()
}

// apply folds watch events into the rows, then sorts once.
func (m *listModel) apply(events []manage.PipelineEvent) {
	for _, e := range events {
		switch e.Type {
		case manage.EventReset:
			m.rows = make(map[string]*row, len(e.Pipelines))
			for i := range e.Pipelines {
				m.rows[e.Pipelines[i].Name] = newRow(&e.Pipelines[i])
			}
			m.loaded = true
		case manage.EventAdded, manage.EventModified:
			m.rows[e.Pipeline.Name] = newRow(e.Pipeline)
		case manage.EventDeleted:
			delete(m.rows, e.Pipeline.Name)
		}
	}
	m.resort()
}

func (m *listModel) resort() {
	var keep string
	if p := m.selected(); p != nil {
		keep = p.Name
	}
	m.sorted = m.sorted[:0]
	for _, r := range m.rows {
		m.sorted = append(m.sorted, r)
	}
	by, desc := m.sortBy, m.desc
	sort.Slice(m.sorted, func(i, j int) bool {
		a, b := m.sorted[i], m.sorted[j]
		ca, cb := a.cell(by), b.cell(by)
		if ca == cb {
			return a.name < b.name
		}
		if desc {
			return ca > cb
		}
		return ca < cb
	})
	m.refilter(keep)
}

func (m *listModel) refilter(keep string) {
	q := strings.ToLower(strings.TrimSpace(m.filter.Value()))
	m.visible = m.visible[:0]
	for _, r := range m.sorted {
		if q == "" || strings.Contains(r.search, q) {
			m.visible = append(m.visible, r)
		}
	}
	if keep != "" {
		for i, r := range m.visible {
			if r.name == keep {
				m.cursor = i
				break
			}
		}
	}
	m.clamp()
}

func (m *listModel) clamp() {
	if m.cursor >= len(m.visible) {
		m.cursor = len(m.visible) - 1
	}
	if m.cursor < 0 {
		m.cursor = 0
	}
	h := max(m.height, 1)
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	if m.offset > max(len(m.visible)-h, 0) {
		m.offset = max(len(m.visible)-h, 0)
	}
}

// SetSize implements page: h is the body's height, with the info line
// and the header.
func (m *listModel) SetSize(w, h int) {
	m.width, m.height = w, h-listChrome+1
	m.filter.SetWidth(max(w-12, 10))
	m.clamp()
}

// Title implements page.
func (m *listModel) Title() string { return "Pipelines" }

// Typing implements page: the filter has the keys while it is typed.
func (m *listModel) Typing() bool { return m.filtering }

// ShortHelp implements help.KeyMap.
func (m *listModel) ShortHelp() []key.Binding { return m.keys.listHelp(m.filtering).ShortHelp() }

// FullHelp implements help.KeyMap.
func (m *listModel) FullHelp() [][]key.Binding { return m.keys.listHelp(m.filtering).FullHelp() }

// Update implements page.
func (m *listModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	if pm, ok := msg.(tea.PasteMsg); ok && m.filtering {
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(pm)
		m.refilter(m.selectedName())
		return cmd, nil
	}
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil, nil
	}
	if cmd, handled := m.move(km); handled {
		return cmd, nil
	}
	k := m.keys
	switch {
	case key.Matches(km, k.Open):
		if p := m.selected(); p != nil {
			return nil, navOpen{p: p}
		}
	case key.Matches(km, k.Logs):
		if p := m.selected(); p != nil {
			return nil, navLogs{name: p.Name}
		}
	case key.Matches(km, k.New):
		return nil, navEdit{}
	case key.Matches(km, k.Edit):
		if p := m.selected(); p != nil {
			return nil, navEdit{p: p}
		}
	case key.Matches(km, k.Delete):
		if p := m.selected(); p != nil {
			return nil, navDelete{name: p.Name}
		}
	case key.Matches(km, k.Instances):
		return nil, navInstances{}
	case key.Matches(km, k.Nodes):
		return nil, navNodes{}
	case key.Matches(km, k.Refresh):
		return nil, navRefresh{}
	}
	return nil, nil
}

// move handles the keys that move in the list, filter and sort it.
func (m *listModel) move(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	if m.filtering {
		switch msg.String() {
		case "enter":
			m.filtering = false
			m.filter.Blur()
			return nil, true
		case "esc":
			m.filtering = false
			m.filter.Blur()
			m.filter.SetValue("")
			m.refilter(m.selectedName())
			return nil, true
		}
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		m.refilter(m.selectedName())
		return cmd, true
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Up):
		m.cursor--
	case key.Matches(msg, k.Down):
		m.cursor++
	case key.Matches(msg, k.PageUp):
		m.cursor -= max(m.height, 1)
	case key.Matches(msg, k.PageDown):
		m.cursor += max(m.height, 1)
	case key.Matches(msg, k.Top):
		m.cursor = 0
	case key.Matches(msg, k.Bottom):
		m.cursor = len(m.visible) - 1
	case key.Matches(msg, k.Filter):
		m.filtering = true
		return m.filter.Focus(), true
	case key.Matches(msg, k.Sort):
		m.sortBy = (m.sortBy + 1) % numSortKeys
		m.resort()
		return nil, true
	case key.Matches(msg, k.Reverse):
		m.desc = !m.desc
		m.resort()
		return nil, true
	case msg.String() == "esc" && m.filter.Value() != "":
		m.filter.SetValue("")
		m.refilter(m.selectedName())
		return nil, true
	default:
		return nil, false
	}
	m.clamp()
	return nil, true
}

func (m *listModel) selectedName() string {
	if p := m.selected(); p != nil {
		return p.Name
	}
	return ""
}

// columns are the widths of the fixed columns (0: hidden); ports take
// the rest.
type columns struct{ name, instance, workload, svc, ready, stat, rate, ports int }

// minPorts is the room the ports column keeps on narrow screens: the
// instance, workload, ready and rate columns give way first (the rate is
// on the detail page too).
const minPorts = 24

func (m *listModel) columns() columns {
	c := columns{name: 4, instance: 8, workload: 11, svc: 12, ready: 5, stat: 9}
	if m.env.metrics != nil {
		c.rate = 12 // 1023.9 KiB/s
	}
	for _, r := range m.visible {
		c.name = max(c.name, ansi.StringWidth(r.name+m.healthMark(r)))
		c.instance = max(c.instance, len(r.instance))
		c.stat = max(c.stat, len(r.stat))
		c.ready = max(c.ready, len(r.ready))
	}
	c.name = min(c.name, max(m.width/4, 12))
	c.instance = min(c.instance, 16)
	c.stat = min(c.stat, 20) // ContainerConfigError
	used := func() int {
		n := 2 + c.name + c.svc + c.stat + 6
		for _, w := range []int{c.instance, c.workload, c.ready, c.rate} {
			if w > 0 {
				n += w + 2
			}
		}
		return n
	}
	for _, hide := range []*int{&c.instance, &c.workload, &c.ready, &c.rate} {
		if m.width-used() >= minPorts {
			break
		}
		*hide = 0
	}
	c.ports = max(m.width-used(), 1)
	return c
}

// row renders the cells of one line; hidden columns are left out.
func (c columns) row(mark, name, instance, workload, svc, ready, stat, rate, ports string) string {
	var b strings.Builder
	b.WriteString(mark + pad(name, c.name) + "  ")
	for _, col := range []struct {
		text string
		w    int
	}{{instance, c.instance}, {workload, c.workload}, {svc, c.svc}, {ready, c.ready}} {
		if col.w > 0 {
			b.WriteString(pad(col.text, col.w) + "  ")
		}
	}
	b.WriteString(stat + "  ")
	if c.rate > 0 {
		b.WriteString(pad(rate, c.rate) + "  ")
	}
	b.WriteString(ports)
	return b.String()
}

func pad(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if n := ansi.StringWidth(s); n > w {
		return ansi.Truncate(s, w, "…")
	} else if n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// View implements page: the info line, the header and the rows on screen.
func (m *listModel) View() string {
	namespace := m.env.api.Namespace()
	var b strings.Builder
	st := m.st
	arrow := st.marker("^", "↑")
	if m.desc {
		arrow = st.marker("v", "↓")
	}
	info := plural(len(m.visible), "pipeline")
	if len(m.visible) != len(m.rows) {
		info = strconv.Itoa(len(m.visible)) + " of " + plural(len(m.rows), "pipeline")
	}
	info += " · sort: " + sortNames[m.sortBy] + " " + arrow
	switch {
	case m.filtering:
		info += " · filter: " + m.filter.View()
	case m.filter.Value() != "":
		info += " · filter: " + m.filter.Value()
	}
	b.WriteString(pad(st.Dim.Render(info), m.width))
	b.WriteByte('\n')

	if !m.loaded {
		b.WriteString("Loading pipelines…\n")
		return b.String()
	}
	if len(m.rows) == 0 {
		if m.noInstance {
			b.WriteString(st.Warn.Render("No core instance in namespace "+namespace+": install one (tpctl install) before creating pipelines.") + "\n")
		} else {
			b.WriteString("No pipelines in namespace " + namespace + ". Press n to create one.\n")
		}
		return b.String()
	}
	c := m.columns()
	hdr := c.row("  ", "NAME", "INSTANCE", "WORKLOAD", "SERVICE", "READY", pad("STATUS", c.stat), "IN/S", "PORTS")
	b.WriteString(st.Header.Render(pad(hdr, m.width)))
	b.WriteByte('\n')
	if len(m.visible) == 0 {
		b.WriteString("No pipeline matches the filter.\n")
		return b.String()
	}
	end := min(m.offset+max(m.height-1, 1), len(m.visible))
	for i := m.offset; i < end; i++ {
		r := m.visible[i]
		mark := "  "
		if i == m.cursor {
			mark = st.marker("> ", "▸ ")
		}
		name := r.name + m.healthMark(r)
		sel := i == m.cursor
		stat := pad(r.stat, c.stat)
		switch {
		case sel:
		case r.stat == v1alpha1.ReasonAvailable:
			stat = st.OK.Render(stat)
		case r.stat == "Pending" || r.stat == "Updating" || r.stat == v1alpha1.ReasonProgressing:
		default:
			stat = st.Warn.Render(stat)
		}
		rate := ""
		if m.env.metrics != nil {
			rate = m.env.metrics.rateCell(r.name)
		}
		line := c.row(mark, name, r.instance, r.workload, r.svc, r.ready, stat, rate, m.portsCell(r, c.ports, !sel))
		if sel {
			// One style over plain text: inner styles would end the highlight.
			line = st.Selected.Render(pad(line, m.width))
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if len(m.visible) > end-m.offset {
		b.WriteString(st.Dim.Render(strconv.Itoa(m.offset+1) + "–" + strconv.Itoa(end) + " of " + strconv.Itoa(len(m.visible))))
		b.WriteByte('\n')
	}
	return b.String()
}

// healthMark tags an instance's health-check pipeline.
func (m *listModel) healthMark(r *row) string {
	if !r.health {
		return ""
	}
	return m.st.marker(" (hc)", " ♥")
}

// portsCell renders the triplets within w columns, reassigned ones
// highlighted (and, without colours, recognisable by their "->").
func (m *listModel) portsCell(r *row, w int, styled bool) string {
	if len(r.ports) == 0 {
		return "-"
	}
	var b strings.Builder
	used := 0
	for i, t := range r.ports {
		text := t.Text()
		sep := ""
		if i > 0 {
			sep = ", "
		}
		if used+len(sep)+len(text) > w && w > 0 {
			b.WriteString(sep + "…")
			break
		}
		b.WriteString(sep)
		if t.Reassigned && styled {
			b.WriteString(m.st.Reassigned.Render(text))
		} else {
			b.WriteString(text)
		}
		used += len(sep) + len(text)
	}
	return b.String()
}

// height of the list's chrome besides the body: the info line and header.
const listChrome = 2
