package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
	"github.com/tpctl/tpctl/preflight/ports"
)

// clusterClient is what the pipeline and instance commands need.
type clusterClient interface {
	manage.API
	WaitPipeline(ctx context.Context, name string, cond manage.WaitCondition, interval time.Duration) (*v1alpha1.Pipeline, error)
}

// clusterDeps are the seams of the pipeline, instance and tui commands.
type clusterDeps struct {
	// connect resolves the kubeconfig and returns a client for namespace.
	connect func(kubeconfig, namespace string) (clusterClient, error)
	// isTerminal reports whether r is an interactive terminal.
	isTerminal func(r any) bool
	now        func() time.Time
	// hostListeners returns the ports programs on this host listen on, or
	// nil when the host is not a node tpctl installed; nil skips the check.
	hostListeners func() ([]pipeline.HostListener, error)
	// lookupEnv serves --secret NAME (the value from the environment); nil
	// is an empty environment.
	lookupEnv func(string) (string, bool)
	// metrics reads the pipeline's pods for `pipeline get`; nil skips it.
	metrics func(kubeconfig, namespace string) (metricsCollector, error)
}

func defaultClusterDeps() clusterDeps {
	return clusterDeps{connect: connectCluster, isTerminal: isTerminal, now: time.Now, hostListeners: nodeListeners, lookupEnv: os.LookupEnv, metrics: connectMetrics}
}

// nodeListeners reads the listening sockets of this host when it is the
// K3s node tpctl installed (its kubeconfig exists): TCP listeners and bound
// UDP sockets on any address but loopback, each with its program's name.
func nodeListeners() ([]pipeline.HostListener, error) {
	if _, err := os.Stat(manage.K3sKubeconfig); err != nil {
		return nil, nil
	}
	t, err := ports.ReadSocketTable("/proc")
	if err != nil {
		return nil, err
	}
	var out []pipeline.HostListener
	for _, proto := range []ports.Protocol{ports.TCP, ports.UDP} {
		for _, sock := range t.Conflicts(ports.Row{Port: pipeline.MinPort, EndPort: pipeline.MaxPort, Protocol: proto, Binding: ports.BindHost}) {
			if sock.Addr.Unmap().IsLoopback() {
				continue
			}
			p, err := pipeline.ParseProtocol(string(proto))
			if err != nil {
				return nil, err
			}
			out = append(out, pipeline.HostListener{Port: pipeline.Port{Protocol: p, Number: int32(sock.Port)}, Program: sock.Process})
		}
	}
	return out, nil
}

// recordHostListeners puts this node's listeners on p (see
// v1alpha1.AnnotationHostListeners), so the operator gives none of them to
// p as a frontend.
func recordHostListeners(w io.Writer, d clusterDeps, p *v1alpha1.Pipeline) {
	if d.hostListeners == nil {
		return
	}
	ls, err := d.hostListeners()
	if err != nil {
		fmt.Fprintf(w, "warning: could not read this node's listening ports (%v); the operator cannot skip them\n", err)
		return
	}
	if len(ls) == 0 {
		return
	}
	value := pipeline.FormatHostListeners(ls)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[v1alpha1.AnnotationHostListeners] = value
}

// explainHostListeners tells which of p's ports are in use on the node (as
// recordHostListeners recorded them), and how many were recorded.
func explainHostListeners(w io.Writer, p *v1alpha1.Pipeline) {
	recorded, err := pipeline.ParseHostListeners(p.Annotations[v1alpha1.AnnotationHostListeners])
	if err != nil || len(recorded) == 0 {
		return
	}
	byPort := map[pipeline.Port]string{}
	for _, l := range recorded {
		byPort[l.Port] = l.Program
	}
	if res, err := manage.EffectivePorts(&p.Spec); err == nil {
		for _, e := range res.Ports {
			if prog, ok := byPort[e.Port]; ok {
				fmt.Fprintf(w, "port %s is in use on this node by %s: the operator skips it and gives this pipeline another frontend\n", e.Port, prog)
			}
		}
	}
	fmt.Fprintf(w, "recorded %d listening port(s) of this node on the pipeline; no newer pipeline gets them as a frontend\n", len(recorded))
}

