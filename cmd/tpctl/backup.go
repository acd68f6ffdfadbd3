package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/backup"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/systemd"
)

func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Snapshot K3s's datastore, token and CA material and tpctl's state; restore a snapshot",
		Long: `backup create writes one tar.gz archive (mode 0600): a consistent online copy of
K3s's SQLite datastore (SQLite's backup API; the live file is never copied),
the K3s server token, its TLS and credential directories, the node password,
tpctl's install state and K3s's configuration, and manifest.json with the
versions and the size and sha256 of every part. Archives are kept in
` + backup.DefaultDir + ` (0700) unless --output names a file.

backup restore FILE puts an archive back on an installed host: see its help.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newBackupCreateCmd(), newBackupListCmd(), newBackupRestoreCmd())
	return cmd
}

func newBackupCreateCmd() *cobra.Command {
	var (
		file, output string
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Write a backup archive of this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if file != "" {
				if file, err = filepath.Abs(file); err != nil {
					return cli.Usagef("--output: %v", err)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			m, path, err := backup.Create(ctx, backup.Options{
				Root: "/", Output: file, TpctlVersion: buildinfo.Get().Version,
				Cluster: backup.NewKubeCluster(installer.KubeconfigPath),
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f == cli.JSON {
				return cli.Encode(out, cli.JSON, struct {
					Path     string          `json:"path"`
					Manifest backup.Manifest `json:"manifest"`
				}{path, m})
			}
			return writeBackupCreated(out, path, m)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&file, "output", "", "write the archive to this file instead of "+backup.DefaultDir)
	fl.StringVar(&output, "format", "table", "output format: table or json")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

func writeBackupCreated(w io.Writer, path string, m backup.Manifest) error {
	var size int64
	for _, p := range m.Parts {
		size += p.Size
	}
	fmt.Fprintf(w, "Backup written to %s\n", path)
	fmt.Fprintf(w, "  tpctl %s, K3s %s, data dir %s, %d parts (%d bytes before compression)\n",
		m.TpctlVersion, orDash(m.K3sVersion), m.DataDir, len(m.Parts), size)
	fmt.Fprintf(w, "  datastore: %d rows up to revision %d (%s)\n", m.Datastore.Rows, m.Datastore.Revision, m.Datastore.Method)
	if m.Inventory != nil {
		fmt.Fprintf(w, "  %d CoreInstances, %d Pipelines recorded\n", len(m.Inventory.CoreInstances), len(m.Inventory.Pipelines))
	} else {
		fmt.Fprintf(w, "  the cluster's objects could not be listed (%s): a restore cannot check them\n", m.InventoryError)
	}
	_, err := fmt.Fprintln(w, "  The archive holds the K3s token and private keys: keep it as secret as the node.")
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newBackupListCmd() *cobra.Command {
	var output, dir string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the backup archives tpctl keeps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			list, err := backup.List(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f == cli.JSON {
				if list == nil {
					list = []backup.Entry{}
				}
				return cli.Encode(out, cli.JSON, list)
			}
			if len(list) == 0 {
				_, err := fmt.Fprintf(out, "No backups in %s\n", dir)
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tSIZE\tREASON\tTPCTL\tK3S")
			for _, e := range list {
				if e.Error != "" {
					fmt.Fprintf(tw, "%s\t-\t%d\t-\t-\tunreadable: %s\n", e.Name, e.Size, e.Error)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", e.Name, e.CreatedAt.Format(time.RFC3339), e.Size,
					orDash(e.Reason), orDash(e.TpctlVersion), orDash(e.K3sVersion))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&dir, "dir", backup.DefaultDir, "directory of the archives")
	return cmd
}

func newBackupRestoreCmd() *cobra.Command {
	var (
		yes, dryRun bool
		output      string
		timeout     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup archive on this installed host",
		Long: `Restore a backup archive on a host where tpctl install has run (for example a
freshly installed one, or one whose uninstall --keep-data failed).

The archive is checked first: every part's sha256 against the manifest, the
manifest format, the tpctl and K3s versions (a newer tpctl or K3s, or another
K3s minor, is refused) and the data dir (must be the installed one). A
refusal names the part or version and changes nothing. --dry-run prints the
plan. Otherwise (--yes is required) the restore is recorded in
` + backup.RestoreIntentPath + `, k3s.service is stopped, the current
datastore, token, tls and cred directories and node password are moved
aside to <dataDir>/server/pre-restore-<time>/ (kept), the archive's are put
in place (0600), k3s.service is started, and the restore waits for the API, a
Ready node and every CoreInstance and Pipeline the archive recorded, with the
same frontends.

A restore that was interrupted (killed, timed out, k3s.service not starting)
is completed by running the same command again with the same archive (the
same file anywhere: it is named by its sha256); --dry-run shows where it
resumes. Another archive is refused, naming the one in progress, until then.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if !dryRun && !yes {
				return cli.Usagef("restore replaces K3s's datastore, token and certificates: pass --yes (or --dry-run to see the plan); nothing was changed")
			}
			archive, err := filepath.Abs(args[0])
			if err != nil {
				return cli.Usagef("%v", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			o := backup.RestoreOptions{
				Root: "/", Archive: archive, TpctlVersion: buildinfo.Get().Version,
				DryRun: dryRun, Yes: yes, Cluster: backup.NewKubeCluster(installer.KubeconfigPath),
			}
			if f == cli.Table {
				o.Progress = func(s string) { fmt.Fprintln(out, s) }
			}
			if !dryRun {
				dbus, err := systemd.Connect(ctx)
				if err != nil {
					return err
				}
				defer dbus.Close()
				o.Units = dbus
			}
			plan, err := backup.Restore(ctx, o)
			if err != nil {
				return err
			}
			if f == cli.JSON {
				return cli.Encode(out, cli.JSON, plan)
			}
			if dryRun {
				return writeRestorePlan(out, plan)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&yes, "yes", "y", false, "confirm the restore")
	fl.BoolVar(&dryRun, "dry-run", false, "check the archive and print the plan, change nothing")
	fl.StringVarP(&output, "output", "o", "table", "output format: table (plain lines) or json")
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

func writeRestorePlan(w io.Writer, p backup.Plan) error {
	fmt.Fprintf(w, "Archive %s (created %s by tpctl %s, K3s %s) checked: every sha256 matches.\n",
		p.Archive, p.CreatedAt.Format(time.RFC3339), p.TpctlVersion, orDash(p.K3sVersion))
	if p.Resume != "" {
		fmt.Fprintf(w, "A restore of this archive was interrupted (phase %s): restoring it again resumes there; moves done already are skipped.\n", p.Resume)
	}
	fmt.Fprintf(w, "A restore would:\n  stop %s\n", installer.UnitName)
	for _, m := range p.MoveAside {
		fmt.Fprintf(w, "  move the current %s %s to %s\n", m.What, m.From, m.To)
	}
	for _, m := range p.PutInPlace {
		fmt.Fprintf(w, "  put the archive's %s at %s\n", m.What, m.To)
	}
	fmt.Fprintf(w, "  start %s and wait for:\n", installer.UnitName)
	for _, s := range p.WaitFor {
		fmt.Fprintf(w, "    %s\n", s)
	}
	_, err := fmt.Fprintln(w, "Nothing was changed (dry run).")
	return err
}
