// Package command is the operator's command line: its flags, logging and
// memory settings around operator.Run. Both `tpctl operator` and the
// dedicated cmd/tpctl-operator binary (what the release's operator image
// runs) are this one command, so they take the same flags.
package command

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/operator"
)

// Long is the command's description.
const Long = `Run the tpctl operator: the controller that assigns the frontend ports of
each core instance's pipelines and turns every Pipeline into a ConfigMap, a
workload (Deployment, DaemonSet or StatefulSet) and a Service. It normally
runs in the cluster from the tp-operator chart.

The node's own ports (the host-bound rows of the K3s port table) are never
given to a pipeline as a frontend; --node-condition selects conditional rows
(for example cni=cilium), --packaged-component names the enabled K3s
components that hold node ports (traefik: 80 and 443) and --reserve adds
ports. The frontends of every other LoadBalancer Service in the cluster are
taken too: with K3s's servicelb each is a port on every node.`

// New returns the operator command named use ("operator" under tpctl,
// "tpctl-operator" as a program of its own).
func New(use string) *cobra.Command {
	var (
		o          operator.Options
		kubeconfig string
		portRange  string
		reserve    []string
		conditions []string
		components []string
		verbose    bool
		qps        float32
		burst      int
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the operator that turns pipelines into workloads and Services",
		Long:  Long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug - 4
			}
			logger := logr.FromSlogHandler(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctrl.SetLogger(logger)
			// The collector's target and a soft memory limit below the
			// container's, unless GOGC and GOMEMLIMIT say otherwise (the Go
			// runtime has read them).
			if _, set := os.LookupEnv("GOGC"); !set {
				debug.SetGCPercent(operator.GCPercent)
			}
			if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
				if limit, ok := operator.CgroupMemoryLimit(os.DirFS("/")); ok {
					soft := int64(float64(limit) * operator.MemoryLimitShare)
					debug.SetMemoryLimit(soft)
					logger.Info("Go soft memory limit set from the container's memory limit",
						"containerLimitBytes", limit, "softLimitBytes", soft)
				}
			}
			var err error
			if o.NodePortRange, err = operator.ParsePortRange(portRange); err != nil {
				return &cli.UsageError{Err: err}
			}
			if o.Reserved, err = operator.ReservedPorts(conditions, components, reserve); err != nil {
				return &cli.UsageError{Err: err}
			}
			if o.LeaderElectionNamespace == "" {
				o.LeaderElectionNamespace = operator.OwnNamespace()
			}
			cfg, err := operator.RESTConfig(kubeconfig)
			if err != nil {
				return err
			}
			cfg.QPS, cfg.Burst = qps, burst
			return operator.Run(cmd.Context(), cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster)")
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", operator.DefaultMetricsAddr, `address of the metrics endpoint ("0" disables it)`)
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", operator.DefaultProbeAddr, `address of /healthz and /readyz ("0" disables them)`)
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "hold a lease so that only one replica reconciles")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the lease (default: the operator's own)")
	f.StringSliceVar(&o.Namespaces, "namespace", nil, "watch only these namespaces (repeatable; default all)")
	f.StringVar(&o.DefaultImage, "default-image", operator.DefaultPipelineImage, "image of pipelines whose pipeline and instance name none")
	f.StringVar(&portRange, "node-port-range", operator.DefaultNodePortRange.String(), "the cluster's NodePort range")
	f.StringSliceVar(&reserve, "reserve", nil, "extra port never given out as a frontend, e.g. tcp/9100 (repeatable)")
	f.StringSliceVar(&conditions, "node-condition", nil, "condition of the node's port table, e.g. cni=cilium (repeatable)")
	f.StringSliceVar(&components, "packaged-component", []string{operator.ComponentTraefik},
		"enabled K3s packaged component whose node ports are never given out (traefik; repeatable; --packaged-component= for none)")
	f.IntVar(&o.Workers, "workers", 2, "concurrent reconciles per controller")
	// The API server shares its capacity among clients (API Priority and
	// Fairness); the client-side limit, per kind of object, only stops a
	// runaway loop. Thousands of pipelines created at once take three
	// status writes each on one kind (ports, owner, Ready).
	f.Float32Var(&qps, "kube-api-qps", 300, "requests per second to the API server, per kind of object")
	f.IntVar(&burst, "kube-api-burst", 600, "burst of requests to the API server, per kind of object")
	f.StringVar(&o.PprofAddr, "pprof-bind-address", "", "serve profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060 (default: off)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	return cmd
}
