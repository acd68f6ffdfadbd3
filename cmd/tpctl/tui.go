package main

import (
	"io"
	"os"

	"github.com/charmbracelet/colorprofile"
	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/tui"
)

// tuiLogsConnect returns the reader of the logs page for the pipelines of
// namespace (the one the manager's client resolved).
type tuiLogsConnect func(kubeconfig, namespace string) (tui.LogReader, error)

func newTUICmd() *cobra.Command { return newTUICmdWith(defaultClusterDeps(), connectTUILogs) }

// connectTUILogs connects as the other cluster commands do and reads logs
// through a clientset's pods/log, as `tpctl pipeline logs` does.
func connectTUILogs(kubeconfig, namespace string) (tui.LogReader, error) {
	pc, err := connectPods(kubeconfig, namespace)
	if err != nil {
		return nil, err
	}
	return manage.NewLogReader(pc.Pods, pc.Namespace, nil), nil
}

func newTUICmdWith(d clusterDeps, logs tuiLogsConnect) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Manage pipelines and core instances in a terminal UI",
		Long: `Manage pipelines in a terminal UI: the list (live, filter with /, sort with s),
each pipeline's ports, conditions, events and configuration, its pods' logs
(l: followed live, p pauses, / searches, w wraps), create and edit
forms that check names and ports as you type, delete with confirmation,
the core instances' proxies and health check, and the cluster's nodes (N:
roles, Ready or why not, internal address and the namespace's pipeline pods
on each, read again every 5 seconds). ? shows every key.

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
			lr, err := logs(cf.kubeconfig, c.Namespace())
			if err != nil {
				return err
			}
			o := tui.Options{Colours: renderer(out), Logs: lr}
			if d.metrics != nil {
				// Without metrics the manager still works: no rate column.
				if mc, err := d.metrics(cf.kubeconfig, c.Namespace()); err == nil {
					o.Metrics = mc
				}
			}
			return tui.Run(cmd.Context(), c, in, out, o)
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
