package tui

import "charm.land/bubbles/v2/key"

// keys are every binding of the manager; each view shows the ones it uses.
type keys struct {
	Up, Down, PageUp, PageDown, Top, Bottom key.Binding
	Open, Back, Cancel, Quit, Help          key.Binding
	New, Edit, Delete, Instances, Refresh   key.Binding
	Filter, Sort, Reverse                   key.Binding
	Next, Prev, Left, Right, Toggle         key.Binding
	AddPort, RemovePort, Editor, Submit     key.Binding
	Yes, No                                 key.Binding
	Logs, Pause, Wrap, NextMatch, PrevMatch key.Binding
	Secrets, AddSecret, SetSecret           key.Binding
	Nodes                                   key.Binding
}

func newKeys() keys {
	b := func(help, desc string, k ...string) key.Binding {
		return key.NewBinding(key.WithKeys(k...), key.WithHelp(help, desc))
	}
	return keys{
		Up:         b("↑/k", "up", "up", "k"),
		Down:       b("↓/j", "down", "down", "j"),
		PageUp:     b("pgup", "page up", "pgup", "ctrl+u"),
		PageDown:   b("pgdn", "page down", "pgdown", "ctrl+d"),
		Top:        b("g", "top", "home", "g"),
		Bottom:     b("G", "bottom", "end", "G"),
		Open:       b("enter", "details", "enter"),
		Back:       b("esc", "back", "esc"),
		Cancel:     b("esc", "cancel", "esc"),
		Quit:       b("q", "quit", "q", "ctrl+c"),
		Help:       b("?", "more keys", "?"),
		New:        b("n", "new", "n"),
		Edit:       b("e", "edit", "e"),
		Delete:     b("d", "delete", "d", "delete"),
		Instances:  b("i", "instances", "i"),
		Refresh:    b("r", "refresh", "r"),
		Filter:     b("/", "filter", "/"),
		Sort:       b("s", "sort", "s"),
		Reverse:    b("S", "reverse", "S"),
		Next:       b("tab", "next", "tab"),
		Prev:       b("shift+tab", "previous", "shift+tab"),
		Left:       b("←/→", "choose", "left"),
		Right:      b("→", "next choice", "right"),
		Toggle:     b("space", "toggle", "space"),
		AddPort:    b("ctrl+n", "add port", "ctrl+n"),
		RemovePort: b("ctrl+x", "remove port", "ctrl+x"),
		Editor:     b("ctrl+e", "$EDITOR", "ctrl+e"),
		Submit:     b("ctrl+s", "save", "ctrl+s"),
		Yes:        b("y", "yes", "y", "Y"),
		No:         b("n/esc", "no", "n", "N", "esc"),
		Logs:       b("l", "logs", "l"),
		Pause:      b("p/space", "pause", "p", "space"),
		Wrap:       b("w", "wrap", "w"),
		NextMatch:  b("n", "next match", "n"),
		PrevMatch:  b("N", "previous match", "N"),
		Secrets:    b("s", "secrets", "s"),
		AddSecret:  b("a/n", "add", "a", "n"),
		SetSecret:  b("enter/e", "set value", "enter", "e"),
		Nodes:      b("N", "nodes", "N"),
	}
}

// keyMap adapts a list of bindings to help.KeyMap.
type keyMap struct {
	short []key.Binding
	full  [][]key.Binding
}

func (k keyMap) ShortHelp() []key.Binding  { return k.short }
func (k keyMap) FullHelp() [][]key.Binding { return k.full }

func (k keys) listHelp(filtering bool) keyMap {
	if filtering {
		return keyMap{short: []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply filter")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		}}
	}
	return keyMap{
		short: []key.Binding{k.Open, k.Logs, k.New, k.Edit, k.Delete, k.Filter, k.Instances, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Open, k.Logs, k.New, k.Edit, k.Delete, k.Instances, k.Nodes},
			{k.Filter, k.Sort, k.Reverse, k.Refresh, k.Help, k.Quit},
		},
	}
}

func (k keys) detailHelp() keyMap {
	return keyMap{
		short: []key.Binding{k.Back, k.Logs, k.Secrets, k.Edit, k.Delete, k.Refresh, k.Help, k.Quit},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Back, k.Logs, k.Secrets, k.Edit, k.Delete, k.Refresh, k.Quit}},
	}
}

func (k keys) logsHelp(searching bool) keyMap {
	if searching {
		return keyMap{short: []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "find")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		}}
	}
	search := key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search"))
	matches := key.NewBinding(key.WithKeys("n", "N"), key.WithHelp("n/N", "next/previous match"))
	return keyMap{
		short: []key.Binding{k.Back, k.Pause, search, matches, k.Wrap, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Pause, search, k.NextMatch, k.PrevMatch, k.Wrap},
			{k.Back, k.Help, k.Quit},
		},
	}
}

func (k keys) formHelp(inPorts bool) keyMap {
	short := []key.Binding{k.Next, k.Prev, k.Left, k.Toggle, k.AddPort, k.Editor, k.Submit, k.Cancel}
	if inPorts {
		short = []key.Binding{k.Up, k.Down, k.AddPort, k.RemovePort, k.Next, k.Submit, k.Cancel}
	}
	return keyMap{
		short: short,
		full: [][]key.Binding{
			{k.Next, k.Prev, k.Left, k.Toggle},
			{k.AddPort, k.RemovePort, k.Editor},
			{k.Submit, k.Cancel},
		},
	}
}

func (k keys) instanceFormHelp() keyMap {
	return keyMap{short: []key.Binding{k.Next, k.Prev, k.Toggle, k.Submit, k.Cancel}}
}

func (k keys) instanceHelp() keyMap {
	return keyMap{
		short: []key.Binding{k.Up, k.Down, k.Edit, k.Nodes, k.Refresh, k.Back, k.Quit},
		full:  [][]key.Binding{{k.Up, k.Down, k.Edit, k.Nodes, k.Refresh, k.Back, k.Quit}},
	}
}

func (k keys) nodesHelp() keyMap {
	return keyMap{
		short: []key.Binding{k.Back, k.Refresh, k.Up, k.Down, k.Help, k.Quit},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Back, k.Refresh, k.Help, k.Quit}},
	}
}

func (k keys) secretsHelp() keyMap {
	unset := key.NewBinding(key.WithKeys("d", "delete"), key.WithHelp("d", "unset"))
	return keyMap{
		short: []key.Binding{k.Back, k.AddSecret, k.SetSecret, unset, k.Refresh, k.Up, k.Down, k.Quit},
		full:  [][]key.Binding{{k.Up, k.Down, k.Top, k.Bottom}, {k.AddSecret, k.SetSecret, unset, k.Refresh, k.Back, k.Quit}},
	}
}

func (k keys) secretFormHelp() keyMap {
	return keyMap{short: []key.Binding{k.Next,
		key.NewBinding(key.WithKeys("enter", "ctrl+s"), key.WithHelp("enter", "save")), k.Cancel}}
}

func (k keys) confirmHelp() keyMap {
	return keyMap{short: []key.Binding{k.Yes, k.No}}
}
