package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
)

// topClient is what `pipeline top` needs: the pipelines (to list those
// without pods and to say clearly that a named one does not exist) and the
// metrics of their pods.
type topClient interface {
	GetPipeline(ctx context.Context, name string) (*v1alpha1.Pipeline, error)
	ListPipelines(ctx context.Context) ([]v1alpha1.Pipeline, error)
	Collect(ctx context.Context, names ...string) ([]manage.PipelineMetrics, error)
}

// topConnect resolves the kubeconfig and returns a topClient for namespace.
type topConnect func(kubeconfig, namespace string) (topClient, error)

type clusterTop struct {
	*manage.Client
	*manage.MetricsCollector
}

// connectTop connects as the other cluster commands do, with a clientset
// for the pods and their proxy beside the pipeline client.
func connectTop(kubeconfig, namespace string) (topClient, error) {
	pc, err := connectPods(kubeconfig, namespace)
	if err != nil {
		return nil, err
	}
	c, err := manage.New(pc.REST, pc.Namespace)
	if err != nil {
		return nil, err
	}
	return clusterTop{Client: c, MetricsCollector: manage.NewMetricsCollector(pc.Pods, pc.Namespace, nil, manage.MetricsOptions{})}, nil
}

// topOptions are the flags of `pipeline top`.
type topOptions struct {
	interval time.Duration
	once     bool
	output   cli.Format
	// live clears the screen before each refresh (a terminal).
	live bool
}

// pipelineTopCmd is `tpctl pipeline top`; connect is connectTop but in tests.
func pipelineTopCmd(connect topConnect, cf *clusterFlags, isTerm func(any) bool) *cobra.Command {
	var (
		o      topOptions
		output string
	)
	cmd := &cobra.Command{
		Use:   "top [NAME] [--interval 5s] [--once] [-o table|json]",
		Short: "Show records/s and bytes/s in and out, errors, retries and drops of pipelines, live",
		Long: `Show what pipelines are doing, read from Fluent Bit's built-in HTTP server in
each pod (/api/v1/metrics, on an internal port the operator picks) through the
API server's pod proxy: records/s and bytes/s in (inputs) and out (outputs),
and the errors, retries and dropped records counted since the pods started.
A pipeline's pods are summed. Rates need two readings: the first refresh shows
n/a. With NAME, a row per plugin (input, filter, output) follows.

The table refreshes every --interval until Ctrl-C (exit status 0): in place on
a terminal, appended otherwise. --once takes two readings --interval apart and
prints one sample. -o json prints one JSON object per refresh.

Pods that cannot be read (starting, gone, made by an older operator) are listed
under the table and do not stop the others.`,
		Example: `  # every pipeline of the namespace, refreshed every 5 s
  tpctl pipeline top

  # one pipeline and its plugins, every 2 s
  tpctl pipeline top syslog --interval 2s

  # one sample for a script
  tpctl pipeline top syslog --once -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if o.interval < 100*time.Millisecond {
				return cli.Usagef("--interval must be at least 100ms, not %s", o.interval)
			}
			o.output = f
			o.live = f == cli.Table && !o.once && isTerm(cmd.OutOrStdout())
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			err = runPipelineTop(cmd.Context(), connect, cf, name, o, cmd.OutOrStdout())
			if cmd.Context().Err() != nil {
				return nil // Ctrl-C or SIGTERM: the normal end
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.interval, "interval", 5*time.Second, "time between refreshes (and between the two readings of --once)")
	fl.BoolVar(&o.once, "once", false, "print one sample (two readings --interval apart) and exit")
	fl.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func runPipelineTop(ctx context.Context, connect topConnect, cf *clusterFlags, name string, o topOptions, out io.Writer) error {
	c, err := connect(cf.kubeconfig, cf.namespace)
	if err != nil {
		return err
	}
	if name != "" {
		if _, err := c.GetPipeline(ctx, name); err != nil {
			return err
		}
	}
	sample := func() (manage.MetricsSample, error) {
		var names, known []string
		if name != "" {
			names, known = []string{name}, []string{name}
		} else {
			list, err := c.ListPipelines(ctx)
			if err != nil {
				return manage.MetricsSample{}, err
			}
			for _, p := range list {
				known = append(known, p.Name)
			}
		}
		got, err := c.Collect(ctx, names...)
		if err != nil {
			return manage.MetricsSample{}, err
		}
		return manage.MetricsSample{Pipelines: got}.WithPipelines(known), nil
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		s, err := sample()
		if err != nil {
			return err
		}
		if !o.once || n == 1 {
			if err := writeTop(out, s, name, o, n); err != nil {
				return fmt.Errorf("write the sample: %w", err)
			}
			if o.once {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

func writeTop(w io.Writer, s manage.MetricsSample, name string, o topOptions, n int) error {
	if o.output == cli.JSON {
		return json.NewEncoder(w).Encode(s)
	}
	if o.live {
		if _, err := io.WriteString(w, clearScreen); err != nil {
			return err
		}
	} else if n > 0 && !o.once {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	if !o.once {
		if _, err := fmt.Fprintf(w, "%s, every %s (Ctrl-C ends)\n", time.Now().Format(time.TimeOnly), o.interval); err != nil {
			return err
		}
	}
	if err := manage.WriteMetricsTable(w, s); err != nil {
		return err
	}
	if name != "" && len(s.Pipelines) == 1 && len(s.Pipelines[0].Plugins) > 0 {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
		return manage.WritePluginTable(w, s.Pipelines[0])
	}
	return nil
}

// metricsCollector reads the metrics of pipelines' pods (pipeline get).
type metricsCollector interface {
	Collect(ctx context.Context, names ...string) ([]manage.PipelineMetrics, error)
}

// connectMetrics returns a collector for namespace that gives up on a pod
// after 2 s, so that `pipeline get` stays quick.
func connectMetrics(kubeconfig, namespace string) (metricsCollector, error) {
	pc, err := connectPods(kubeconfig, namespace)
	if err != nil {
		return nil, err
	}
	return manage.NewMetricsCollector(pc.Pods, pc.Namespace, nil, manage.MetricsOptions{Timeout: 2 * time.Second}), nil
}

// writeLastSample writes one reading of the pipeline's pods under `pipeline
// get`; a failure to read is printed, not returned: the pipeline was shown.
func writeLastSample(ctx context.Context, out io.Writer, connect func(string, string) (metricsCollector, error),
	cf *clusterFlags, name string) error {
	c, err := connect(cf.kubeconfig, cf.namespace)
	if err != nil {
		return manage.WriteMetricsSummary(out, nil, err)
	}
	got, err := c.Collect(ctx, name)
	if err != nil || len(got) == 0 {
		return manage.WriteMetricsSummary(out, nil, err)
	}
	return manage.WriteMetricsSummary(out, &got[0], nil)
}
