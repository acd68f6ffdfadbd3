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

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/join"
	"github.com/tpctl/tpctl/preflight"
)

// joinFlags are join's inputs.
type joinFlags struct {
	server, token, tokenFile string
	nodeName, nodeIP         string
	dataDir                  string
	role                     string
}

// maxTokenFile bounds --token-file.
const maxTokenFile = 4096

// readToken takes the token from --token or --token-file ("-": stdin).
func (f joinFlags) readToken(stdin io.Reader) (string, error) {
	switch {
	case f.token != "" && f.tokenFile != "":
		return "", cli.Usagef("give --token or --token-file, not both")
	case f.token != "":
		return f.token, nil
	case f.tokenFile == "":
		return "", cli.Usagef("--token (or --token-file) is required: create one with `tpctl token create` on the server")
	}
	r := stdin
	if f.tokenFile != "-" {
		fh, err := os.Open(f.tokenFile)
		if err != nil {
			return "", cli.Usagef("--token-file: %v", err)
		}
		defer fh.Close()
		r = fh
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTokenFile+1))
	if err != nil || len(b) > maxTokenFile {
		return "", cli.Usagef("--token-file: cannot read a token of at most %d bytes", maxTokenFile)
	}
	return strings.TrimSpace(string(b)), nil
}

// config is the agent's configuration: node name, address and data dir;
// the rest of an install configuration does not apply to an agent.
func (f joinFlags) config() (installer.Config, error) {
	c, err := installer.Config{NodeName: f.nodeName, NodeIP: f.nodeIP, DataDir: f.dataDir}.Complete(installer.Hostname)
	if err == nil {
		err = c.Validate()
	}
	return c, err
}

