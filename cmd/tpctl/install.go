package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
	"github.com/tpctl/tpctl/tui"
)

func newInstallCmd() *cobra.Command {
	var (
		cf          installer.ConfigFlags
		src         installer.Sources
		ignore      []string
		output      string
		printConfig bool
		dryRun      bool
		yes         bool
		timeout     time.Duration
		skipCharts  bool
		force       bool
		ch          installer.Charts
		kt          kubeTargetFlags
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install K3s as a systemd service on this host, then the operator and the core instance",
		Long: `Install K3s on this host as the systemd service k3s.service, wait for a Ready
node, then install the operator and core-instance Helm charts.

Steps: preflight (with this configuration) → stage the K3s binary and air-gap
images (sha256-checked) and the operator image → write
/etc/rancher/k3s/config.yaml, the unit's 0600 environment file (proxies) and
/etc/systemd/system/k3s.service → daemon-reload, enable and start → (hosts
without CAP_SYS_RESOURCE: containerd template) → wait for the kubeconfig,
/readyz, node Ready and the core add-ons → import the operator image when K3s
was running already → Helm release tp-operator (namespace tpctl-system: CRDs,
RBAC, the operator Deployment) → Helm release core (CoreInstance "core" in
namespace default, with the proxies of this configuration and the health check
on TCP 2020) → wait for the CoreInstance to be Ready. --skip-charts stops at
the node.

With --cni cilium K3s runs without a network plugin until Cilium is installed:
install waits only for the node to register, defers the charts and prints the
next steps (install Cilium, then run tpctl install again, which installs the
charts once the node is Ready).

The operator image comes from the payload, or is built from this tpctl binary
(which must then be static, as ` + "`make build`" + ` and release builds are).

Every step checks first whether it is already done: running install again
changes nothing ("no change"), and a run that was interrupted resumes. A lock
refuses a second run at the same time. Progress goes to the screen (plain lines,
or JSON lines with -o json) and to ` + installer.LogPath + `.

The data dir must be a directory of its own: a system directory (/, /usr,
/var, /opt, /srv, /home, /etc, …) is refused, and so is an existing directory
holding files tpctl did not create, unless --data-dir-force.

The configuration comes from --config FILE (YAML; keys as printed by
--print-config) and the flags below; flags win. It is validated as a whole
before anything is touched.

Exit codes: 0 installed, 1 a step failed, 2 usage or configuration error
(nothing changed), 3 preflight failed (nothing changed), 130 interrupted.`,
		Example: `  tpctl install --yes
  tpctl install --config install.yaml --print-config
  tpctl install --cni cilium --disable traefik --tls-san edge.example.com --dry-run
  tpctl install --k3s-binary ./k3s --k3s-sha256 <sha256> --k3s-images ./k3s-airgap-images-amd64.tar.zst --airgap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if kube, err := kt.kubernetes(cmd.Flags(), kubeInstallFlags...); err != nil || kube {
				if err != nil {
					return err
				}
				return runInstallKubernetes(cmd, kt, ch, f, dryRun, yes, timeout)
			}
			cfg, err := cf.Load(cmd.Flags(), os.ReadFile, installer.Hostname, os.LookupEnv)
			if err != nil {
				return configError(err)
			}
			out := cmd.OutOrStdout()
			if printConfig {
				b, err := cfg.Redacted().YAML()
				if err != nil {
					return err
				}
				if len(cf.ProxyEnv) > 0 {
					b = append([]byte("# The proxy comes from the environment ("+strings.Join(cf.ProxyEnv, ", ")+"): no proxy flag or key was given.\n"), b...)
				}
				_, err = out.Write(b)
				return err
			}
			for _, p := range src.K3sImages {
				if err := installer.CheckImageArchive(p); err != nil {
					return &cli.UsageError{Err: err}
				}
			}
			b, err := bundle.Open()
			if err != nil {
				return err
			}
			if err := ch.Validate(); err != nil {
				return &cli.UsageError{Err: err}
			}
			opts := installOptions(cfg, src, b, preflight.ParseIgnoreSet(ignore...))
			opts.DataDirForce = force
			opts.ProxyEnv = cf.ProxyEnv
			if !skipCharts {
				ch.Version = buildinfo.Get().Version
				opts.Charts = &ch
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			plan, env, err := installer.NewInstallPlan(ctx, opts)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			defer env.Close()
			if dryRun {
				rep := installer.DryRun(ctx, plan)
				if f == cli.JSON {
					return cli.Encode(out, cli.JSON, rep)
				}
				return installer.WriteDryRun(out, rep)
			}
			if !yes && cli.IsTerminal(os.Stdin) && !confirm(cmd.InOrStdin(), out,
				fmt.Sprintf("Install K3s on this host as %s (node %s, data in %s)?", installer.UnitName, cfg.NodeName, cfg.DataDir)) {
				return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")}
			}
			if f == cli.Table && cli.IsTerminal(os.Stdin) && isTerminal(out) {
				return runPlanScreen(ctx, plan, env, cfg, !skipCharts, out)
			}
			return runPlan(ctx, plan, f, out, true)
		},
	}
	fl := cmd.Flags()
	cf.Register(fl)
	fl.StringVar(&src.K3sBinary, "k3s-binary", "", "K3s binary to install instead of the embedded one")
	fl.StringVar(&src.K3sSHA256, "k3s-sha256", "", "sha256 the --k3s-binary must have")
	fl.StringSliceVar(&src.K3sImages, "k3s-images", nil, "K3s air-gap image archive(s) to stage instead of the embedded ones (repeatable)")
	fl.StringSliceVar(&ignore, "ignore-preflight-errors", nil, "preflight checks whose failures become warnings (NAME,... or all)")
	fl.BoolVar(&printConfig, "print-config", false, "print the effective configuration (YAML, proxy passwords hidden) and exit")
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan and the exact files it would write, change nothing")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (without a terminal tpctl never asks)")
	fl.StringVarP(&output, "output", "o", "table", "progress format: table (plain lines) or json (JSON lines)")
	fl.DurationVar(&timeout, "timeout", 20*time.Minute, "give up after this long")
	fl.BoolVar(&force, strings.TrimPrefix(installer.DataDirForceFlag, "--"), false, "use a --data-dir that already holds files tpctl did not create (never a system directory)")
	fl.BoolVar(&skipCharts, "skip-charts", false, "install the node only: no operator image, no operator or core-instance chart")
	fl.StringVar(&ch.InstanceName, "instance-name", installer.DefaultInstanceName, "name of the CoreInstance the core-instance chart creates")
	fl.StringVar(&ch.PipelineImage, "pipeline-image", "", "default image of the instance's pipelines, e.g. a Fluent Bit mirror for air-gapped hosts (default: the operator's Fluent Bit)")
	fl.StringArrayVar(&ch.PipelineArgs, "pipeline-arg", nil, "default container argument of the instance's pipelines, for a --pipeline-image that is not Fluent Bit (repeatable)")
	registerTargetFlags(fl, &kt, true)
	return cmd
}

// installOptions wires the installer to the real host.
func installOptions(cfg installer.Config, src installer.Sources, b *bundle.Bundle, ignore preflight.IgnoreSet) installer.Options {
	return installer.Options{
		Root:      "/",
		Config:    cfg,
		Sources:   src,
		Bundle:    b,
		Preflight: installer.DefaultPreflight("/", ignore, os.LookupEnv),
		Systemd: func(ctx context.Context) (systemd.Manager, error) {
			return systemd.Connect(ctx)
		},
		Cluster:    installer.NewCluster,
		ChartAPI:   installer.NewChartAPI,
		K3sVersion: k3sVersion,
	}
}

// k3sVersion runs `<binary> --version`.
func k3sVersion(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", binary, err)
	}
	return string(out), nil
}

// runPlan runs a plan with its progress on out (plain lines or JSON lines)
// and, when logged, in the log file.
func runPlan(ctx context.Context, plan *installer.Plan, f cli.Format, out io.Writer, logged bool) error {
	var ev installer.Events = installer.NewPlain(out)
	if f == cli.JSON {
		ev = installer.NewJSONLines(out)
	}
	if logged {
		lf, err := installer.OpenLogFile(filepath.Join(plan.Root, installer.LogPath))
		if err != nil {
			return err
		}
		defer lf.Close()
		ev = installer.Multi(ev, lf)
	}
	return planError(installer.Run(ctx, plan, ev))
}

// runPlanScreen runs an install plan behind the progress screen (a terminal
// on both ends); the log file gets the same events as plain lines.
func runPlanScreen(ctx context.Context, plan *installer.Plan, env *installer.Env, cfg installer.Config, charts bool, out io.Writer) error {
	lf, err := installer.OpenLogFile(filepath.Join(plan.Root, installer.LogPath))
	if err != nil {
		return err
	}
	defer lf.Close()
	err = tui.RunInstall(ctx, os.Stdin, out, renderer(out), func(ctx context.Context, ev installer.Events) (tui.InstallSummary, error) {
		err := installer.Run(ctx, plan, installer.Multi(ev, lf))
		return tui.NewInstallSummary(installer.KubeconfigPath, installer.LogPath, installEndpoints(cfg, charts, installer.HealthCheckURLOf(env))...), err
	}, stepNames(plan)...)
	return planError(err)
}

// stepNames lists the plan's steps in order.
func stepNames(plan *installer.Plan) []string {
	names := make([]string, len(plan.Steps))
	for i, s := range plan.Steps {
		names[i] = s.Name()
	}
	return names
}

// installEndpoints are the addresses a finished install offers; health is
// the health-check URL the install asked from this host ("" when it did
// not get that far).
func installEndpoints(cfg installer.Config, charts bool, health string) []string {
	host := cfg.NodeIP
	if host == "" {
		host = "<node address>"
	}
	eps := []string{"API server: https://" + net.JoinHostPort(host, "6443")}
	switch {
	case charts && health != "":
		eps = append(eps, "Health check: "+health)
	case charts && installer.DefaultPipelineServiceType(cfg) == v1alpha1.ServiceTypeNodePort:
		// 2020 is outside the node port range: the node port is another.
		eps = append(eps, fmt.Sprintf("Health check: http://%s:<node port>%s (`tpctl pipeline endpoints` shows it)", host, installer.HealthCheckPath))
	case charts:
		eps = append(eps, fmt.Sprintf("Health check: http://%s%s", net.JoinHostPort(host, strconv.Itoa(installer.HealthCheckPort)), installer.HealthCheckPath))
	}
	return eps
}

// planError maps a failed preflight to its exit code.
func planError(err error) error {
	var pe *installer.PreflightError
	if errors.As(err, &pe) {
		return &cli.CodeError{Code: cli.ExitPreflight, Err: err}
	}
	return err
}

// configError marks configuration errors as usage errors (exit 2).
func configError(err error) error {
	return &cli.UsageError{Err: err}
}

// confirm asks a yes/no question on a terminal.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
