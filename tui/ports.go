package tui

import (
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

// portsEditor edits a list of port entries ("tcp/5170", "syslog=udp/514"),
// one line each, checking them as they are typed.
type portsEditor struct {
	st      Styles
	entries []textinput.Model
	cursor  int
	focused bool
	width   int
	// lineWidth is the screen width, for wrapping messages.
	lineWidth int
	// errs holds each entry's problem ("" when fine); dup the duplicate
	// backend, naming both entries.
	errs []string
	dup  string
}

func newPortsEditor(st Styles, texts []string) portsEditor {
	e := portsEditor{st: st}
	for _, t := range texts {
		in := e.newEntry()
		in.SetValue(t)
		e.entries = append(e.entries, in)
	}
	e.validate()
	return e
}

func (e *portsEditor) newEntry() textinput.Model {
	in := e.st.newInput("tcp/5170, 5140/udp or name=udp/514", 40)
	in.SetWidth(max(e.width, 20))
	return in
}

// values are the non-empty entries, trimmed, in order.
func (e *portsEditor) values() []string {
	var out []string
	for _, in := range e.entries {
		if v := strings.TrimSpace(in.Value()); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ports returns the parsed entries (nil, false while any is invalid).
func (e *portsEditor) ports() ([]v1alpha1.PipelinePort, bool) {
	if !e.valid() {
		return nil, false
	}
	vals := e.values()
	out := make([]v1alpha1.PipelinePort, 0, len(vals))
	for _, v := range vals {
		p, err := pipeline.ParsePortFlag(v)
		if err != nil {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func (e *portsEditor) valid() bool {
	if e.dup != "" {
		return false
	}
	for _, s := range e.errs {
		if s != "" {
			return false
		}
	}
	return true
}

// validate checks every entry and looks for a backend listed twice; the
// entries are named by their line numbers as shown.
func (e *portsEditor) validate() {
	e.errs = make([]string, len(e.entries))
	e.dup = ""
	first := map[pipeline.Port]int{}
	for i, in := range e.entries {
		v := strings.TrimSpace(in.Value())
		if v == "" {
			continue
		}
		p, err := pipeline.ParsePortFlag(v)
		if err != nil {
			e.errs[i] = err.Error()
			continue
		}
		k := pipeline.Key(p)
		if j, seen := first[k]; seen && e.dup == "" {
			e.dup = (&manage.DuplicateBackendError{Port: k,
				First:  manage.PortRef{Index: j, Text: strings.TrimSpace(e.entries[j].Value())},
				Second: manage.PortRef{Index: i, Text: v}}).Error()
			continue
		}
		if _, seen := first[k]; !seen {
			first[k] = i
		}
	}
}

func (e *portsEditor) setWidth(w int) {
	e.width = w
	for i := range e.entries {
		e.entries[i].SetWidth(max(w, 20))
	}
}

// focus enters the editor at its last line (fromBelow) or its first,
// adding an empty line when there is none.
func (e *portsEditor) focus(fromBelow bool) tea.Cmd {
	e.focused = true
	if len(e.entries) == 0 {
		e.entries = append(e.entries, e.newEntry())
		e.validate()
	}
	e.cursor = 0
	if fromBelow {
		e.cursor = len(e.entries) - 1
	}
	return e.entries[e.cursor].Focus()
}

func (e *portsEditor) blur() {
	e.focused = false
	for i := range e.entries {
		e.entries[i].Blur()
	}
	// Drop empty lines the user left behind.
	kept := e.entries[:0]
	for _, in := range e.entries {
		if strings.TrimSpace(in.Value()) != "" {
			kept = append(kept, in)
		}
	}
	e.entries = kept
	e.cursor = min(e.cursor, max(len(e.entries)-1, 0))
	e.validate()
}

// add inserts an empty line below the cursor and moves there.
func (e *portsEditor) add() tea.Cmd {
	at := 0
	if len(e.entries) > 0 {
		at = e.cursor + 1
		e.entries[e.cursor].Blur()
	}
	e.entries = append(e.entries, textinput.Model{})
	copy(e.entries[at+1:], e.entries[at:])
	e.entries[at] = e.newEntry()
	e.cursor = at
	e.focused = true
	e.validate()
	return e.entries[at].Focus()
}

// remove deletes the line under the cursor.
func (e *portsEditor) remove() tea.Cmd {
	if len(e.entries) == 0 {
		return nil
	}
	e.entries = append(e.entries[:e.cursor], e.entries[e.cursor+1:]...)
	if len(e.entries) == 0 {
		e.entries = append(e.entries, e.newEntry())
	}
	e.cursor = min(e.cursor, len(e.entries)-1)
	e.validate()
	return e.entries[e.cursor].Focus()
}

// update handles a key inside the editor. leave is -1 or +1 when the
// cursor moved out above or below.
func (e portsEditor) update(msg tea.KeyPressMsg) (portsEditor, tea.Cmd, int) {
	switch msg.String() {
	case "up":
		if e.cursor == 0 {
			return e, nil, -1
		}
		e.entries[e.cursor].Blur()
		e.cursor--
		return e, e.entries[e.cursor].Focus(), 0
	case "down":
		if e.cursor >= len(e.entries)-1 {
			return e, nil, 1
		}
		e.entries[e.cursor].Blur()
		e.cursor++
		return e, e.entries[e.cursor].Focus(), 0
	case "enter", "ctrl+n":
		return e, e.add(), 0
	case "ctrl+x":
		return e, e.remove(), 0
	}
	var cmd tea.Cmd
	e.entries[e.cursor], cmd = e.entries[e.cursor].Update(msg)
	e.validate()
	return e, cmd, 0
}

// paste puts pasted text into the line under the cursor.
func (e *portsEditor) paste(msg tea.PasteMsg) tea.Cmd {
	if e.cursor >= len(e.entries) {
		return nil
	}
	var cmd tea.Cmd
	e.entries[e.cursor], cmd = e.entries[e.cursor].Update(msg)
	e.validate()
	return cmd
}

// view renders the lines under a label column of labelWidth.
func (e *portsEditor) view(labelWidth int) string {
	st := e.st
	indent := strings.Repeat(" ", labelWidth)
	var b strings.Builder
	if len(e.entries) == 0 {
		b.WriteString(st.Dim.Render("none (ctrl+n adds one)") + "\n")
	}
	for i, in := range e.entries {
		if i > 0 {
			b.WriteString(indent)
		}
		mark := "  "
		if e.focused && i == e.cursor {
			mark = st.Cursor.Render(st.marker("> ", "▸ "))
		}
		b.WriteString(mark + in.View() + "\n")
		if e.errs[i] != "" {
			b.WriteString(st.errorBlock(e.errs[i], e.lineWidth, indent+"  "))
		}
	}
	if e.dup != "" {
		b.WriteString(st.errorBlock(e.dup, e.lineWidth, indent+"  "))
	}
	if e.focused {
		b.WriteString(indent + "  " + st.Dim.Render("enter/ctrl+n: new line · ctrl+x: remove line") + "\n")
	}
	return b.String()
}
