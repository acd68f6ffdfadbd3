package main

import (
	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/internal/cli"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tpctl",
		Short: "Install and manage a telemetry-pipeline appliance on a Linux host",
		Long: `tpctl turns a bare Linux host into a telemetry-pipeline appliance and manages it.

It checks the host (preflight), bootstraps the K3s it carries as a systemd
service, installs the operator and core-instance charts, and manages pipelines
through a terminal UI or unattended sub-commands.

Exit codes: 0 success, 1 failure, 2 usage error (nothing changed),
3 preflight found failing checks, 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cli.UsageError{Err: err}
	})
	root.AddCommand(
		newVersionCmd(),
		newOperatorCmd(),
		newPreflightCmd(),
		newInstallCmd(), newUninstallCmd(), newStatusCmd(),
		newPipelineCmd(), newInstanceCmd(), newTUICmd(),
		newApplyCmd(), newSupportBundleCmd(),
		newBackupCmd(),
		newUpgradeCmd(),
		newTokenCmd(), newJoinCmd(), newNodeCmd(),
	)
	return root
}
