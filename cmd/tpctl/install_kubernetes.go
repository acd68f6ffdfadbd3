package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/kubetarget"
	"github.com/tpctl/tpctl/preflight"
)

// Install and uninstall targets.
const (
	targetHost       = "host"
	targetKubernetes = "kubernetes"
)

// kubeTargetFlags are the flags of --target kubernetes.
type kubeTargetFlags struct {
	target, kubeconfig, kubeContext, operatorImage, serviceType string
}

// kubeTargetOnly are the flags that only --target kubernetes takes.
var kubeTargetOnly = []string{"kubeconfig", "context", "operator-image", "service-type"}

// registerTargetFlags adds --target and, for install, the flags of
// --target kubernetes.
func registerTargetFlags(fl *pflag.FlagSet, k *kubeTargetFlags, install bool) {
	fl.StringVar(&k.target, "target", targetHost, "where to install: host (K3s on this host) or kubernetes (the charts only, into an existing cluster)")
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "--target kubernetes: kubeconfig of the cluster (default: $KUBECONFIG, then ~/.kube/config)")
	fl.StringVar(&k.kubeContext, "context", "", "--target kubernetes: kubeconfig context (default: its current context)")
	if install {
		fl.StringVar(&k.operatorImage, "operator-image", "", "--target kubernetes: operator image the cluster pulls, name:tag or name@sha256:… (default: this release's published image by digest)")
		fl.StringVar(&k.serviceType, "service-type", "", "--target kubernetes: pipelines' default Service type LoadBalancer|NodePort|ClusterIP (default: LoadBalancer when the cluster has a load balancer, else NodePort)")
	}
}

// kubernetes reports whether --target kubernetes was chosen, and refuses
// flags of the other target: a flag that would be ignored is an error.
func (k *kubeTargetFlags) kubernetes(fl *pflag.FlagSet, allowed ...string) (bool, error) {
	switch k.target {
	case targetHost, targetKubernetes:
	default:
		return false, cli.Usagef("--target %q: want %s or %s", k.target, targetHost, targetKubernetes)
	}
	var wrong []string
	fl.Visit(func(f *pflag.Flag) {
		onlyKube := false
		for _, n := range kubeTargetOnly {
			onlyKube = onlyKube || f.Name == n
		}
		switch {
		case k.target == targetHost && onlyKube:
			wrong = append(wrong, "--"+f.Name)
		case k.target == targetKubernetes && !onlyKube && f.Name != "target":
			ok := false
			for _, a := range allowed {
				ok = ok || f.Name == a
			}
			if !ok {
				wrong = append(wrong, "--"+f.Name)
			}
		}
	})
	if len(wrong) > 0 {
		if k.target == targetHost {
			return false, cli.Usagef("%s needs --target kubernetes", strings.Join(wrong, ", "))
		}
		return false, cli.Usagef("%s: not a flag of --target kubernetes, which installs only the charts into an existing cluster", strings.Join(wrong, ", "))
	}
	return k.target == targetKubernetes, nil
}

// kubeInstallFlags are the install flags --target kubernetes accepts.
var kubeInstallFlags = []string{"dry-run", "output", "timeout", "yes", "instance-name", "pipeline-image", "pipeline-arg"}

// runInstallKubernetes is `tpctl install --target kubernetes`.
func runInstallKubernetes(cmd *cobra.Command, k kubeTargetFlags, ch installer.Charts, f cli.Format, dryRun, yes bool, timeout time.Duration) error {
	if err := ch.Validate(); err != nil {
		return &cli.UsageError{Err: err}
	}
	svc := v1alpha1.ServiceType(k.serviceType)
	switch svc {
	case "", v1alpha1.ServiceTypeLoadBalancer, v1alpha1.ServiceTypeNodePort, v1alpha1.ServiceTypeClusterIP:
	default:
		return cli.Usagef("--service-type %q: want LoadBalancer, NodePort or ClusterIP", k.serviceType)
	}
	img, err := kubetarget.ResolveImage(k.operatorImage, kubetarget.PublishedOperatorImage)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	t, err := kubetarget.Open(k.kubeconfig, k.kubeContext)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	o := kubetarget.Options{Version: buildinfo.Get().Version, OperatorImage: img, InstanceName: ch.InstanceName,
		PipelineImage: ch.PipelineImage, PipelineArgs: ch.PipelineArgs, ServiceType: svc}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	progress := progressTo(out, f)
	if f == cli.JSON {
		progress = progressTo(errOut, f)
	}
	if !dryRun {
		// Preflight first: a refusal must come before the question.
		res, err := t.Install(ctx, o, true, nil)
		if err != nil {
			return kubeInstallError(out, f, res, err)
		}
		if f == cli.Table {
			writeClusterPreflight(out, res.Preflight)
		}
		if !yes && cli.IsTerminal(os.Stdin) && !confirm(cmd.InOrStdin(), out,
			fmt.Sprintf("Install the operator and core instance into the cluster at %s?", t.Server)) {
			return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")}
		}
	}
	res, err := t.Install(ctx, o, dryRun, progress)
	if err != nil {
		return kubeInstallError(out, f, res, err)
	}
	if f == cli.JSON {
		return cli.Encode(out, cli.JSON, res)
	}
	if dryRun {
		writeClusterPreflight(out, res.Preflight)
		fmt.Fprintln(out, "\nDry run: nothing was written. The install would:")
	} else {
		fmt.Fprintln(out, "\nInstalled into", t.Server+":")
	}
	for _, l := range res.Plan {
		fmt.Fprintln(out, "  -", l)
	}
	for _, n := range res.Preflight.Notes {
		fmt.Fprintln(out, "Note:", n)
	}
	fmt.Fprintln(out, "Record:", res.Record+".")
	if !dryRun {
		fmt.Fprintf(out, "Next: `tpctl pipeline create --kubeconfig … --name NAME --config-file FILE` adds a pipeline to CoreInstance %s.\n", res.Instance)
	}
	return nil
}

