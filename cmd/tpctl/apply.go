package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
)

// applyClient is what `tpctl apply` needs.
type applyClient interface {
	manage.Applier
	WaitPipeline(ctx context.Context, name string, cond manage.WaitCondition, interval time.Duration) (*v1alpha1.Pipeline, error)
}

// applyDeps are the seams of the apply command.
type applyDeps struct {
	// connect resolves the kubeconfig and returns a client for namespace
	// ("" means the kubeconfig context's).
	connect func(kubeconfig, namespace string) (applyClient, error)
}

func newApplyCmd() *cobra.Command {
	return newApplyCmdWith(applyDeps{connect: func(kubeconfig, namespace string) (applyClient, error) {
		c, err := connectCluster(kubeconfig, namespace)
		if err != nil {
			return nil, err
		}
		a, ok := c.(applyClient)
		if !ok {
			return nil, fmt.Errorf("client %T cannot apply", c)
		}
		return a, nil
	}})
}

// applyOutput is what -o json|yaml prints.
type applyOutput struct {
	Namespace string               `json:"namespace"`
	DryRun    bool                 `json:"dryRun"`
	Results   []manage.ApplyResult `json:"results"`
	Pipelines []*v1alpha1.Pipeline `json:"pipelines,omitempty"` // with --wait
}

func newApplyCmdWith(d applyDeps) *cobra.Command {
	var cf clusterFlags
	var wf writeFlags
	var file string
	var force bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the pipelines of a file (as `pipeline export` writes it)",
		Long: `Create or update each Pipeline of a YAML file (several documents separated by
---), such as one ` + "`tpctl pipeline export`" + ` wrote. "-f -" reads stdin.

Every document is checked before anything is written: only Pipeline objects of
` + v1alpha1.GroupVersion.String() + `, each name once, a namespace that matches -n (a file
that names one namespace is applied there when -n is not given), an existing
core instance (the only one when none is named), and the rules of
` + "`pipeline create`" + `. Then each pipeline is sent as a server-side dry run, so the
API server's own validation speaks too. A problem in any document names it
(its position in the file and its name) and nothing is changed.

The write is a server-side apply with field manager "` + manage.FieldManager + `": fields the
file does not set keep what other tools set. A field that ` + "`pipeline update`" + `,
the terminal UI or kubectl set to another value is a conflict: nothing is
changed unless --force-conflicts. Applying the same file again changes nothing
and says "unchanged". --dry-run prints what would change, with a diff of each
pipeline from the cluster to the file.`,
		Example: `  tpctl pipeline export > pipelines.yaml       # on the old host
  tpctl apply -f pipelines.yaml --dry-run      # on the new host: what would change
  tpctl apply -f pipelines.yaml --wait
  cat pipelines.yaml | tpctl apply -f - -n logs -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseOutput(wf.output)
			if err != nil {
				return err
			}
			cond, wait, err := wf.condition()
			if err != nil {
				return err
			}
			if wait && wf.dryRun {
				return cli.Usagef("--wait and --dry-run do not go together: a dry run creates nothing to wait for")
			}
			if file == "" {
				return cli.Usagef("-f is required: the file to apply, or - for stdin")
			}
			docs, err := readApplyFile(file, cmd.InOrStdin())
			if err != nil {
				return applyError(err)
			}
			ns, err := manage.DocumentsNamespace(docs, cf.namespace)
			if err != nil {
				return applyError(err)
			}
			c, err := d.connect(cf.kubeconfig, ns)
			if err != nil {
				return err
			}
			res, err := manage.Apply(cmd.Context(), c, docs, manage.ApplyOptions{DryRun: wf.dryRun, Force: force})
			if err != nil {
				if len(res) > 0 {
					printApplied(cmd.OutOrStdout(), res, false)
				}
				return applyError(err)
			}
			out := applyOutput{Namespace: c.Namespace(), DryRun: wf.dryRun, Results: res}
			if f == cli.Table {
				printApplied(cmd.OutOrStdout(), res, wf.dryRun)
			}
			if wait {
				ps, err := waitApplied(cmd, c, res, cond, wf.timeout)
				if err != nil {
					return err
				}
				if f == cli.Table {
					items := make([]v1alpha1.Pipeline, len(ps))
					for i, p := range ps {
						items[i] = *p
					}
					return manage.WritePipelines(cmd.OutOrStdout(), items)
				}
				out.Pipelines = ps
			}
			if f == cli.Table {
				return nil
			}
			return cli.Encode(cmd.OutOrStdout(), f, out)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the file to apply; - reads stdin")
	cmd.Flags().BoolVar(&force, "force-conflicts", false, "take over fields another tool set to other values instead of refusing")
	wf.register(cmd, true)
	cmd.Flags().Lookup("dry-run").Usage = "print what would change with a diff of each pipeline; the API server validates it and nothing is stored"
	return cmd
}

func readApplyFile(path string, stdin io.Reader) ([]manage.Document, error) {
	if path == "-" {
		return manage.ReadDocuments(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &cli.UsageError{Err: fmt.Errorf("read %s: %w", path, err)}
	}
	defer f.Close()
	docs, err := manage.ReadDocuments(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return docs, nil
}

// applyError makes a refusal caused by the file a usage error (exit 2).
func applyError(err error) error {
	var re *manage.RefusedError
	if errors.As(err, &re) && re.InputOnly() {
		return &cli.UsageError{Err: err}
	}
	return err
}

// printApplied writes one line per document, followed on a dry run by the
// diff of each pipeline that would change.
func printApplied(w io.Writer, res []manage.ApplyResult, dryRun bool) {
	for _, r := range res {
		suffix := ""
		if dryRun && r.Action != manage.ActionUnchanged {
			suffix = " (dry run)"
		}
		fmt.Fprintf(w, "pipeline/%s %s%s\n", r.Name, r.Action, suffix)
		if dryRun && r.Diff != "" {
			fmt.Fprint(w, r.Diff)
		}
	}
}

// waitApplied waits, as `pipeline create --wait` does, for every pipeline
// of the file.
func waitApplied(cmd *cobra.Command, c applyClient, res []manage.ApplyResult, cond manage.WaitCondition, timeout time.Duration) ([]*v1alpha1.Pipeline, error) {
	fmt.Fprintf(cmd.ErrOrStderr(), "waiting for %s of %d pipeline(s) (up to %s)\n", cond, len(res), timeout)
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	out := make([]*v1alpha1.Pipeline, 0, len(res))
	for _, r := range res {
		p, err := c.WaitPipeline(ctx, r.Name, cond, 500*time.Millisecond)
		if err != nil {
			return nil, err
		}
		out = append(out, withKind(p))
	}
	return out, nil
}
