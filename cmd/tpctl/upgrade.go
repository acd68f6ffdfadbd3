package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/backup"
	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
	"github.com/tpctl/tpctl/upgrade"
)

// upgradeReport is `tpctl upgrade -o json`.
type upgradeReport struct {
	Target upgrade.Target `json:"target"`
	// Plan is the upgrade's plan; with --rollback, Rollback is what the
	// rollback restores instead.
	Plan     *upgrade.Plan `json:"plan,omitempty"`
	Rollback *rollbackPlan `json:"rollback,omitempty"`
	// Result: refused, nothing-to-upgrade, dry-run, upgraded, rolled-back.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

func newUpgradeCmd() *cobra.Command {
	var (
		src        installer.Sources
		output     string
		dryRun     bool
		yes        bool
		rollback   bool
		noSnapshot bool
		timeout    time.Duration
		release    string
	)
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade the installed host to the K3s, charts and operator this tpctl carries, or roll the last upgrade back",
		Long: `Upgrade an installed host to the versions this tpctl carries: K3s, the
operator and core-instance charts (with their CRDs) and the operator image.

First the plan: each component from → to, read from the install state and
the cluster. The upgrade is refused, naming why, for a K3s downgrade, a skipped
Kubernetes minor version (Kubernetes upgrades one minor at a time), a state
written by a newer tpctl, a node that is not Ready, or no install at all. When
the host runs these versions already there is nothing to upgrade (exit 0).

Then, unless --dry-run: the upgrade is recorded in the install state, the
previous K3s binary and the files rendered from the configuration are kept
under ` + upgrade.KeptDir + `, a snapshot is taken (as by tpctl backup create;
--no-snapshot skips it), and the install plan runs
again with the recorded configuration: it stages the new K3s and images,
restarts k3s.service once (KillMode=process: pipeline pods keep running),
waits for the node, upgrades the CRDs and both releases (the operator rolls to
its new image) and waits for every CoreInstance to be Ready.

On a host without CAP_SYS_RESOURCE, the containerd template install derived
(restrict_oom_score_adj = true) belongs to the old K3s binary: it is removed
when the new binary is staged, the new K3s generates its own containerd
config at that restart, and the template is derived again from that config
and applied by a second restart (the template records the K3s binary's
sha256; a rollback puts the old one back).

If that does not finish within --timeout, the previous K3s binary, its
configuration and the Helm releases are restored and the host runs the old
version again. --rollback does the same on demand after an upgrade. An upgrade
or rollback that was killed is completed by the next run.

Exit codes: 0 upgraded (or nothing to upgrade), 1 failed (rolled back when
the message says so), 3 refused (nothing changed), 130 interrupted.`,
		Example: `  tpctl upgrade --dry-run
  tpctl upgrade --yes
  tpctl upgrade --rollback`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if release != "" {
				return runReleaseUpgrade(cmd, release, dryRun)
			}
			out := cmd.OutOrStdout()
			ctx := cmd.Context()
			b, err := bundle.Open()
			if err != nil {
				return err
			}
			version := buildinfo.Get().Version
			to := upgrade.TargetOf(ctx, b, version, src, k3sVersion)
			in := upgrade.Inspect(ctx, "/", upgrade.NewCluster, time.Now)
			plan := upgrade.Compute(in, to)
			rep := newUpgradeReport(to, plan, in, rollback)
			emit := func(result string, err error) error {
				rep.Result = result
				if err != nil {
					rep.Error = err.Error()
				}
				if f == cli.JSON {
					if eerr := cli.Encode(out, cli.JSON, rep); eerr != nil {
						return eerr
					}
				}
				return err
			}
			if f == cli.Table {
				writePlan(out, rollback, in, plan)
			}
			opts := upgradeOptions(in, plan, to, src, b, timeout, f, out)
			if !noSnapshot {
				opts.Snapshot = backupSnapshot{version: version}
			}
			opts.AllowNoSnapshot = noSnapshot
			if rollback {
				if plan.Rollback == "" && plan.Resume == "" {
					return emit("refused", &cli.CodeError{Code: cli.ExitPreflight, Err: errors.New("nothing to roll back: no finished or interrupted upgrade is recorded")})
				}
				if dryRun {
					if f == cli.Table {
						fmt.Fprintf(out, "Would restore %s.\n", plan.Rollback)
					}
					return emit("dry-run", nil)
				}
				if !yes && cli.IsTerminal(os.Stdin) && !confirm(cmd.InOrStdin(), out, "Roll back the last upgrade?") {
					return emit("refused", &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")})
				}
				if err := upgrade.Rollback(ctx, opts); err != nil {
					return emit("failed", err)
				}
				if f == cli.Table {
					fmt.Fprintln(out, "Rolled back: the previous K3s, configuration and releases run again.")
				}
				return emit("rolled-back", nil)
			}
			if plan.Refused() {
				var why []string
				for _, r := range plan.Refusals {
					why = append(why, r.Reason)
				}
				return emit("refused", &cli.CodeError{Code: cli.ExitPreflight, Err: fmt.Errorf("upgrade refused, nothing was changed:\n  %s", strings.Join(why, "\n  "))})
			}
			if plan.NothingToDo() {
				if f == cli.Table {
					fmt.Fprintln(out, "Nothing to upgrade: this host runs the versions this tpctl carries.")
				}
				return emit("nothing-to-upgrade", nil)
			}
			if dryRun {
				return emit("dry-run", nil)
			}
			if !yes && cli.IsTerminal(os.Stdin) && !confirm(cmd.InOrStdin(), out, "Upgrade this host as planned?") {
				return emit("refused", &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")})
			}
			start := time.Now()
			err = upgrade.Apply(ctx, opts)
			var rb *upgrade.RolledBackError
			switch {
			case errors.As(err, &rb):
				return emit("rolled-back", err)
			case err != nil:
				return emit("failed", planError(err))
			}
			if f == cli.Table {
				fmt.Fprintf(out, "Upgraded in %s. `tpctl upgrade --rollback` goes back to the previous version.\n", time.Since(start).Round(time.Second))
			}
			return emit("upgraded", nil)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (without a terminal tpctl never asks)")
	fl.BoolVar(&rollback, "rollback", false, "restore the K3s, configuration and releases of before the last upgrade")
	fl.BoolVar(&noSnapshot, "no-snapshot", false, "upgrade without a pre-upgrade snapshot (tpctl backup create)")
	fl.DurationVar(&timeout, "timeout", 15*time.Minute, "roll back when the node, the releases or the CoreInstances are not back within this long")
	fl.StringVarP(&output, "output", "o", "table", "output format: table or json")
	fl.StringVar(&src.K3sBinary, "k3s-binary", "", "K3s binary to upgrade to instead of the embedded one")
	fl.StringVar(&src.K3sSHA256, "k3s-sha256", "", "sha256 the --k3s-binary must have")
	fl.StringSliceVar(&src.K3sImages, "k3s-images", nil, "K3s air-gap image archive(s) to stage instead of the embedded ones (repeatable)")
	fl.StringVar(&release, "release", "", "upgrade with the tpctl of this release (https:// URL, http:// on loopback, or a directory as make release writes it): its signature and sha256 are verified, then it runs upgrade with the other flags and, when that succeeds, replaces "+InstalledTpctl)
	return cmd
}

// backupSnapshot takes the pre-upgrade snapshot with `tpctl backup
// create` (kept in the backups directory, listed by `backup list`).
type backupSnapshot struct{ version string }

func (s backupSnapshot) Snapshot(ctx context.Context) (string, error) {
	_, path, err := backup.Create(ctx, backup.Options{
		Root: "/", Reason: "pre-upgrade", TpctlVersion: s.version,
		Cluster: backup.NewKubeCluster(installer.KubeconfigPath),
	})
	return path, err
}

// writePlan prints, before anything changes, what the command is about to
// do: the upgrade plan, or with --rollback what the rollback restores (the
// forward plan would only show every component unchanged).
func writePlan(w io.Writer, rollback bool, in upgrade.Installed, p upgrade.Plan) {
	if rollback {
		writeRollbackPlan(w, rollbackPlanOf(in.State.Upgrade, in.Releases, in.Present))
		return
	}
	writeUpgradePlan(w, p)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// writeUpgradePlan prints the plan as a table and what would be resumed
// (refusals are the command's error).
func writeUpgradePlan(w io.Writer, p upgrade.Plan) {
	if len(p.Rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tFROM\tTO\tCHANGE")
	for _, r := range p.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Component, r.From, r.To, r.Change)
	}
	tw.Flush()
	if p.Resume != "" {
		fmt.Fprintf(w, "An interrupted upgrade is recorded (phase %s): upgrade resumes it, --rollback undoes it.\n", p.Resume)
	}
}

// upgradeOptions wires the upgrade to the real host: the install plan of
// this tpctl with the recorded configuration.
func upgradeOptions(in upgrade.Installed, plan upgrade.Plan, to upgrade.Target, src installer.Sources, b *bundle.Bundle, timeout time.Duration, f cli.Format, out io.Writer) upgrade.Options {
	logf := func(format string, args ...any) {
		if f == cli.Table {
			fmt.Fprintf(out, format+"\n", args...)
		}
	}
	return upgrade.Options{
		Root: "/", Installed: in, Plan: plan, Target: to, Timeout: timeout, Log: logf,
		Systemd: func(ctx context.Context) (systemd.Manager, error) { return systemd.Connect(ctx) },
		Cluster: upgrade.NewCluster,
		Install: func(ctx context.Context) error {
			opts := installOptions(in.State.Config, src, b, preflight.IgnoreSet{})
			if plan.Charts {
				ch := chartsOf(in)
				ch.Version = to.Tpctl
				opts.Charts = &ch
			}
			p, env, err := installer.NewInstallPlan(ctx, opts)
			if err != nil {
				return err
			}
			defer env.Close()
			var ev installer.Events = installer.NewPlain(out)
			if f == cli.JSON {
				ev = installer.NewJSONLines(io.Discard)
			}
			lf, err := installer.OpenLogFile(filepath.Join(p.Root, installer.LogPath))
			if err != nil {
				return err
			}
			defer lf.Close()
			return installer.Run(ctx, p, installer.Multi(ev, lf))
		},
		Instances: notReadyInstances,
		// A rollback rolls each upgraded Helm release back to the revision
		// recorded before the upgrade, waiting as the install does.
		Releases: installer.HelmReleases{
			Kubeconfig: installer.KubeconfigPath,
			CacheDir:   filepath.Join("/", installer.HelmCacheDir),
			Progress:   func(msg string) { logf("%s", msg) },
		},
	}
}

// chartsOf reads the chart settings the core release was installed with.
func chartsOf(in upgrade.Installed) installer.Charts {
	var ch installer.Charts
	core, ok := in.Releases[installer.InstanceRelease]
	if !ok {
		return ch
	}
	if n, ok := core.Values["name"].(string); ok {
		ch.InstanceName = n
	}
	if d, ok := core.Values["pipelineDefaults"].(map[string]any); ok {
		if img, ok := d["image"].(string); ok {
			ch.PipelineImage = img
		}
		if args, ok := d["args"].([]any); ok {
			for _, a := range args {
				if s, ok := a.(string); ok {
					ch.PipelineArgs = append(ch.PipelineArgs, s)
				}
			}
		}
	}
	return ch
}

// notReadyInstances lists the CoreInstances that are not Ready.
func notReadyInstances(ctx context.Context) ([]string, error) {
	api, err := installer.NewChartAPI(installer.KubeconfigPath)
	if err != nil {
		return nil, err
	}
	list, err := api.CoreInstances(ctx)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, inst := range list {
		c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case c == nil:
			bad = append(bad, inst.Name+": not reconciled yet")
		case c.ObservedGeneration < inst.Generation:
			bad = append(bad, fmt.Sprintf("%s: generation %d not reconciled yet", inst.Name, inst.Generation))
		case c.Status != metav1.ConditionTrue:
			bad = append(bad, inst.Name+": "+c.Reason)
		}
	}
	return bad, nil
}
