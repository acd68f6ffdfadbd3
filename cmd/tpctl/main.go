// Command tpctl installs a telemetry-pipeline appliance on a Linux host and
// manages its pipelines.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tpctl/tpctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	if err != nil {
		code := cli.ExitCode(err)
		if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
			code = cli.ExitUsage
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			code = cli.ExitInterrupt
		}
		var quiet interface{ Silent() bool }
		if !errors.As(err, &quiet) || !quiet.Silent() {
			fmt.Fprintln(os.Stderr, "Error:", err)
		}
		stop()
		os.Exit(code)
	}
}
