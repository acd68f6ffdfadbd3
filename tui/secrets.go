package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/manage"
)

// secretsModel lists a pipeline's secrets (names and sizes, never values)
// and sets or unsets them. A value is typed into a masked input and sent
// to the API: it is never drawn, never put in a status or an error, and is
// forgotten once saved or cancelled (a refused save keeps it, masked, for
// another try).
type secretsModel struct {
	env      *env
	st       Styles
	keys     keys
	pipeline string
	gen      int // of this page: answers to an older one are dropped

	items   []manage.SecretKey
	loading bool
	loadErr error
	cursor  int
	note    string // the last change, in words
	err     error  // the last change's failure
	width   int
	height  int

	// mode is what the page does: list, form or confirm.
	mode      secretsMode
	unsetName string // the secret awaiting confirmation
	name      textinput.Model
	value     textinput.Model
	focus     int // 0 name, 1 value
	saving    bool
}

type secretsMode int

const (
	secretsList secretsMode = iota
	secretsForm
	secretsConfirm
)

// Messages of the secrets page.
type (
	// secretsLoadedMsg: the pipeline's secret names and sizes.
	secretsLoadedMsg struct {
		gen   int
		items []manage.SecretKey
		err   error
	}
	// secretsChangedMsg: a set or unset answered; what names the change
	// (never a value).
	secretsChangedMsg struct {
		gen   int
		what  string
		items []manage.SecretKey
		err   error
	}
)

func newSecrets(e *env, pipeline string, gen int) *secretsModel {
	m := &secretsModel{env: e, st: e.st, keys: e.keys, pipeline: pipeline, gen: gen, loading: true}
	m.name = e.st.newInput("NAME", 253)
	m.value = e.st.newInput("value (hidden)", manage.MaxSecretsBytes)
	m.value.EchoMode = textinput.EchoPassword
	m.value.EchoCharacter = '•'
	return m
}

// load reads the pipeline's secret names and sizes.
func (m *secretsModel) load() tea.Cmd {
	ctx, api, name, gen := m.env.ctx, m.env.api, m.pipeline, m.gen
	return func() tea.Msg {
		items, err := api.PipelineSecrets(ctx, name)
		return secretsLoadedMsg{gen: gen, items: items, err: err}
	}
}

// change sends ch; what names it in the page's note.
func (m *secretsModel) change(ch manage.SecretChange, what string) tea.Cmd {
	ctx, api, name, gen := m.env.ctx, m.env.api, m.pipeline, m.gen
	return func() tea.Msg {
		items, err := api.ChangePipelineSecrets(ctx, name, ch, manage.WriteOptions{})
		return secretsChangedMsg{gen: gen, what: what, items: items, err: err}
	}
}

// SetSize implements page.
func (m *secretsModel) SetSize(w, h int) {
	m.width, m.height = w, h
	m.name.SetWidth(min(max(w-26, 20), 60))
	m.value.SetWidth(min(max(w-26, 20), 60))
}

// Title implements page.
func (m *secretsModel) Title() string { return "Secrets of pipeline " + m.pipeline }

// Typing implements page: the form and the question take every key.
func (m *secretsModel) Typing() bool { return m.mode != secretsList }

// ShortHelp implements help.KeyMap.
func (m *secretsModel) ShortHelp() []key.Binding { return m.help().ShortHelp() }

// FullHelp implements help.KeyMap.
func (m *secretsModel) FullHelp() [][]key.Binding { return m.help().FullHelp() }

func (m *secretsModel) help() keyMap {
	switch m.mode {
	case secretsForm:
		return m.keys.secretFormHelp()
	case secretsConfirm:
		return m.keys.confirmHelp()
	}
	return m.keys.secretsHelp()
}

// Update implements page.
func (m *secretsModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	switch msg := msg.(type) {
	case secretsLoadedMsg:
		if msg.gen == m.gen {
			m.loading = false
			m.items, m.loadErr = msg.items, msg.err
			m.clamp()
		}
	case secretsChangedMsg:
		if msg.gen != m.gen {
			return nil, nil
		}
		m.saving = false
		if msg.err != nil {
			m.err = msg.err
			return nil, nil
		}
		m.items, m.loadErr, m.err = msg.items, nil, nil
		m.note = msg.what + "; the pipeline's pods restart with it"
		m.closeForm()
		m.clamp()
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.PasteMsg:
		if m.mode == secretsForm && !m.saving {
			in := m.input()
			var cmd tea.Cmd
			*in, cmd = in.Update(msg)
			return cmd, nil
		}
	}
	return nil, nil
}

func (m *secretsModel) clamp() {
	m.cursor = min(max(m.cursor, 0), max(len(m.items)-1, 0))
}

func (m *secretsModel) input() *textinput.Model {
	if m.focus == 0 {
		return &m.name
	}
	return &m.value
}

func (m *secretsModel) setFocus(i int) tea.Cmd {
	m.focus = i
	m.name.Blur()
	m.value.Blur()
	return m.input().Focus()
}

// openForm starts a set: of a new secret (name ""), or of name's value.
func (m *secretsModel) openForm(name string) tea.Cmd {
	m.mode, m.err, m.note = secretsForm, nil, ""
	m.name.SetValue(name)
	m.value.SetValue("")
	if name == "" {
		return m.setFocus(0)
	}
	return m.setFocus(1)
}