func kubeInstallError(out io.Writer, f cli.Format, res *kubetarget.Result, err error) error {
	var pe *kubetarget.PreflightError
	if !errors.As(err, &pe) {
		return err
	}
	if f == cli.JSON {
		if e := cli.Encode(out, cli.JSON, res); e != nil {
			return e
		}
	} else {
		writeClusterPreflight(out, pe.Report)
	}
	return &cli.CodeError{Code: cli.ExitPreflight, Err: err}
}

// progressTo writes progress lines (JSON lines with -o json).
func progressTo(w io.Writer, f cli.Format) func(string) {
	if f == cli.JSON {
		return func(msg string) {
			_ = cli.Encode(w, cli.JSON, map[string]string{"type": "progress", "message": msg})
		}
	}
	return func(msg string) { fmt.Fprintln(w, msg) }
}

// writeClusterPreflight renders the cluster preflight like the host's:
// one row per check, the remedy of each warning and failure below it.
func writeClusterPreflight(w io.Writer, rep *kubetarget.Report) {
	if rep == nil {
		return
	}
	host := preflight.Report{Schema: rep.Schema, Results: rep.Results, Summary: rep.Summary}
	var b strings.Builder
	_ = preflight.WriteTable(&b, host, preflight.TableOptions{})
	text := strings.TrimRight(b.String(), "\n")
	// The host table's last line speaks of the host: say it of the cluster.
	if i := strings.LastIndex(text, "\n"); i >= 0 {
		text = text[:i+1]
	}
	fmt.Fprintf(w, "Cluster %s, Kubernetes %s\n%s", rep.Server, rep.ServerVersion, text)
	verdict := "the cluster is ready"
	if rep.Failed() {
		verdict = "nothing was written"
	}
	fmt.Fprintf(w, "Cluster preflight: %d passed, %d warnings, %d failed: %s\n", rep.Summary.Pass, rep.Summary.Warn, rep.Summary.Fail, verdict)
}

// runUninstallKubernetes is `tpctl uninstall --target kubernetes`.
func runUninstallKubernetes(cmd *cobra.Command, k kubeTargetFlags, f cli.Format, keepData, dryRun, yes bool, timeout time.Duration) error {
	t, err := kubetarget.Open(k.kubeconfig, k.kubeContext)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	out := cmd.OutOrStdout()
	o := kubetarget.Options{Version: buildinfo.Get().Version}
	plan, err := t.Uninstall(ctx, o, keepData, true, nil)
	if errors.Is(err, kubetarget.ErrNothingToUninstall) {
		fmt.Fprintln(out, "Nothing to uninstall:", err)
		return nil
	}
	if err != nil {
		return err
	}
	if dryRun {
		if f == cli.JSON {
			return cli.Encode(out, cli.JSON, plan)
		}
		writeUninstallPlan(out, "Dry run: nothing was changed. The uninstall would:", plan)
		return nil
	}
	if !yes {
		if !cli.IsTerminal(os.Stdin) {
			return cli.Usagef("uninstall removes tpctl's releases from the cluster at %s: pass --yes to run it without a terminal", t.Server)
		}
		writeUninstallPlan(out, "The uninstall will:", plan)
		if !confirm(cmd.InOrStdin(), out, fmt.Sprintf("Remove tpctl from the cluster at %s?", t.Server)) {
			return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")}
		}
	}
	progress := progressTo(out, f)
	if f == cli.JSON {
		progress = progressTo(cmd.ErrOrStderr(), f)
	}
	res, err := t.Uninstall(ctx, o, keepData, false, progress)
	if err != nil {
		return err
	}
	if f == cli.JSON {
		return cli.Encode(out, cli.JSON, res)
	}
	writeUninstallPlan(out, "Removed from "+t.Server+":", res)
	return nil
}

func writeUninstallPlan(w io.Writer, title string, r *kubetarget.UninstallResult) {
	fmt.Fprintln(w, title)
	for _, l := range r.Plan {
		fmt.Fprintln(w, "  -", l)
	}
	for _, k := range r.Kept {
		fmt.Fprintln(w, "  kept:", k)
	}
}
