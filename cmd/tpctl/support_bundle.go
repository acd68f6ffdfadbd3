package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/supportbundle"
)

func newSupportBundleCmd() *cobra.Command {
	var (
		output, format, kubeconfig string
		since, timeout             time.Duration
		lim                        = supportbundle.DefaultLimits
		dryRun                     bool
	)
	cmd := &cobra.Command{
		Use:   "support-bundle",
		Short: "Collect logs, configuration and facts of this node into one redacted tar.gz",
		Long: `Collect what is needed to diagnose this node into one tar.gz (mode 0600),
to attach to a bug report. Nothing on the host or in the cluster is changed.

Host side: tpctl preflight and status (as -o json), the install state and log,
the k3s.service unit, its drop-ins and environment file, the journal of
k3s.service since --since, K3s's config.yaml, config.yaml.d and registries.yaml,
containerd (k3s crictl/ctr, its config), network (ip links, addresses, routes,
rules; iptables chain names and rule counts), disk usage of the K3s data dir,
/ and /var, memory (/proc/meminfo) and the OS.

Cluster side: nodes, pods (a summary and YAML), events, the operator's logs,
the last --log-lines lines of every pipeline pod, CoreInstances and Pipelines,
and the Helm release history (name, revision, status, chart, app version,
times: read from Helm's release Secrets, metadata only).

Redaction: tokens, passwords, proxy credentials (user:pass@ in URLs), private
keys (PEM blocks), bearer and basic authorization, registry auth and the
values of environment variables whose names name a secret are replaced by
***REDACTED***; YAML and JSON files are redacted by key, and one that does not
parse is left out. Secrets and K3s's token files are never read into the
bundle (the token values are masked wherever else they appear).

Works with the API server down: the host side is collected and each cluster
part is listed in index.json with the error. Bounded: each file at most
--max-file-size, the bundle at most --max-size, each collector at most
--collector-timeout, the whole run at most --timeout; index.json tells which
files were truncated or failed. Progress goes to standard error.`,
		Example: `  sudo tpctl support-bundle
  sudo tpctl support-bundle --since 2h --output /tmp/node1.tar.gz
  sudo tpctl support-bundle --dry-run
  sudo tpctl support-bundle -o json | jq '.files[] | select(.error)'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return &cli.UsageError{Err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(format, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			if since <= 0 || timeout <= 0 || lim.CollectorTimeout <= 0 || lim.MaxFileBytes <= 0 || lim.MaxTotalBytes <= 0 || lim.LogLines <= 0 {
				return &cli.UsageError{Err: fmt.Errorf("--since, --timeout, --collector-timeout, --max-file-size, --max-size and --log-lines must be positive")}
			}
			host, _ := os.Hostname()
			now := time.Now()
			if output == "" {
				output = fmt.Sprintf("tpctl-support-%s-%s.tar.gz", safeName(host), now.UTC().Format("20060102T150405Z"))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cs, red := supportBundleCollectors(kubeconfig, since, lim, now)
			if dryRun {
				return writeSupportBundlePlan(cmd.OutOrStdout(), f, output, cs)
			}
			if _, err := os.Stat(output); err == nil {
				return &cli.UsageError{Err: fmt.Errorf("%s exists: choose another --output", output)}
			}
			errOut := cmd.ErrOrStderr()
			fmt.Fprintf(errOut, "collecting %d parts into %s (timeout %s)\n", len(cs), output, timeout)
			res := supportbundle.Collect(ctx, cs, red, lim, host, buildinfo.Get().Version, since, time.Now,
				func(done, total int, c supportbundle.Collector, es []supportbundle.Entry, took time.Duration) {
					size, failed, trunc := 0, 0, 0
					for _, e := range es {
						size += e.Size
						if e.Error != "" {
							failed++
						}
						if e.Truncated {
							trunc++
						}
					}
					state := "ok"
					switch {
					case failed == len(es):
						state = "FAILED: " + firstError(es)
					case failed > 0:
						state = fmt.Sprintf("%d of %d file(s) failed", failed, len(es))
					}
					if trunc > 0 {
						state += fmt.Sprintf(", %d truncated", trunc)
					}
					fmt.Fprintf(errOut, "[%2d/%d] %-17s %8s %6s  %s\n", done, total, c.Name, byteSize(size), took.Round(time.Millisecond), state)
				})
			if err := res.WriteFile(output, red); err != nil {
				return fmt.Errorf("write %s: %w", output, err)
			}
			if f == cli.JSON {
				return cli.Encode(cmd.OutOrStdout(), cli.JSON, struct {
					Output string `json:"output"`
					supportbundle.Index
				}{output, res.Index})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d file(s), %d failed, %d truncated (see index.json)\n",
				output, len(res.Index.Files), res.Index.Failed, res.Index.Trunc)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&output, "output", "", "bundle file to write (default tpctl-support-<host>-<time>.tar.gz in the current directory; never overwritten)")
	fl.StringVarP(&format, "format", "o", "table", "summary format on standard output: table|json")
	fl.DurationVar(&since, "since", 24*time.Hour, "journal and logs since this long ago")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "give up on the parts not collected after this long (the bundle is still written)")
	fl.DurationVar(&lim.CollectorTimeout, "collector-timeout", lim.CollectorTimeout, "time limit of each part")
	fl.Int64Var(&lim.MaxFileBytes, "max-file-size", lim.MaxFileBytes, "largest file in the bundle, in bytes (logs keep their end)")
	fl.Int64Var(&lim.MaxTotalBytes, "max-size", lim.MaxTotalBytes, "largest bundle before compression, in bytes")
	fl.Int64Var(&lim.LogLines, "log-lines", lim.LogLines, "last lines of each pipeline pod's log (the operator's: four times as many)")
	fl.StringVar(&kubeconfig, "kubeconfig", installer.KubeconfigPath, "kubeconfig of the node's cluster")
	fl.BoolVar(&dryRun, "dry-run", false, "list what would be collected; read and write nothing")
	return cmd
}

// supportBundleCollectors wires the collectors to this host.
func supportBundleCollectors(kubeconfig string, since time.Duration, lim supportbundle.Limits, now time.Time) ([]supportbundle.Collector, *supportbundle.Redactor) {
	h := supportbundle.NewOSHost("/")
	dataDir := installer.DefaultDataDir
	if st, err := installer.LoadState(installer.StatePath, time.Now); err == nil && st.Get().Config.DataDir != "" {
		dataDir = st.Get().Config.DataDir
	}
	red := supportbundle.NewRedactor(supportbundle.SecretLiterals(h, dataDir)...)
	cs := supportbundle.HostCollectors(supportbundle.HostOptions{
		Host: h, DataDir: dataDir, K3sBinary: installer.K3sBinaryPath, Since: since, Now: func() time.Time { return now },
		Limits: lim, JournalLines: 50000,
		Preflight: func(ctx context.Context) ([]byte, error) {
			checks, err := preflight.DefaultChecks(preflight.Options{DataDir: dataDir})
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			err = preflight.WriteJSON(&b, preflight.Run(ctx, checks, preflight.NewHost("/"), preflight.IgnoreSet{}))
			return b.Bytes(), err
		},
		Status: func(ctx context.Context) ([]byte, error) {
			b, _ := bundle.Open() // a missing payload is part of the report
			rep := installer.Status(ctx, installOptions(installer.Config{}, installer.Sources{}, b, preflight.IgnoreSet{}))
			return json.Marshal(rep)
		},
	})
	cs = append(cs, supportbundle.ClusterCollectors(supportbundle.ClusterOptions{
		Limits: lim, SinceSeconds: int64(since / time.Second),
		Connect: func(context.Context) (*supportbundle.Clients, error) {
			if _, err := os.Stat(kubeconfig); err != nil {
				return nil, fmt.Errorf("no kubeconfig: %w", err)
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
			}
			cfg.Timeout = 10 * time.Second
			kc, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return nil, err
			}
			dc, err := dynamic.NewForConfig(cfg)
			if err != nil {
				return nil, err
			}
			return &supportbundle.Clients{Kube: kc, Dynamic: dc}, nil
		},
	})...)
	return cs, red
}

func writeSupportBundlePlan(w io.Writer, f cli.Format, output string, cs []supportbundle.Collector) error {
	type part struct {
		Name   string             `json:"name"`
		Part   supportbundle.Part `json:"part"`
		Source string             `json:"source"`
	}
	ps := make([]part, 0, len(cs))
	for _, c := range cs {
		ps = append(ps, part{c.Name, c.Part, c.Source})
	}
	if f == cli.JSON {
		return cli.Encode(w, cli.JSON, struct {
			Output string `json:"output"`
			Parts  []part `json:"parts"`
		}{output, ps})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "would write %s (mode 0600) with index.json and:\n", output)
	for _, p := range ps {
		fmt.Fprintf(&b, "  %-17s %-8s %s\n", p.Name, p.Part, p.Source)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func firstError(es []supportbundle.Entry) string {
	for _, e := range es {
		if e.Error != "" {
			if len(e.Error) > 120 {
				return e.Error[:120] + "…"
			}
			return e.Error
		}
	}
	return ""
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// safeName keeps a host name usable in a file name.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
	if s == "" {
		return "host"
	}
	return s
}