func connectCluster(kubeconfig, namespace string) (clusterClient, error) {
	kc, err := manage.NewKubeconfigLocator().Resolve(kubeconfig)
	if err != nil {
		return nil, err
	}
	conn, err := manage.Connect(kc, namespace)
	if err != nil {
		return nil, err
	}
	return manage.New(conn.REST, conn.Namespace)
}

// askConfirm asks a yes/no question; only "y" or "yes" confirm.
func askConfirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// isTerminal reports whether r is a file on a terminal (not /dev/null).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// clusterFlags are the connection flags shared by the cluster commands.
type clusterFlags struct {
	kubeconfig, namespace string
}

func (f *clusterFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then "+manage.K3sKubeconfig+", then ~/.kube/config)")
	pf.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the pipelines and core instances (default: the kubeconfig context's, else default)")
}

func (f *clusterFlags) client(d clusterDeps) (clusterClient, error) {
	return d.connect(f.kubeconfig, f.namespace)
}

// userError marks errors about the input (nothing was changed) as usage
// errors, exit code 2.
func userError(err error) error {
	var inv *manage.InvalidError
	var dup *manage.DuplicateBackendError
	var unk *manage.UnknownInstanceError
	var nf *manage.FileNotFoundError
	if errors.As(err, &inv) || errors.As(err, &dup) || errors.As(err, &unk) || errors.As(err, &nf) {
		return &cli.UsageError{Err: err}
	}
	return err
}

func outputFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVarP(v, "output", "o", "table", "output format: table, json or yaml")
}

func parseOutput(s string) (cli.Format, error) {
	return cli.ParseFormat(s, cli.Table, cli.JSON, cli.YAML)
}

// encodeObject writes a Kubernetes object with its apiVersion and kind.
func encodeObject(w io.Writer, f cli.Format, obj any) error {
	if f == cli.Table {
		f = cli.YAML
	}
	return cli.Encode(w, f, obj)
}

func withKind(p *v1alpha1.Pipeline) *v1alpha1.Pipeline {
	p = p.DeepCopy()
	p.APIVersion, p.Kind = v1alpha1.GroupVersion.String(), v1alpha1.KindPipeline
	p.ManagedFields = nil
	return p
}

func newPipelineCmd() *cobra.Command { return newPipelineCmdWith(defaultClusterDeps()) }

func newPipelineCmdWith(d clusterDeps) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:     "pipeline",
		Aliases: []string{"pipelines", "pl"},
		Short:   "Create, inspect, change and delete pipelines",
		Long: `Manage pipelines: each is a Fluent Bit workload of a core instance, with a
Service that exposes its ports. The operator assigns each port's frontend (the
port clients use); a frontend that an older pipeline of the instance holds is
moved up (2200 → 2201), and the backend (the port in the pod) stays.

The kubeconfig is --kubeconfig, else $KUBECONFIG, else ` + manage.K3sKubeconfig + `
(the K3s tpctl installed), else ~/.kube/config.`,
		Args: cobra.NoArgs,
	}
	cf.register(cmd)
	cmd.AddCommand(
		pipelineCreateCmd(d, &cf), pipelineUpdateCmd(d, &cf), pipelineListCmd(d, &cf),
		pipelineGetCmd(d, &cf), pipelineDeleteCmd(d, &cf), pipelineEndpointsCmd(d, &cf),
		pipelineLogsCmd(connectLogs, &cf), pipelineTopCmd(connectTop, &cf, d.isTerminal),
		pipelineExportCmd(d, &cf), pipelineSecretCmd(d, &cf),
	)
	return cmd
}

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    string
	timeout time.Duration
}

func (w *waitFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&w.wait, "wait", "", "wait until the operator has assigned the ports (--wait=ports) or the pipeline is Ready (--wait or --wait=ready), then print it")
	fl.Lookup("wait").NoOptDefVal = string(manage.WaitReady)
	fl.DurationVar(&w.timeout, "timeout", 3*time.Minute, "how long --wait waits")
}

func (w *waitFlags) condition() (manage.WaitCondition, bool, error) {
	if w.wait == "" {
		return "", false, nil
	}
	c, err := manage.ParseWaitCondition(w.wait)
	if err != nil {
		return "", false, cli.Usagef("--wait: %w", err)
	}
	return c, true, nil
}

// writeFlags are the flags every writing sub-command shares.
type writeFlags struct {
	output string
	dryRun bool
	waitFlags
}

