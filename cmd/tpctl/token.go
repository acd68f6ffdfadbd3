package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/backup"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/join"
	"github.com/tpctl/tpctl/systemd"
)

func newTokenCmd() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make, list and delete the tokens other hosts join this K3s server with",
		Long: `Bootstrap tokens for ` + "`tpctl join`" + `, made on the server tpctl installed exactly
as ` + "`k3s token create`" + ` makes them: a kube-system Secret bootstrap-token-<id> of type
bootstrap.kubernetes.io/token, usages signing and authentication, extra group
` + join.NodeAuthGroup + `, and an expiration. The full token
(K10<sha256 of the server CA>::<id>.<secret>) is printed once, by token create;
tpctl keeps no copy and never logs it.`,
	}
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", installer.KubeconfigPath, "kubeconfig of the server (K3s's admin kubeconfig)")
	cmd.AddCommand(newTokenCreateCmd(&kubeconfig), newTokenListCmd(&kubeconfig), newTokenDeleteCmd(&kubeconfig))
	return cmd
}

// tokenServer is what the token commands need of the server host.
type tokenServer struct {
	Tokens join.Tokens
	// Client reads the node when the install recorded no node IP.
	Client kubernetes.Interface
	State  installer.State
}

// openTokenServer refuses a host that is not the server tpctl installed,
// and opens its API with the kubeconfig.
func openTokenServer(kubeconfig string) (*tokenServer, error) {
	st, err := installer.LoadState(installer.StatePath, time.Now)
	if err != nil {
		return nil, err
	}
	s := st.Get()
	if !st.Exists() || !s.Completed {
		return nil, errors.New("tpctl has not installed a K3s server on this host (or its install did not finish): run `tpctl token` on the server")
	}
	if installer.AgentState(s) {
		return nil, errors.New("this host is an agent: run `tpctl token` on the server it joined")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 15 * time.Second
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
		if ca, err = os.ReadFile(cfg.TLSClientConfig.CAFile); err != nil {
			return nil, fmt.Errorf("read the server CA: %w", err)
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &tokenServer{Tokens: join.Tokens{Client: cs, CA: ca}, Client: cs, State: s}, nil
}

// serverAddress is the address other hosts join: the node IP the install
// was given, else the node's internal address.
func (s *tokenServer) serverAddress(ctx context.Context) (string, error) {
	if ip := s.State.Config.NodeIP; ip != "" {
		return ip, nil
	}
	n, err := s.Client.CoreV1().Nodes().Get(ctx, s.State.Config.NodeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read node %s for its address (the install set no nodeIP): %w", s.State.Config.NodeName, err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address, nil
		}
	}
	return "", fmt.Errorf("node %s reports no internal address; install with --node-ip", s.State.Config.NodeName)
}

// tokenCreated is token create's JSON output. It holds the token.
type tokenCreated struct {
	ID          string     `json:"id"`
	Expires     *time.Time `json:"expires,omitempty"`
	Server      string     `json:"server"`
	Token       string     `json:"token"`
	JoinCommand string     `json:"joinCommand"`
}

// createToken makes a token and prints the join command once.
func createToken(ctx context.Context, s *tokenServer, ttl time.Duration, f cli.Format, out io.Writer) error {
	addr, err := s.serverAddress(ctx)
	if err != nil {
		return err
	}
	server := "https://" + net.JoinHostPort(addr, "6443")
	c, err := s.Tokens.Create(ctx, ttl)
	if err != nil {
		return err
	}
	cmdline := "tpctl join --server " + server + " --token " + c.Token.String()
	if f == cli.JSON {
		return cli.Encode(out, cli.JSON, tokenCreated{ID: c.Info.ID, Expires: c.Info.Expires, Server: server, Token: c.Token.String(), JoinCommand: cmdline})
	}
	exp := "it never expires (delete it with `tpctl token delete " + c.Info.ID + "`)"
	if c.Info.Expires != nil {
		exp = fmt.Sprintf("it expires at %s (in %s)", c.Info.Expires.Format(time.RFC3339), ttl)
	}
	_, err = fmt.Fprintf(out, "Token %s created; %s.\nOn the host to join, as root (shown once: tpctl keeps no copy):\n\n  %s\n", c.Info.ID, exp, cmdline)
	return err
}

func newTokenCreateCmd(kubeconfig *string) *cobra.Command {
	var (
		ttl     time.Duration
		role    string
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a bootstrap token and print the join command (once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			switch role {
			case installer.RoleAgent:
			case installer.RoleServer:
				if cmd.Flags().Changed("ttl") {
					return cli.Usagef("--ttl: the server token does not expire (K3s's server token); only agent tokens take --ttl")
				}
			default:
				return cli.Usagef("--role %q: agent or server", role)
			}
			if ttl < 0 {
				return cli.Usagef("--ttl %s is negative (0: never expires)", ttl)
			}
			s, err := openTokenServer(*kubeconfig)
			if err != nil {
				return err
			}
			if role == installer.RoleServer {
				// The conversion restarts K3s: it gets its own time.
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout+10*time.Minute)
				defer cancel()
				return createServerToken(ctx, s, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return createToken(ctx, s, ttl, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&ttl, "ttl", join.DefaultTTL, "how long the token may be used to join (0: never expires)")
	fl.StringVar(&role, "role", installer.RoleAgent, "role of the joining host: agent, or server (converts this server to embedded etcd first, after a backup)")
	fl.StringVarP(&output, "output", "o", "table", "output format: table|json")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

// writeTokens renders token list's table; secrets are never in it.
func writeTokens(w io.Writer, tokens []join.TokenInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tEXPIRES\tTTL\tUSAGES\tGROUPS\tDESCRIPTION")
	for _, t := range tokens {
		exp, left := "never", "forever"
		if t.Expires != nil {
			exp = t.Expires.Format(time.RFC3339)
			left = "expired"
			if d := t.Expires.Sub(now); d > 0 {
				left = d.Round(time.Second).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, exp, left, orNone(strings.Join(t.Usages, ",")), orNone(strings.Join(t.Groups, ",")), orNone(t.Description))
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func newTokenListCmd(kubeconfig *string) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the bootstrap tokens (ids and expiry, never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON, cli.YAML)
			if err != nil {
				return err
			}
			s, err := openTokenServer(*kubeconfig)
			if err != nil {
				return err
			}
			tokens, err := s.Tokens.List(cmd.Context())
			if err != nil {
				return err
			}
			if f != cli.Table {
				return cli.Encode(cmd.OutOrStdout(), f, tokens)
			}
			return writeTokens(cmd.OutOrStdout(), tokens, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table|json|yaml")
	return cmd
}

func newTokenDeleteCmd(kubeconfig *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete bootstrap tokens (hosts that joined with them stay joined)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openTokenServer(*kubeconfig)
			if err != nil {
				return err
			}
			for _, a := range args {
				id, err := s.Tokens.Delete(cmd.Context(), a)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "bootstrap token %s deleted\n", id)
			}
			return nil
		},
	}
}

// serverTokenCreated is token create --role server's JSON output. It
// holds the token.
type serverTokenCreated struct {
	Server      string `json:"server"`
	Token       string `json:"token"`
	JoinCommand string `json:"joinCommand"`
	Converted   bool   `json:"converted"`
	Warning     string `json:"warning,omitempty"`
}

// createServerToken prepares this server for another server and prints
// the join command with K3s's server token: on SQLite it first converts
// to embedded etcd (backup, cluster-init, restart); on an external
// datastore it refuses.
func createServerToken(ctx context.Context, s *tokenServer, f cli.Format, out, errOut io.Writer) error {
	cfg := s.State.Config
	converted, err := installer.ConvertToEmbeddedEtcd(ctx, installer.ConvertOptions{
		Root: "/", DataDir: cfg.DataDir, NodeName: cfg.NodeName,
		Backup: func(ctx context.Context) (string, error) {
			_, path, err := backup.Create(ctx, backup.Options{Root: "/", TpctlVersion: buildinfo.Get().Version,
				Cluster: backup.NewKubeCluster(installer.KubeconfigPath)})
			return path, err
		},
		Restart: func(ctx context.Context) error {
			m, err := systemd.Connect(ctx)
			if err != nil {
				return err
			}
			return m.Restart(ctx, installer.UnitName)
		},
		Node: func(ctx context.Context) (*corev1.Node, error) {
			return s.Client.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		},
		Logf: func(format string, args ...any) { fmt.Fprintf(errOut, format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, "server", "token"))
	if err != nil {
		return fmt.Errorf("read K3s's server token: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	addr, err := s.serverAddress(ctx)
	if err != nil {
		return err
	}
	server := "https://" + net.JoinHostPort(addr, "6443")
	nodes, err := s.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	warn := installer.EvenMembersWarning(installer.CountEtcdMembers(nodes.Items) + 1)
	cmdline := "tpctl join --role server --server " + server + " --token " + token
	if f == cli.JSON {
		return cli.Encode(out, cli.JSON, serverTokenCreated{Server: server, Token: token, JoinCommand: cmdline, Converted: converted, Warning: warn})
	}
	if converted {
		fmt.Fprintln(out, "This server now runs on K3s's embedded etcd (the SQLite datastore was migrated; a backup was taken first).")
	}
	if warn != "" {
		fmt.Fprintf(out, "Warning: with the next server %s.\n", warn)
	}
	_, err = fmt.Fprintf(out, "K3s's server token does not expire; anyone holding it can join a server or read the cluster's keys.\nOn the host to join as a server, as root (shown once):\n\n  %s\n", cmdline)
	return err
}
