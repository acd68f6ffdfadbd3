package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	xterm "github.com/charmbracelet/x/term"

	"github.com/tpctl/tpctl/manage"
)

// coloursOf are the colours of out: none when it is not a terminal.
func coloursOf(in io.Reader, out io.Writer) *Colours {
	o, ok := out.(xterm.File)
	if !ok {
		return &Colours{Profile: colorprofile.NoTTY, Dark: true}
	}
	i, ok := in.(xterm.File)
	if !ok {
		i = os.Stdin
	}
	return DetectColours(i, o)
}

// Run shows the manager on the alternate screen of out, reading keys from
// in, until the user quits or ctx ends.
func Run(ctx context.Context, api manage.API, in io.Reader, out io.Writer, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Colours == nil {
		o.Colours = coloursOf(in, out)
	}
	p := tea.NewProgram(New(ctx, api, o), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out),
		tea.WithColorProfile(o.Colours.Profile))
	if _, err := p.Run(); err != nil {
		if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("run the terminal UI: %w", err)
	}
	return nil
}
