// Command tpctl-operator is the tpctl operator as a program of its own: the
// same command and flags as `tpctl operator` (operator/command), linked
// without the rest of tpctl (installer, Helm, the TUI, the host tools), so
// the binary whose pages stay resident in the operator's pod is a fraction
// of tpctl's. The release's operator image runs it (internal/operatorimage).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/operator/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := command.New("tpctl-operator")
	root.Version = buildinfo.Get().Version
	root.SilenceUsage, root.SilenceErrors = true, true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	if err := root.ExecuteContext(ctx); err != nil {
		code := cli.ExitCode(err)
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			code = cli.ExitInterrupt
		}
		fmt.Fprintln(os.Stderr, "Error:", err)
		stop()
		os.Exit(code)
	}
}
