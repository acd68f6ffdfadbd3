package tui

import (
	"image/color"
	"os"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	xterm "github.com/charmbracelet/x/term"
)

// Colours say how the terminal draws: its colour profile and whether its
// background is dark. Without colours (a profile of ASCII or less:
// TERM=dumb, NO_COLOR, not a terminal) screens are plain text and views mark
// states with characters instead.
type Colours struct {
	Profile colorprofile.Profile
	Dark    bool
}

// DetectColours reads out's colour profile from the environment and, when
// out has colours, asks the terminal on in and out whether its background
// is dark.
func DetectColours(in, out xterm.File) *Colours {
	c := &Colours{Profile: colorprofile.Detect(out, os.Environ()), Dark: true}
	if c.Profile > colorprofile.ASCII {
		c.Dark = lipgloss.HasDarkBackground(in, out)
	}
	return c
}

// plain reports a terminal without colours.
func (c *Colours) plain() bool { return c.Profile <= colorprofile.ASCII }

// Styles are the looks of every view, made for one terminal's colours.
type Styles struct {
	// ASCII is true when the terminal has no colours: views then mark
	// states with characters only, and screens are plain text.
	ASCII bool
	// Dark is the terminal's background.
	Dark bool

	Title, Header, Dim, Label, Value lipgloss.Style
	Selected, Cursor                 lipgloss.Style
	Error, Warn, OK                  lipgloss.Style
	Reassigned                       lipgloss.Style
	Match, CurrentMatch              lipgloss.Style
	Focused, Blurred                 lipgloss.Style
	Button, ButtonFocused            lipgloss.Style
	Dialog                           lipgloss.Style
	Help                             help.Styles
	accent                           color.Color
}

// NewStyles builds the styles for c (nil: the colours of standard output).
func NewStyles(c *Colours) Styles {
	if c == nil {
		c = coloursOf(os.Stdin, os.Stdout)
	}
	ld := lipgloss.LightDark(c.Dark)
	accent := ld(lipgloss.Color("#5A3FC0"), lipgloss.Color("#A78BFA"))
	subtle := ld(lipgloss.Color("#767676"), lipgloss.Color("#8A8A8A"))
	warn := ld(lipgloss.Color("#A05A00"), lipgloss.Color("#F5B041"))
	n := lipgloss.NewStyle
	s := Styles{
		ASCII:         c.plain(),
		Dark:          c.Dark,
		Title:         n().Bold(true).Foreground(accent),
		Header:        n().Bold(true),
		Dim:           n().Foreground(subtle),
		Label:         n().Foreground(subtle),
		Value:         n(),
		Selected:      n().Reverse(true),
		Cursor:        n().Foreground(accent).Bold(true),
		Error:         n().Foreground(ld(lipgloss.Color("#C0262D"), lipgloss.Color("#FF6B6B"))),
		Warn:          n().Foreground(warn),
		OK:            n().Foreground(ld(lipgloss.Color("#1E7B34"), lipgloss.Color("#5CD68A"))),
		Reassigned:    n().Bold(true).Foreground(warn),
		Match:         n().Reverse(true),
		CurrentMatch:  n().Reverse(true).Bold(true).Foreground(warn),
		Focused:       n().Foreground(accent).Bold(true),
		Blurred:       n().Foreground(subtle),
		Button:        n().Padding(0, 1).Foreground(subtle),
		ButtonFocused: n().Padding(0, 1).Reverse(true).Bold(true),
		Dialog:        n().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1),
		accent:        accent,
	}
	s.Help = help.Styles{
		ShortKey:       n().Foreground(accent),
		ShortDesc:      n().Foreground(subtle),
		ShortSeparator: n().Foreground(subtle),
		Ellipsis:       n().Foreground(subtle),
		FullKey:        n().Foreground(accent),
		FullDesc:       n().Foreground(subtle),
		FullSeparator:  n().Foreground(subtle),
	}
	if s.ASCII {
		// Layout only (padding, borders): nothing to draw escape codes for.
		for _, st := range []*lipgloss.Style{&s.Title, &s.Header, &s.Dim, &s.Label, &s.Value, &s.Selected, &s.Cursor,
			&s.Error, &s.Warn, &s.OK, &s.Reassigned, &s.Match, &s.CurrentMatch, &s.Focused, &s.Blurred, &s.Button, &s.ButtonFocused,
			&s.Help.ShortKey, &s.Help.ShortDesc, &s.Help.ShortSeparator, &s.Help.Ellipsis,
			&s.Help.FullKey, &s.Help.FullDesc, &s.Help.FullSeparator} {
			*st = st.UnsetForeground().UnsetBold().UnsetReverse()
		}
		s.Dialog = n().Border(lipgloss.ASCIIBorder()).Padding(0, 1)
	}
	return s
}

// screen is what a view draws, as the terminal shows it: without colours,
// plain text (the components' own styles, such as the text cursor's
// reverse video, included).
func (s Styles) screen(content string) string {
	if s.ASCII {
		return ansi.Strip(content)
	}
	return content
}

// errorBlock renders an error message wrapped to w columns: the first
// line after indent with an error mark, the rest indented under it.
func (s Styles) errorBlock(text string, w int, indent string) string {
	mark := s.marker("x ", "✗ ")
	body := max(w-len(indent)-2, 20)
	lines := strings.Split(ansi.Wrap(text, body, ""), "\n")
	var b strings.Builder
	for i, l := range lines {
		lead := "  "
		if i == 0 {
			lead = mark
		}
		b.WriteString(indent + s.Error.Render(lead+l) + "\n")
	}
	return b.String()
}

// marker returns the ASCII or the Unicode form of a symbol.
func (s Styles) marker(ascii, unicode string) string {
	if s.ASCII {
		return ascii
	}
	return unicode
}

// newInput returns a text input styled with s and a static cursor (no
// blinking: nothing redraws while the user does nothing).
func (s Styles) newInput(placeholder string, limit int) textinput.Model {
	ti := textinput.New()
	ti.Prompt = ""
	ti.Placeholder = placeholder
	ti.CharLimit = limit
	st := textinput.DefaultStyles(s.Dark)
	for _, state := range []*textinput.StyleState{&st.Focused, &st.Blurred} {
		state.Placeholder, state.Text, state.Prompt = s.Dim, s.Value, lipgloss.NewStyle()
	}
	st.Cursor.Color, st.Cursor.Blink = s.accent, false
	ti.SetStyles(st)
	return ti
}
