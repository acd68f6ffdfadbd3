package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
)

func newUninstallCmd() *cobra.Command {
	var (
		yes, keepData, dryRun bool
		keepNode              bool
		output                string
		timeout               time.Duration
		kt                    kubeTargetFlags
	)
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove K3s and everything tpctl install created on this host",
		Long: `Remove what tpctl install set up: uninstall the core-instance and operator
Helm releases (and, unless --keep-data, the tpctl CRDs with every CoreInstance
and Pipeline), stop and disable k3s.service, kill the
processes K3s leaves running (containerd shims, pods), unmount what K3s mounted,
delete the network interfaces and the iptables/nftables rules K3s and
kube-proxy created, then remove exactly the files and directories the install
recorded in ` + installer.StatePath + ` — nothing else.

Only what K3s owns is touched: processes run from <dataDir>/data/ or left in
k3s.service's cgroup, mounts below /run/k3s, /var/lib/kubelet, <dataDir>/agent
and /run/netns/cni-*, and the data dir's server/, agent/, data/ and storage/.
A directory the install created is removed only when nothing else is in it;
removal never crosses a mount point. --dry-run lists what would be kept and
why. A state that cannot be trusted (corrupt, or naming paths tpctl does not
create) is copied aside and nothing is removed; a missing state beside a
tpctl-written unit is an error, not "nothing to uninstall".

--keep-data keeps K3s's data dir (cluster state, images), the CRDs and the
core-instance release with its CoreInstance and every Pipeline: a later
install on that data dir finds them as they were. When the API server cannot
be reached the releases are left to the data dir.
On a host ` + "`tpctl join`" + ` joined as an agent, the node must first leave the
cluster: run ` + "`tpctl node delete NAME`" + ` on the server (a node's own credentials
may read its Node but not delete it; K3s's server then removes its
node-password Secret). Until then uninstall checks, while K3s still runs, that
the Node is gone, and stops with that instruction, changing nothing. Then it
stops and removes k3s-agent.service and what join made, by the same rules.
--keep-node skips the check (a server that is gone for good); the dry run
shows it.
Without a terminal, uninstall needs --yes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if kube, err := kt.kubernetes(cmd.Flags(), "yes", "keep-data", "dry-run", "output", "timeout"); err != nil || kube {
				if err != nil {
					return err
				}
				return runUninstallKubernetes(cmd, kt, f, keepData, dryRun, yes, timeout)
			}
			b, err := bundle.Open()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			opts := installer.UninstallOptions{
				Options:  installOptions(installer.Config{}, installer.Sources{}, b, preflight.IgnoreSet{}),
				KeepData: keepData,
				KeepNode: keepNode,
				Ops:      installer.DefaultHostOps(),
			}
			opts.Charts = &installer.Charts{Version: buildinfo.Get().Version}
			plan, env, err := installer.NewUninstallPlan(opts)
			if installer.NotInstalled(err) {
				fmt.Fprintln(cmd.OutOrStdout(), "Nothing to uninstall:", err)
				return nil
			}
			var se *installer.StateError
			if errors.As(err, &se) && !dryRun {
				// An untrusted state is copied aside for whoever repairs it.
				se.KeepCopy(time.Now)
			}
			if err != nil {
				return err
			}
			defer env.Close()
			out := cmd.OutOrStdout()
			if dryRun {
				rep := installer.DryRun(ctx, plan)
				if f == cli.JSON {
					return cli.Encode(out, cli.JSON, rep)
				}
				return installer.WriteDryRun(out, rep)
			}
			if !yes {
				if !cli.IsTerminal(os.Stdin) {
					return cli.Usagef("uninstall removes K3s and its data: pass --yes to run it without a terminal")
				}
				q := "Remove K3s and everything tpctl installed on this host, including its data dir?"
				if keepData {
					q = "Remove K3s and everything tpctl installed on this host, keeping its data dir?"
				}
				if !confirm(cmd.InOrStdin(), out, q) {
					return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")}
				}
			}
			return runPlan(ctx, plan, f, out, false)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&keepData, "keep-data", false, "keep K3s's data dir (cluster state, images)")
	fl.BoolVar(&dryRun, "dry-run", false, "print what would be removed, change nothing")
	fl.BoolVar(&keepNode, "keep-node", false, "on a joined agent: uninstall although its Node is still in the cluster")
	fl.StringVarP(&output, "output", "o", "table", "progress format: table (plain lines) or json (JSON lines)")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	registerTargetFlags(fl, &kt, false)
	return cmd
}