func newJoinCmd() *cobra.Command {
	var (
		jf      joinFlags
		src     installer.Sources
		ignore  []string
		output  string
		dryRun  bool
		yes     bool
		force   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Join this host to a K3s cluster tpctl installed, as an agent or a server",
		Long: `Join this host to the cluster of a server tpctl installed, as a K3s agent
(k3s-agent.service), with a token from ` + "`tpctl token create`" + ` on that server.

Steps: preflight (the host checks install makes, and the ports an agent opens:
10250/tcp, 8472/udp, … — not the server's) → check the server: its port
answers, and the CA it serves at /cacerts has the sha256 the token names
(nothing is sent to a server that fails this) → stage the K3s binary and air-gap
images → write /etc/rancher/k3s/config.yaml (0600: server, token, node-name,
node-ip, data-dir, kubelet-arg), the unit's environment file and
/etc/systemd/system/k3s-agent.service → daemon-reload, enable and start → wait
until this node is Ready in the cluster (read with the node's own credentials,
<data dir>/agent/kubelet.kubeconfig).

With --role server the host becomes another K3s server (k3s.service) on
K3s's embedded etcd: the token must be the server token from
` + "`tpctl token create --role server`" + ` (agent and bootstrap tokens are refused);
the plan is install's without the charts (the cluster has them), with the
server check after preflight, /etc/rancher/k3s/config.yaml.d/50-tpctl-ha.yaml
(0600: server, token) after the K3s config, and a wait until this node is a
voting etcd member after the node wait.

Like install, every step checks first whether it is done: running join again
changes nothing, and an interrupted join resumes. The token is written only
into config.yaml; it is never printed, logged or kept in the install state.
` + "`tpctl uninstall`" + ` on this host removes the node from the cluster and what join made.

Exit codes: 0 joined, 1 a step failed, 2 usage error (nothing changed), 3
preflight failed (nothing changed), 130 interrupted.`,
		Example: `  tpctl join --server https://10.0.0.10:6443 --token K10…::abcdef.0123456789abcdef --yes
  tpctl join --server https://10.0.0.10:6443 --token-file /root/join-token --node-name edge-2 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			u, err := join.ServerURL(jf.server)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			raw, err := jf.readToken(cmd.InOrStdin())
			if err != nil {
				return err
			}
			switch jf.role {
			case installer.RoleAgent:
			case installer.RoleServer:
				if err := installer.CheckServerToken(raw); err != nil {
					return &cli.UsageError{Err: err}
				}
			default:
				return cli.Usagef("--role %q: agent or server", jf.role)
			}
			if _, err := join.ParseToken(raw); err != nil {
				return &cli.UsageError{Err: err}
			}
			cfg, err := jf.config()
			if err != nil {
				return configError(err)
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
			ign := preflight.ParseIgnoreSet(ignore...)
			opts := installer.JoinOptions{
				Options:      installOptions(cfg, src, b, ign),
				Server:       u.String(),
				Token:        raw,
				VerifyServer: join.Verifier{}.Verify,
			}
			opts.Preflight = installer.AgentPreflight("/", ign, os.LookupEnv)
			newPlan, what := installer.NewJoinPlan, "K3s agent node"
			if jf.role == installer.RoleServer {
				opts.Preflight = installer.DefaultPreflight("/", ign, os.LookupEnv)
				opts.VerifyServer = join.Verifier{}.VerifyServerJoin
				newPlan, what = installer.NewServerJoinPlan, "K3s server (embedded etcd) node"
			}
			opts.DataDirForce = force
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			plan, env, err := newPlan(ctx, opts)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			defer env.Close()
			out := cmd.OutOrStdout()
			if dryRun {
				rep := installer.DryRun(ctx, plan)
				if f == cli.JSON {
					return cli.Encode(out, cli.JSON, rep)
				}
				return installer.WriteDryRun(out, rep)
			}
			if !yes && cli.IsTerminal(os.Stdin) && !confirm(cmd.InOrStdin(), out,
				fmt.Sprintf("Join this host to %s as %s %s (data in %s)?", u, what, cfg.NodeName, cfg.DataDir)) {
				return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")}
			}
			return runPlan(ctx, plan, f, out, true)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&jf.server, "server", "", "URL of the server to join (https://ADDR:6443, as `tpctl token create` prints it)")
	fl.StringVar(&jf.token, "token", "", "join token from `tpctl token create` (K10<ca sha256>::<id>.<secret>)")
	fl.StringVar(&jf.tokenFile, "token-file", "", "read the token from this file (- for stdin) instead of --token, keeping it out of the process list")
	fl.StringVar(&jf.role, "role", installer.RoleAgent, "agent, or server: a control-plane member on K3s's embedded etcd (token from `tpctl token create --role server`)")
	fl.StringVar(&jf.nodeName, "node-name", "", "name of this node (default: the host name)")
	fl.StringVar(&jf.nodeIP, "node-ip", "", "address this node advertises (default: K3s picks the default route's)")
	fl.StringVar(&jf.dataDir, "data-dir", installer.DefaultDataDir, "K3s's data dir")
	fl.StringVar(&src.K3sBinary, "k3s-binary", "", "K3s binary to install instead of the embedded one")
	fl.StringVar(&src.K3sSHA256, "k3s-sha256", "", "sha256 the --k3s-binary must have")
	fl.StringSliceVar(&src.K3sImages, "k3s-images", nil, "K3s air-gap image archive(s) to stage instead of the embedded ones (repeatable)")
	fl.StringSliceVar(&ignore, "ignore-preflight-errors", nil, "preflight checks whose failures become warnings (NAME,... or all)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan and the files it would write (the token redacted), change nothing")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (without a terminal tpctl never asks)")
	fl.BoolVar(&force, strings.TrimPrefix(installer.DataDirForceFlag, "--"), false, "use a --data-dir that already holds files tpctl did not create (never a system directory)")
	fl.StringVarP(&output, "output", "o", "table", "progress format: table (plain lines) or json (JSON lines)")
	fl.DurationVar(&timeout, "timeout", 20*time.Minute, "give up after this long")
	return cmd
}