func (wf *writeFlags) register(cmd *cobra.Command, wait bool) {
	outputFlag(cmd, &wf.output)
	cmd.Flags().BoolVar(&wf.dryRun, "dry-run", false, "print what would be sent; the API server validates it and nothing is stored")
	if wait {
		wf.waitFlags.register(cmd)
	}
}

// scalingHelp explains storage and autoscaling for create and update.
const scalingHelp = `--storage-size gives each pod of a StatefulSet pipeline a PersistentVolumeClaim
(--storage-class, default the cluster's default class) mounted at ` + v1alpha1.StorageDir + `,
which the operator passes to Fluent Bit as its storage.path: inputs with
storage.type filesystem buffer there and the chunks survive a pod restart. The
claims stay when the pipeline is deleted or scaled down unless
--storage-when-deleted/--storage-when-scaled delete. Size and class cannot change
once the StatefulSet exists.

--max-replicas (with --min-replicas, --target-cpu) has a HorizontalPodAutoscaler
scale a Deployment pipeline on CPU use; it needs a cpu request (--cpu) and
replaces --replicas. --no-autoscaling removes it.`

func pipelineCreateCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var pf manage.PipelineFlags
	var sf manage.SecretFlags
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "create --name N [--instance I] --config-file F [--port tcp/5170 …]",
		Short: "Create a pipeline",
		Long: `Create a pipeline. Its ports are the --port values plus those the configuration's
listening plugins use (their port setting or documented default), unless
--no-auto-ports. A backend port (protocol and number) may appear once per
pipeline; TCP and UDP may share a number.

Run on the node tpctl installed, it records the ports programs there listen on
(annotation ` + v1alpha1.AnnotationHostListeners + `), so the operator never gives one
of them to this or a newer pipeline as a frontend, and says which of the
pipeline's ports that moves.

--secret and --secrets-file store secrets in the pipeline's own Secret; the
configuration names them as ${NAME} (see ` + "`tpctl pipeline secret --help`" + `).

` + filesHelp + `

` + scalingHelp,
		Example: `  tpctl pipeline create --name syslog --config-file syslog.conf --port udp/5140
  SPLUNK_TOKEN=… tpctl pipeline create --name splunk --config-file splunk.yaml --secret SPLUNK_TOKEN
  tpctl pipeline create --name fwd --config-file fwd.yaml --service-type NodePort --wait
  tpctl pipeline create --name parse --config-file parse.yaml --file parsers.conf=./my-parsers.conf
  tpctl pipeline create --name tcp-in --port tcp/5170 --workload daemonset --dry-run -o yaml
  tpctl pipeline create --name buffered --config-file fwd.yaml --workload statefulset --storage-size 5Gi
  tpctl pipeline create --name web --config-file http.yaml --cpu 200m --min-replicas 2 --max-replicas 6`,
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
			if !cmd.Flags().Changed("name") {
				return cli.Usagef("--name is required")
			}
			if err := checkStdin(pf.ConfigFile, &sf, cmd); err != nil {
				return err
			}
			ch, err := pf.Change(cmd.Flags(), cmd.InOrStdin())
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			secrets, err := sf.Values(cmd.Flags(), cmd.InOrStdin(), d.lookupEnv)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			p := manage.NewPipeline(c.Namespace(), pf.Name, pf.Instance, ch)
			recordHostListeners(cmd.ErrOrStderr(), d, p)
			got, keys, err := manage.CreatePipelineWithSecrets(cmd.Context(), c, p, ch.PortTexts, secrets, manage.WriteOptions{DryRun: wf.dryRun})
			if err != nil {
				return userError(err)
			}
			explainHostListeners(cmd.ErrOrStderr(), got)
			if secrets != nil {
				secretsLine(cmd.ErrOrStderr(), got.Name, keys, wf.dryRun)
			}
			return finishWrite(cmd, d, c, f, &wf, got, "created", cond, wait)
		},
	}
	pf.Register(cmd.Flags(), true)
	sf.Register(cmd.Flags())
	wf.register(cmd, true)
	return cmd
}

func pipelineUpdateCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var pf manage.PipelineFlags
	var sf manage.SecretFlags
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "update N [flags]",
		Short: "Change a pipeline; only the given flags change",
		Long: `Change a pipeline. Only the flags given change anything: updating the image
keeps the Service type, ports and configuration. --service-type applies to all
of the pipeline's ports; --port and --arg replace their lists. The instance of
a pipeline cannot change. --secret and --secrets-file add or change secrets and
keep the others (remove one with ` + "`tpctl pipeline secret unset`" + `).
--file adds or replaces a file and keeps the others; --remove-file NAME drops one.

` + filesHelp + `

` + scalingHelp,
		Example: `  tpctl pipeline update syslog --service-type NodePort
  tpctl pipeline update splunk --secrets-file splunk.env
  tpctl pipeline update syslog --config-file syslog.conf --wait=ports
  tpctl pipeline update parse --file parsers.conf=./my-parsers.conf --remove-file old.lua
  tpctl pipeline update buffered --storage-when-deleted delete
  tpctl pipeline update web --max-replicas 10
  tpctl pipeline update web --no-autoscaling --replicas 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(wf.output)
			if err != nil {
				return err
			}
			cond, wait, err := wf.condition()
			if err != nil {
				return err
			}
			if err := checkStdin(pf.ConfigFile, &sf, cmd); err != nil {
				return err
			}
			ch, err := pf.Change(cmd.Flags(), cmd.InOrStdin())
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			secrets, err := sf.Values(cmd.Flags(), cmd.InOrStdin(), d.lookupEnv)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			if ch.IsEmpty() && secrets == nil {
				return cli.Usagef("nothing to change: give at least one of --config-file, --port, --service-type, --workload, --replicas, --cpu, --memory, --node-selector, --toleration, --annotation, --image, --arg, --no-auto-ports, --file, --remove-file, --storage-size, --storage-class, --storage-when-deleted, --storage-when-scaled, --min-replicas, --max-replicas, --target-cpu, --no-autoscaling, --secret, --secrets-file")
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			o := manage.WriteOptions{DryRun: wf.dryRun}
			sch := manage.SecretChange{Set: secrets}
			if secrets != nil {
				// Check the secrets before anything is written.
				if err := sch.Validate(args[0]); err != nil {
					return userError(err)
				}
			}
			var got *v1alpha1.Pipeline
			if !ch.IsEmpty() {
				if got, err = c.UpdatePipeline(cmd.Context(), args[0], ch, o); err != nil {
					return userError(err)
				}
			}
			if secrets != nil {
				keys, err := c.ChangePipelineSecrets(cmd.Context(), args[0], sch, o)
				if err != nil {
					return secretError(err)
				}
				secretsLine(cmd.ErrOrStderr(), args[0], keys, wf.dryRun)
				if got == nil || !wf.dryRun {
					// The stored pipeline, with its new secrets revision.
					if got, err = c.GetPipeline(cmd.Context(), args[0]); err != nil {
						return err
					}
				}
			}
			return finishWrite(cmd, d, c, f, &wf, got, "updated", cond, wait)
		},
	}
	pf.Register(cmd.Flags(), false)
	sf.Register(cmd.Flags())
	wf.register(cmd, true)
	return cmd
}

// finishWrite prints the result of a create or update: the object sent on
// a dry run, else the object (json/yaml) or one line (table), after
// waiting when asked to.
func finishWrite(cmd *cobra.Command, d clusterDeps, c clusterClient, f cli.Format, wf *writeFlags,
	p *v1alpha1.Pipeline, verb string, cond manage.WaitCondition, wait bool) error {
	out := cmd.OutOrStdout()
	if wf.dryRun {
		if f == cli.Table {
			fmt.Fprintf(cmd.ErrOrStderr(), "dry run: the API server accepted this %s; nothing was stored\n", strings.TrimSuffix(verb, "d"))
			if res, err := manage.EffectivePorts(&p.Spec); err == nil {
				for _, e := range res.Ports {
					fmt.Fprintf(cmd.ErrOrStderr(), "  port %s from %s\n", e.Port, e.Source)
				}
			}
		}
		return encodeObject(out, f, withKind(p))
	}
	if !wait {
		if f != cli.Table {
			return encodeObject(out, f, withKind(p))
		}
		_, err := fmt.Fprintf(out, "pipeline %q %s in namespace %q; the operator assigns its ports (see `tpctl pipeline endpoints %s`)\n",
			p.Name, verb, p.Namespace, p.Name)
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "pipeline %q %s; waiting for %s (up to %s)\n", p.Name, verb, cond, wf.timeout)
	ctx, cancel := context.WithTimeout(cmd.Context(), wf.timeout)
	defer cancel()
	got, err := c.WaitPipeline(ctx, p.Name, cond, 500*time.Millisecond)
	if err != nil {
		return err
	}
	return showPipeline(cmd.Context(), out, d, c, f, got)
}

// showPipeline prints a pipeline: described with endpoints and events
// (table) or as the object.
func showPipeline(ctx context.Context, out io.Writer, d clusterDeps, c clusterClient, f cli.Format, p *v1alpha1.Pipeline) error {
	if f != cli.Table {
		return encodeObject(out, f, withKind(p))
	}
	eps, err := c.Endpoints(ctx, p.Name)
	if err != nil {
		return err
	}
	events, err := c.Events(ctx, v1alpha1.KindPipeline, p.Name)
	if err != nil {
		return err
	}
	if events == nil {
		events = []manage.Event{}
	}
	if err := manage.WritePipeline(out, p, eps, events, d.now()); err != nil {
		return err
	}
	if err := writeFilesTable(out, p); err != nil {
		return err
	}
	return writeSecretsTable(ctx, out, c, p)
}

func pipelineListCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the pipelines of the namespace",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseOutput(output)
			if err != nil {
				return err
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			items, err := c.ListPipelines(cmd.Context())
			if err != nil {
				return err
			}
			if f == cli.Table {
				return manage.WritePipelines(cmd.OutOrStdout(), items)
			}
			list := &v1alpha1.PipelineList{Items: make([]v1alpha1.Pipeline, len(items))}
			list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), v1alpha1.KindPipeline+"List"
			for i := range items {
				list.Items[i] = *withKind(&items[i])
			}
			return cli.Encode(cmd.OutOrStdout(), f, list)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func pipelineGetCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get N",
		Short: "Show a pipeline: settings, port triplets, endpoints, conditions and recent events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(output)
			if err != nil {
				return err
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			p, err := c.GetPipeline(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := showPipeline(cmd.Context(), cmd.OutOrStdout(), d, c, f, p); err != nil || f != cli.Table || d.metrics == nil {
				return err
			}
			return writeLastSample(cmd.Context(), cmd.OutOrStdout(), d.metrics, cf, p.Name)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func pipelineDeleteCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var wf writeFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete N [--yes]",
		Short: "Delete a pipeline with its workload, Service and ConfigMap",
		Long: `Delete a pipeline; Kubernetes then removes its workload, Service, ConfigMap and