// closeForm leaves the form and forgets what was typed.
func (m *secretsModel) closeForm() {
	m.mode = secretsList
	m.name.SetValue("")
	m.value.SetValue("")
	m.name.Blur()
	m.value.Blur()
}

func (m *secretsModel) key(msg tea.KeyPressMsg) (tea.Cmd, nav) {
	if m.saving {
		return nil, nil
	}
	switch m.mode {
	case secretsForm:
		return m.formKey(msg)
	case secretsConfirm:
		m.mode = secretsList
		if key.Matches(msg, m.keys.Yes) {
			m.saving, m.err, m.note = true, nil, ""
			return m.change(manage.SecretChange{Unset: []string{m.unsetName}}, "secret "+m.unsetName+" unset"), nil
		}
		m.note = "unset cancelled"
		return nil, nil
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		return nil, navBack{}
	case key.Matches(msg, k.AddSecret):
		return m.openForm(""), nil
	case key.Matches(msg, k.SetSecret):
		if len(m.items) > 0 {
			return m.openForm(m.items[m.cursor].Name), nil
		}
	case key.Matches(msg, k.Delete):
		if len(m.items) > 0 {
			m.mode, m.unsetName, m.err, m.note = secretsConfirm, m.items[m.cursor].Name, nil, ""
		}
	case key.Matches(msg, k.Refresh):
		m.loading, m.err, m.note = true, nil, ""
		return m.load(), nil
	case key.Matches(msg, k.Up):
		m.cursor--
		m.clamp()
	case key.Matches(msg, k.Down):
		m.cursor++
		m.clamp()
	case key.Matches(msg, k.Top):
		m.cursor = 0
	case key.Matches(msg, k.Bottom):
		m.cursor = len(m.items) - 1
		m.clamp()
	}
	return nil, nil
}

func (m *secretsModel) formKey(msg tea.KeyPressMsg) (tea.Cmd, nav) {
	switch s := msg.String(); {
	case s == "esc":
		m.closeForm()
		m.err, m.note = nil, "nothing saved"
		return nil, nil
	case s == "ctrl+s" || (s == "enter" && m.focus == 1):
		name := strings.TrimSpace(m.name.Value())
		m.saving, m.err = true, nil
		return m.change(manage.SecretChange{Set: map[string]string{name: m.value.Value()}}, "secret "+name+" set"), nil
	case s == "tab" || s == "shift+tab" || s == "up" || s == "down" || s == "enter":
		return m.setFocus(1 - m.focus), nil
	}
	in := m.input()
	var cmd tea.Cmd
	*in, cmd = in.Update(msg)
	return cmd, nil
}

// View implements page.
func (m *secretsModel) View() string {
	st := m.st
	var b strings.Builder
	b.WriteString(st.Dim.Render("Environment variables of the pipeline (${NAME} in its configuration); values are never shown.") + "\n\n")
	switch {
	case m.loading && m.items == nil:
		b.WriteString(st.Dim.Render("loading…") + "\n")
	case m.loadErr != nil:
		b.WriteString(st.errorBlock("read the secrets: "+m.loadErr.Error(), m.width, ""))
	case len(m.items) == 0:
		b.WriteString(st.Dim.Render("This pipeline has no secrets. Press a to add one.") + "\n")
	default:
		w := len("NAME")
		for _, it := range m.items {
			w = max(w, len(it.Name))
		}
		b.WriteString("  " + st.Header.Render(pad("NAME", w+2)+"SIZE") + "\n")
		for i, it := range m.items {
			line := pad(it.Name, w+2) + fmt.Sprintf("%d bytes", it.Size)
			if i == m.cursor && m.mode != secretsForm {
				b.WriteString(st.Cursor.Render(st.marker("> ", "▸ ")) + st.Selected.Render(line) + "\n")
			} else {
				b.WriteString("  " + line + "\n")
			}
		}
	}
	b.WriteString("\n")
	switch m.mode {
	case secretsForm:
		b.WriteString(m.formView())
	case secretsConfirm:
		b.WriteString(st.Dialog.Render(fmt.Sprintf("Unset secret %s of pipeline %s?\nIts pods restart without it.\n\n(y)es / (n)o", m.unsetName, m.pipeline)) + "\n")
	}
	if m.mode != secretsForm && m.err != nil {
		b.WriteString(st.errorBlock(m.err.Error(), m.width, ""))
	}
	if m.saving {
		b.WriteString(st.Dim.Render("saving…") + "\n")
	} else if m.note != "" && m.err == nil {
		b.WriteString(st.Dim.Render(m.note) + "\n")
	}
	return b.String()
}

func (m *secretsModel) formView() string {
	st := m.st
	var b strings.Builder
	b.WriteString(st.Header.Render("Set a secret") + "\n")
	label := func(i int, text string) {
		mark, style := "  ", st.Label
		if m.focus == i {
			mark, style = st.Cursor.Render(st.marker("> ", "▸ ")), st.Focused
		}
		b.WriteString(mark + style.Render(pad(text, 20)))
	}
	label(0, "Name")
	b.WriteString(m.name.View() + "\n")
	label(1, "Value")
	b.WriteString(m.value.View() + "\n")
	if m.err != nil {
		b.WriteString(st.errorBlock(m.err.Error(), m.width, "  "))
	}
	b.WriteString(st.Dim.Render("  enter saves; the value is sent once and not kept or shown.") + "\n")
	return b.String()
}
