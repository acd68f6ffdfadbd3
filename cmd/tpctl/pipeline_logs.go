package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
)

// logsClient is what `pipeline logs` needs: the pipeline (to say clearly
// that it does not exist) and its pods' logs.
type logsClient interface {
	GetPipeline(ctx context.Context, name string) (*v1alpha1.Pipeline, error)
	PipelineLogs(ctx context.Context, pipeline string, o manage.LogOptions, fn func(manage.LogLine)) error
}

// logsConnect resolves the kubeconfig and returns a logsClient for namespace.
type logsConnect func(kubeconfig, namespace string) (logsClient, error)

type clusterLogs struct {
	*manage.Client
	*manage.LogReader
}

// connectLogs connects as the other cluster commands do, with a clientset
// for pods and their logs beside the pipeline client.
func connectLogs(kubeconfig, namespace string) (logsClient, error) {
	pc, err := connectPods(kubeconfig, namespace)
	if err != nil {
		return nil, err
	}
	c, err := manage.New(pc.REST, pc.Namespace)
	if err != nil {
		return nil, err
	}
	return clusterLogs{Client: c, LogReader: manage.NewLogReader(pc.Pods, pc.Namespace, nil)}, nil
}

// pipelineLogsCmd is `tpctl pipeline logs`; connect is connectLogs but in tests.
func pipelineLogsCmd(connect logsConnect, cf *clusterFlags) *cobra.Command {
	var (
		o          manage.LogOptions
		tail       int64
		timestamps bool
	)
	cmd := &cobra.Command{
		Use:   "logs N [-f] [--previous] [--since D] [--tail N] [--pod P]",
		Short: "Print the logs of a pipeline's pods, merged; -f follows them",
		Long: `Print the logs of every pod of a pipeline (its Fluent Bit containers), one pod
after the other. When the pipeline has several pods each line starts with its
pod's name in brackets.

With --follow (-f) the logs of all pods are read at once and printed as they
arrive, and the command keeps going across restarts and rollouts: a restarted
container is read again from its first line, a new pod is picked up, and a pod
that goes away ends only its own stream. Ctrl-C ends it (exit status 0).
Messages about the read itself (a pod appeared or went away) go to stderr.

--since and --tail apply to the containers running when the command starts;
containers that start later are printed from their first line. --previous
prints each pod's previous, terminated container: what a crash-looping
pipeline said before it stopped.`,
		Example: `  # everything the pipeline's pods have logged
  tpctl pipeline logs syslog

  # the last 20 lines of each pod, then follow
  tpctl pipeline logs syslog -f --tail 20

  # the last hour of one pod, with the kubelet's timestamps
  tpctl pipeline logs syslog --pod syslog-7d9c5b6f4-x2x8q --since 1h --timestamps

  # why did it crash? the output of the container before the restart
  tpctl pipeline logs syslog --previous`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("tail") && tail != -1 {
				n := tail
				o.Tail = &n
			}
			if err := o.Validate(); err != nil {
				return &cli.UsageError{Err: err}
			}
			err := runPipelineLogs(cmd.Context(), connect, cf, args[0], o, timestamps, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if cmd.Context().Err() != nil {
				// Ctrl-C or SIGTERM: the normal end of a follow.
				return nil
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines, across restarts and rollouts, until Ctrl-C")
	fl.BoolVarP(&o.Previous, "previous", "p", false, "print the previous, terminated container of each pod (not with --follow)")
	fl.DurationVar(&o.Since, "since", 0, "only lines newer than this, e.g. 10m or 2h (default: all)")
	fl.Int64Var(&tail, "tail", -1, "only the last N lines of each container (-1: all)")
	fl.StringVar(&o.Pod, "pod", "", "only this pod of the pipeline")
	fl.BoolVar(&timestamps, "timestamps", false, "start each line with the kubelet's RFC 3339 timestamp")
	return cmd
}

func runPipelineLogs(ctx context.Context, connect logsConnect, cf *clusterFlags, name string, o manage.LogOptions,
	timestamps bool, out, errOut io.Writer) error {
	c, err := connect(cf.kubeconfig, cf.namespace)
	if err != nil {
		return err
	}
	if _, err := c.GetPipeline(ctx, name); err != nil {
		return err
	}
	// A failed write (stdout closed) ends the read.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var werr error
	err = c.PipelineLogs(ctx, name, o, func(l manage.LogLine) {
		if l.Notice {
			fmt.Fprintln(errOut, l.String())
			return
		}
		if werr != nil {
			return
		}
		if timestamps && !l.Time.IsZero() {
			l.Text = l.Time.Format(time.RFC3339Nano) + " " + l.Text
		}
		if _, werr = fmt.Fprintln(out, l.String()); werr != nil {
			cancel()
		}
	})
	if werr != nil {
		return fmt.Errorf("write the logs: %w", werr)
	}
	var unknown *manage.UnknownPodError
	if errors.As(err, &unknown) {
		return &cli.UsageError{Err: err}
	}
	return err
}
