package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
)

func newStatusCmd() *cobra.Command {
	var (
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the installed node: K3s unit, node, versions, operator, core instances, pipelines",
		Long: `Show what tpctl installed: the install state, the K3s unit as systemd sees
it, the node, the payload, the operator Deployment (ready replicas, image), every
CoreInstance (Ready, health-check port, pipelines) and the number of pipelines.
A part that cannot be read is shown as unavailable, with the reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON, cli.YAML)
			if err != nil {
				return err
			}
			b, err := bundle.Open()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep := installer.Status(ctx, installOptions(installer.Config{}, installer.Sources{}, b, preflight.IgnoreSet{}))
			if f != cli.Table {
				return cli.Encode(cmd.OutOrStdout(), f, rep)
			}
			return installer.WriteStatus(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table|json|yaml")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "give up reading the unit, node and cluster after this long")
	return cmd
}
