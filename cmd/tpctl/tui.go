package main

import (
	"io"
	"os"

	"github.com/charmbracelet/colorprofile"
	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/tui"
)

func newTUICmd() *cobra.Command { return newTUICmdWith(defaultClusterDeps()) }

func newTUICmdWith(d clusterDeps) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Manage pipelines and core instances in a terminal UI",
		Long: `Manage pipelines in a terminal UI: the list (live, filter with /, sort with s),
each pipeline's ports, conditions, events and configuration, create and edit
forms that check names and ports as you type, delete with confirmation, and
the core instances' proxies and health check. ? shows every key.

It needs an interactive terminal; scripts use the sub-commands, which do the
same: tpctl pipeline …, tpctl instance ….`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, out := cmd.InOrStdin(), cmd.OutOrStdout()
			if !d.isTerminal(in) || !d.isTerminal(out) {
				return cli.Usagef("tpctl tui needs an interactive terminal; without one use the sub-commands: " +
					"tpctl pipeline list|get|create|update|delete|endpoints, tpctl instance list|get|update")
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			return tui.Run(cmd.Context(), c, in, out, tui.Options{Colours: renderer(out)})
		},
	}
	cf.register(cmd)
	return cmd
}

// renderer gives the colours to draw out with: none when out is not a
// colour terminal (TERM=dumb, NO_COLOR).
func renderer(out io.Writer) *tui.Colours {
	f, ok := out.(*os.File)
	if !ok || !cli.ColorEnabled(f) {
		return &tui.Colours{Profile: colorprofile.ASCII, Dark: true}
	}
	return tui.DetectColours(os.Stdin, f)
}
