package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// confirmPage asks before a pipeline is deleted: a dialog over the page it
// was asked from. y deletes; any other key cancels.
type confirmPage struct {
	env   *env
	name  string
	under page
}

func newConfirm(e *env, name string, under page) *confirmPage {
	return &confirmPage{env: e, name: name, under: under}
}

// SetSize implements page.
func (c *confirmPage) SetSize(w, h int) { c.under.SetSize(w, h) }

// Title implements page: the title of the page under the dialog.
func (c *confirmPage) Title() string { return c.under.Title() }

// Typing implements page: every key answers the question.
func (c *confirmPage) Typing() bool { return true }

// ShortHelp implements help.KeyMap.
func (c *confirmPage) ShortHelp() []key.Binding { return c.env.keys.confirmHelp().ShortHelp() }

// FullHelp implements help.KeyMap.
func (c *confirmPage) FullHelp() [][]key.Binding { return c.env.keys.confirmHelp().FullHelp() }

// Update implements page.
func (c *confirmPage) Update(msg tea.Msg) (tea.Cmd, nav) {
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil, nil
	}
	if key.Matches(km, c.env.keys.Yes) {
		return nil, navDeleteConfirmed{name: c.name}
	}
	return nil, navDeleteCancelled{}
}

// View implements page.
func (c *confirmPage) View() string {
	dialog := c.env.st.Dialog.Render(fmt.Sprintf("Delete pipeline %q?\nIts workload, Service and ConfigMap go with it.\n\n(y)es / (n)o", c.name))
	return dialog + "\n" + c.under.View()
}
