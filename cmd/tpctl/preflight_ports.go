package main

import (
	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight/ports"
)

func newPreflightPortsCmd() *cobra.Command {
	var (
		tables []string
		files  []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "ports",
		Short: "List the port catalog that preflight checks the host against",
		Long: `List the documented port tables: k3s (the node's own ports), kubernetes-cilium,
telemetry-pipeline, kuma and event-streams, plus any table given with
--ports-file. Each row shows the port or range, protocol, binding (host: any
address clashes; localhost: loopback or a wildcard clashes), the component,
the condition under which the row applies ("always", or a key such as
cni=cilium or es-metrics that "tpctl preflight --condition" enables) and its
purpose.

A --ports-file uses the same YAML schema as the built-in tables and is checked
strictly; a file with problems is a usage error (exit 2) that names the file,
line, row and field.`,
		Example: `  tpctl preflight ports
  tpctl preflight ports --table k3s --table kuma
  tpctl preflight ports --ports-file ./my-ports.yaml -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return &cli.UsageError{Err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON, cli.YAML)
			if err != nil {
				return err
			}
			all, err := ports.Builtin()
			if err != nil {
				return err
			}
			all, err = ports.AddFiles(all, files)
			if err != nil {
				return cli.Usagef("--ports-file: %w", err)
			}
			if len(tables) > 0 {
				if all, err = ports.Pick(all, tables); err != nil {
					return cli.Usagef("--table: %w", err)
				}
			}
			if f == cli.Table {
				return ports.WriteCatalog(cmd.OutOrStdout(), all)
			}
			return cli.Encode(cmd.OutOrStdout(), f, all)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&tables, "table", nil, "show only this table (repeatable; default: all)")
	fl.StringArrayVar(&files, "ports-file", nil, "add a port table from a YAML file (repeatable)")
	fl.StringVarP(&output, "output", "o", "table", "output format: table|json|yaml")
	return cmd
}
