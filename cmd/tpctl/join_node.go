package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
)

func newNodeCmd() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Manage the nodes that joined this K3s server",
	}
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", installer.KubeconfigPath, "kubeconfig of the server (K3s's admin kubeconfig)")
	cmd.AddCommand(newNodeDeleteCmd(&kubeconfig))
	return cmd
}

// deleteNode removes a joined node's Node object (never the server's own);
// K3s's server then removes the node's password Secret.
func deleteNode(ctx context.Context, s *tokenServer, name string, dryRun bool, out io.Writer) error {
	if name == s.State.Config.NodeName {
		return cli.Usagef("node %s is this server; `tpctl uninstall` removes it", name)
	}
	n, err := s.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &cli.CodeError{Code: cli.ExitError, Err: fmt.Errorf("there is no node %s in the cluster", name)}
	}
	if err != nil {
		return err
	}
	if dryRun {
		_, err := fmt.Fprintf(out, "Dry run: would delete node %s (%s); K3s's server then removes its node-password Secret. Its pods are deleted with it.\n",
			name, describeNode(installer.ClusterNodes([]corev1.Node{*n})[0]))
		return err
	}
	err = s.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &n.UID}})
	if err != nil {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	_, err = fmt.Fprintf(out, "node %s deleted; run `tpctl uninstall` on that host to remove K3s there.\n", name)
	return err
}

func describeNode(n installer.ClusterNode) string {
	ready := "Ready"
	if !n.Ready {
		ready = "NotReady"
	}
	return fmt.Sprintf("roles %v, %s, %s", n.Roles, ready, n.InternalIP)
}

func newNodeDeleteCmd(kubeconfig *string) *cobra.Command {
	var (
		dryRun, yes bool
		timeout     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a joined node from the cluster (before `tpctl uninstall` on that host)",
		Long: `Delete the Node object of a host that joined this server, before ` + "`tpctl uninstall`" + `
on that host: a node's own credentials may read their Node but not delete it,
so the agent's uninstall waits for this. K3s's server then removes the node's
password Secret, and the host's name may join again. The server's own node is
refused. Without a terminal, it needs --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openTokenServer(*kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			if !dryRun && !yes {
				if !cli.IsTerminal(os.Stdin) {
					return cli.Usagef("node delete removes a node from the cluster: pass --yes to run it without a terminal")
				}
				if !confirm(cmd.InOrStdin(), out, fmt.Sprintf("Delete node %s from the cluster?", args[0])) {
					return &cli.CodeError{Code: cli.ExitError, Err: errors.New("not confirmed; nothing was changed")}
				}
			}
			return deleteNode(ctx, s, args[0], dryRun, out)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be deleted, change nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}