the Secret of its secrets.
On a terminal tpctl asks first; elsewhere it needs --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(wf.output)
			if err != nil {
				return err
			}
			name := args[0]
			if !yes && !wf.dryRun {
				if !d.isTerminal(cmd.InOrStdin()) {
					return cli.Usagef("refusing to delete pipeline %q without confirmation: no terminal to ask on; pass --yes", name)
				}
				if !askConfirm(cmd.InOrStdin(), cmd.ErrOrStderr(), fmt.Sprintf("Delete pipeline %q with its workload, Service and ConfigMap?", name)) {
					return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was deleted")}
				}
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			p, err := c.DeletePipeline(cmd.Context(), name, manage.WriteOptions{DryRun: wf.dryRun})
			if err != nil {
				return err
			}
			if f != cli.Table {
				return encodeObject(cmd.OutOrStdout(), f, withKind(p))
			}
			verb := "deleted"
			if wf.dryRun {
				verb = "would be deleted (dry run)"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "pipeline %q %s from namespace %q\n", name, verb, p.Namespace)
			return err
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	wf.register(cmd, false)
	return cmd
}

func pipelineEndpointsCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "endpoints N",
		Short: "Show each port's protocol, frontend, backend, Service type and client address",
		Long: `Show each port of a pipeline: protocol, frontend (the port clients use),
backend (the port in the pod), Service type and the address a client uses:
ClusterIP → cluster IP:frontend (inside the cluster), NodePort → node
address:node port, LoadBalancer → load balancer address:frontend (the node
port while the load balancer has no address). Reassigned frontends are marked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(output)
			if err != nil {
				return err
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			eps, err := c.Endpoints(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f == cli.Table {
				return manage.WriteEndpoints(cmd.OutOrStdout(), eps)
			}
			if eps == nil {
				eps = []manage.Endpoint{}
			}
			return cli.Encode(cmd.OutOrStdout(), f, eps)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}
