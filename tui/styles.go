package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// Styles are the looks of every view, made from one renderer.
type Styles struct {
	// ASCII is true when the renderer has no colours: views then mark
	// states with characters only.
	ASCII bool

	Title, Header, Dim, Label, Value lipgloss.Style
	Selected, Cursor                 lipgloss.Style
	Error, Warn, OK                  lipgloss.Style
	Reassigned                       lipgloss.Style
	Focused, Blurred                 lipgloss.Style
	Button, ButtonFocused            lipgloss.Style
	Dialog                           lipgloss.Style
	Help                             help.Styles
}

// NewStyles builds the styles for r (nil: lipgloss's default renderer).
func NewStyles(r *lipgloss.Renderer) Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#A78BFA"}
	subtle := lipgloss.AdaptiveColor{Light: "#767676", Dark: "#8A8A8A"}
	s := Styles{
		ASCII:         r.ColorProfile() == termenv.Ascii,
		Title:         r.NewStyle().Bold(true).Foreground(accent),
		Header:        r.NewStyle().Bold(true),
		Dim:           r.NewStyle().Foreground(subtle),
		Label:         r.NewStyle().Foreground(subtle),
		Value:         r.NewStyle(),
		Selected:      r.NewStyle().Reverse(true),
		Cursor:        r.NewStyle().Foreground(accent).Bold(true),
		Error:         r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#C0262D", Dark: "#FF6B6B"}),
		Warn:          r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#A05A00", Dark: "#F5B041"}),
		OK:            r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#1E7B34", Dark: "#5CD68A"}),
		Reassigned:    r.NewStyle().Bold(true).Foreground(lipgloss.AdaptiveColor{Light: "#A05A00", Dark: "#F5B041"}),
		Focused:       r.NewStyle().Foreground(accent).Bold(true),
		Blurred:       r.NewStyle().Foreground(subtle),
		Button:        r.NewStyle().Padding(0, 1).Foreground(subtle),
		ButtonFocused: r.NewStyle().Padding(0, 1).Reverse(true).Bold(true),
		Dialog:        r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1),
	}
	if s.ASCII {
		s.Dialog = r.NewStyle().Border(lipgloss.ASCIIBorder()).Padding(0, 1)
	}
	s.Help = help.Styles{
		ShortKey:       r.NewStyle().Foreground(accent),
		ShortDesc:      r.NewStyle().Foreground(subtle),
		ShortSeparator: r.NewStyle().Foreground(subtle),
		Ellipsis:       r.NewStyle().Foreground(subtle),
		FullKey:        r.NewStyle().Foreground(accent),
		FullDesc:       r.NewStyle().Foreground(subtle),
		FullSeparator:  r.NewStyle().Foreground(subtle),
	}
	return s
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
	ti.PlaceholderStyle = s.Dim
	ti.TextStyle = s.Value
	ti.Cursor.Style = s.Cursor
	ti.Cursor.TextStyle = s.Value
	ti.Cursor.SetMode(cursor.CursorStatic)
	return ti
}
