package tui

import (
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tpctl/tpctl/manage"
)

// defaultNodesInterval is how often the nodes page reads the nodes again.
const defaultNodesInterval = 5 * time.Second

// nodesModel lists the cluster's nodes as `tpctl status` describes them
// (name, roles, Ready and why not, internal address) with the pipeline
// pods of the namespace on each, so that a DaemonSet pipeline shows on
// every node it runs on. While the page is open it reads them again every
// Options.NodesInterval, as the metrics are read: one read at a time, the
// next one asked for when the last has answered.
type nodesModel struct {
	env  *env
	st   Styles
	keys keys
	gen  int // of this page: answers and ticks for an older one are dropped

	seq    int // of the last read asked for
	shown  int // of the read on screen
	list   manage.NodeList
	loaded bool      // a read has succeeded
	read   time.Time // when the list on screen was read
	err    error     // of the last read, nil when it succeeded
	offset int
	width  int
	height int
}

// Messages of the nodes page.
type (
	// nodesMsg is one read's answer.
	nodesMsg struct {
		gen, seq int
		list     manage.NodeList
		err      error
		at       time.Time
	}
	// nodesTickMsg asks for the read after read seq.
	nodesTickMsg struct{ gen, seq int }
)

func newNodes(e *env, gen int) *nodesModel {
	return &nodesModel{env: e, st: e.st, keys: e.keys, gen: gen}
}

// load reads the nodes once.
func (m *nodesModel) load() tea.Cmd {
	m.seq++
	ctx, api, now, gen, seq := m.env.ctx, m.env.api, m.env.opts.Now, m.gen, m.seq
	return func() tea.Msg {
		list, err := api.ListNodes(ctx)
		return nodesMsg{gen: gen, seq: seq, list: list, err: err, at: now()}
	}
}

// tick asks for the next read after the interval.
func (m *nodesModel) tick() tea.Cmd {
	gen, seq := m.gen, m.seq
	return tea.Tick(m.env.opts.NodesInterval, func(time.Time) tea.Msg { return nodesTickMsg{gen: gen, seq: seq} })
}

// SetSize implements page.
func (m *nodesModel) SetSize(w, h int) {
	m.width, m.height = w, h
	m.clamp()
}

// Title implements page.
func (m *nodesModel) Title() string { return "Nodes" }

// Typing implements page.
func (m *nodesModel) Typing() bool { return false }

// ShortHelp implements help.KeyMap.
func (m *nodesModel) ShortHelp() []key.Binding { return m.keys.nodesHelp().ShortHelp() }

// FullHelp implements help.KeyMap.
func (m *nodesModel) FullHelp() [][]key.Binding { return m.keys.nodesHelp().FullHelp() }

// Update implements page.
func (m *nodesModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	switch msg := msg.(type) {
	case nodesMsg:
		if msg.gen != m.gen || msg.seq <= m.shown {
			return nil, nil
		}
		m.shown = msg.seq
		m.err = msg.err
		if msg.err == nil {
			m.list, m.loaded, m.read = msg.list, true, msg.at
			m.clamp()
		}
		if msg.seq == m.seq && m.env.ctx.Err() == nil {
			return m.tick(), nil
		}
	case nodesTickMsg:
		// A read asked for since (r) has its own tick.
		if msg.gen == m.gen && msg.seq == m.seq && m.env.ctx.Err() == nil {
			return m.load(), nil
		}
	case tea.KeyPressMsg:
		k := m.keys
		switch {
		case key.Matches(msg, k.Back):
			return nil, navBack{}
		case key.Matches(msg, k.Refresh):
			return m.load(), nil
		case key.Matches(msg, k.Up):
			m.offset--
		case key.Matches(msg, k.Down):
			m.offset++
		case key.Matches(msg, k.PageUp):
			m.offset -= m.rowsHeight()
		case key.Matches(msg, k.PageDown):
			m.offset += m.rowsHeight()
		case key.Matches(msg, k.Top):
			m.offset = 0
		case key.Matches(msg, k.Bottom):
			m.offset = len(m.rowLines())
		}
		m.clamp()
	}
	return nil, nil
}

// nodesChrome is the page's lines above the rows: the info line, a blank
// line and the header.
const nodesChrome = 3

// rowsHeight is the room of the rows (the notes under them take their
// share when there are any).
func (m *nodesModel) rowsHeight() int {
	return max(m.height-nodesChrome-strings.Count(m.notes(), "\n"), 1)
}

func (m *nodesModel) clamp() {
	m.offset = min(m.offset, max(len(m.rowLines())-m.rowsHeight(), 0))
	m.offset = max(m.offset, 0)
}

// nodeColumns are the widths of the columns but the last (pipelines).
type nodeColumns struct{ name, roles, status, ip, pods int }

