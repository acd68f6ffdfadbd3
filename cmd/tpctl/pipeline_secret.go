package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
)

const secretsHelp = `A pipeline's secrets are kept in a Secret of its own, <pipeline>-secrets,
which Kubernetes deletes with the pipeline. Each becomes an environment
variable of the pipeline's pods, so the configuration names it as ${NAME}
(NAME: letters, digits and '_'). A change rolls the pods. Values are never
printed: not by list, get, export or -o yaml, not in errors.

NAME=VALUE puts the value on the command line (and so in the shell's history
and the process list); NAME alone takes the value of the environment variable
NAME, and --from-file reads a file. Files are .env lines (NAME=VALUE,
# comments, 'single' or "double" quotes, nothing expanded) or, when the name
ends in .yaml, .yml or .json, a map of NAME: value.

Change them with tpctl: an edit of the Secret with kubectl reaches the pods
only when they restart.`

// secretsLine tells what a write did to a pipeline's secrets: names only.
func secretsLine(w io.Writer, pipeline string, keys []manage.SecretKey, dryRun bool) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	what := "holds"
	if dryRun {
		what = "would hold (dry run)"
	}
	fmt.Fprintf(w, "Secret %q of pipeline %q %s: %s (values not shown)\n", v1alpha1.SecretsName(pipeline), pipeline, what, list)
}

// checkStdin refuses two flags that would both read stdin.
func checkStdin(configFile string, sf *manage.SecretFlags, cmd *cobra.Command) error {
	fl := cmd.Flags()
	if fl.Changed("config-file") && fl.Changed("secrets-file") && configFile == "-" && sf.File == "-" {
		return cli.Usagef("--config-file and --secrets-file cannot both read stdin (-)")
	}
	return nil
}

// writeSecretsTable prints a pipeline's secrets (names and sizes) when it
// has some, for `pipeline get`.
func writeSecretsTable(ctx context.Context, w io.Writer, c clusterClient, p *v1alpha1.Pipeline) error {
	if p.Labels[v1alpha1.LabelSecretsRevision] == "" {
		return nil
	}
	keys, err := c.PipelineSecrets(ctx, p.Name)
	if err != nil {
		fmt.Fprintf(w, "\nSecrets: cannot list them: %v\n", err)
		return nil
	}
	fmt.Fprintf(w, "\nSecrets (Secret %s, values not shown):\n", v1alpha1.SecretsName(p.Name))
	return manage.WriteSecretKeys(w, keys, "  ")
}

func pipelineSecretCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "secret",
		Aliases: []string{"secrets"},
		Short:   "List, set and remove a pipeline's secrets (environment variables for ${NAME})",
		Long:    secretsHelp,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(pipelineSecretListCmd(d, cf), pipelineSecretSetCmd(d, cf), pipelineSecretUnsetCmd(d, cf))
	return cmd
}

func pipelineSecretListCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list N",
		Aliases: []string{"ls"},
		Short:   "List a pipeline's secrets: names and sizes, never values",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(output)
			if err != nil {
				return err
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			keys, err := c.PipelineSecrets(cmd.Context(), args[0])
			if err != nil {
				return userError(err)
			}
			if f == cli.Table {
				if len(keys) == 0 {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "pipeline %q has no secrets\n", args[0])
					return err
				}
				return manage.WriteSecretKeys(cmd.OutOrStdout(), keys, "")
			}
			return cli.Encode(cmd.OutOrStdout(), f, keys)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func pipelineSecretSetCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var fromFile string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "set N NAME=VALUE|NAME… [--from-file F]",
		Short: "Add or change secrets of a pipeline; its pods roll",
		Long:  secretsHelp,
		Example: `  TOKEN=… tpctl pipeline secret set fwd TOKEN      # value from the environment
  tpctl pipeline secret set fwd --from-file fwd.env
  tpctl pipeline secret set fwd SPLUNK_TOKEN=abc123 --dry-run`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := map[string]string{}
			if cmd.Flags().Changed("from-file") {
				m, err := manage.ReadSecretsFile(fromFile, cmd.InOrStdin())
				if err != nil {
					return &cli.UsageError{Err: err}
				}
				for k, v := range m {
					set[k] = v
				}
			}
			if len(args) > 1 {
				m, err := manage.ParseSecretArgs(args[1:], d.lookupEnv)
				if err != nil {
					return &cli.UsageError{Err: err}
				}
				for k, v := range m {
					set[k] = v
				}
			}
			if len(set) == 0 && !cmd.Flags().Changed("from-file") {
				return cli.Usagef("nothing to set: give NAME=VALUE, NAME (from the environment) or --from-file")
			}
			return changeSecrets(cmd, d, cf, args[0], manage.SecretChange{Set: set}, dryRun)
		},
	}
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read secrets from a .env or YAML file (- reads stdin)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check and show what would be stored; the API server validates it and nothing is stored")
	return cmd
}

func pipelineSecretUnsetCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:     "unset N NAME…",
		Aliases: []string{"rm", "remove"},
		Short:   "Remove secrets of a pipeline; its pods roll",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return changeSecrets(cmd, d, cf, args[0], manage.SecretChange{Unset: args[1:]}, dryRun)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check and show what would remain; nothing is stored")
	return cmd
}

func changeSecrets(cmd *cobra.Command, d clusterDeps, cf *clusterFlags, name string, ch manage.SecretChange, dryRun bool) error {
	c, err := cf.client(d)
	if err != nil {
		return err
	}
	keys, err := c.ChangePipelineSecrets(cmd.Context(), name, ch, manage.WriteOptions{DryRun: dryRun})
	if err != nil {
		return secretError(err)
	}
	secretsLine(cmd.OutOrStdout(), name, keys, dryRun)
	return nil
}

// secretError marks input errors about secrets (bad names, missing keys)
// as usage errors.
func secretError(err error) error {
	var nf *manage.SecretKeyNotFoundError
	if errors.As(err, &nf) {
		return &cli.UsageError{Err: err}
	}
	return userError(err)
}