func (m *nodesModel) columns() nodeColumns {
	c := nodeColumns{name: len("NAME"), roles: len("ROLES"), status: len("NotReady"), ip: len("INTERNAL-IP"), pods: len("PODS")}
	for _, n := range m.list.Nodes {
		c.name = max(c.name, len(n.Name))
		c.roles = max(c.roles, len(strings.Join(n.Roles, ",")))
		c.ip = max(c.ip, len(n.InternalIP))
	}
	c.name = min(c.name, max(m.width/4, 16))
	c.roles = min(c.roles, 28)
	return c
}

func (c nodeColumns) line(name, roles, status, ip, pods, pipelines string) string {
	return "  " + pad(name, c.name) + "  " + pad(roles, c.roles) + "  " + status + "  " + pad(ip, c.ip) + "  " +
		pad(pods, c.pods) + "  " + pipelines
}

// rowLines are the table's rows: a line per node and, under a node that
// is not Ready, a line with the reason.
func (m *nodesModel) rowLines() []string {
	st := m.st
	c := m.columns()
	rest := max(m.width-(2+c.name+2+c.roles+2+c.status+2+c.ip+2+c.pods+2), 1)
	var out []string
	for _, n := range m.list.Nodes {
		status := st.OK.Render(pad("Ready", c.status))
		if !n.Ready {
			status = st.Warn.Render(pad("NotReady", c.status))
		}
		pods, pipelines := strconv.Itoa(n.Pods), strings.Join(n.Pipelines, ", ")
		switch {
		case m.list.PodsErr != nil:
			pods, pipelines = "?", ""
		case n.Pods == 0:
			pipelines = "-"
		}
		out = append(out, c.line(n.Name, strings.Join(n.Roles, ","), status, dashIfEmpty(n.InternalIP, "unknown"), pods, pad(pipelines, rest)))
		if !n.Ready {
			// The reason whole, wrapped under the node: it says what to fix.
			for i, l := range strings.Split(ansi.Wrap("not Ready: "+n.Reason, max(m.width-6, 20), " "), "\n") {
				indent := "    "
				if i > 0 {
					indent = "      "
				}
				out = append(out, indent+st.Warn.Render(strings.TrimRight(l, " ")))
			}
		}
	}
	return out
}

// notes are the lines under the rows: pods on no node, pods that could
// not be read, the last read's failure.
func (m *nodesModel) notes() string {
	st := m.st
	ns := m.env.api.Namespace()
	var b strings.Builder
	if m.loaded && m.list.Unplaced > 0 && m.list.PodsErr == nil {
		b.WriteString("\n" + st.Warn.Render(plural(m.list.Unplaced, "pipeline pod")+" of namespace "+ns+" on no node (not scheduled yet)") + "\n")
	}
	if m.loaded && m.list.PodsErr != nil {
		b.WriteString("\n" + st.errorBlock("the pipeline pods per node are unknown: "+m.list.PodsErr.Error(), m.width, ""))
	}
	if m.err != nil && m.loaded {
		b.WriteString("\n" + m.errorText())
	}
	return b.String()
}

// errorText says why the nodes cannot be read and what follows.
func (m *nodesModel) errorText() string {
	st := m.st
	dim := func(text string) string { return st.Dim.Render(ansi.Wrap(text, max(m.width, 20), " ")) + "\n" }
	every := dim("tpctl reads them again every " + m.env.opts.NodesInterval.String() + " (r: now).")
	if manage.IsForbidden(m.err) {
		return st.Warn.Render("You may not list the cluster's nodes.") + "\n" +
			st.errorBlock(m.err.Error(), m.width, "") +
			dim("Nodes belong to no namespace: listing them needs a ClusterRole that allows list on nodes.") + every
	}
	return st.errorBlock("cannot read the cluster's nodes: "+m.err.Error(), m.width, "") + every
}

// View implements page.
func (m *nodesModel) View() string {
	st := m.st
	ns := m.env.api.Namespace()
	var b strings.Builder
	info := "pipeline pods of namespace " + ns
	if m.loaded {
		info = plural(len(m.list.Nodes), "node") + " · " + info + " · read at " + m.read.Format(time.TimeOnly) +
			", again every " + m.env.opts.NodesInterval.String()
	}
	b.WriteString(pad(st.Dim.Render(info), m.width) + "\n\n")
	switch {
	case !m.loaded && m.err != nil:
		return b.String() + m.errorText()
	case !m.loaded:
		return b.String() + "Reading the cluster's nodes…\n"
	case len(m.list.Nodes) == 0:
		return b.String() + "The cluster has no nodes: no pod can run.\n" + m.notes()
	}
	c := m.columns()
	b.WriteString(st.Header.Render(pad(c.line("NAME", "ROLES", pad("STATUS", c.status), "INTERNAL-IP", "PODS", "PIPELINES"), m.width)) + "\n")
	rows := m.rowLines()
	end := min(m.offset+m.rowsHeight(), len(rows))
	for _, l := range rows[m.offset:end] {
		b.WriteString(l + "\n")
	}
	b.WriteString(m.notes())
	return b.String()
}
