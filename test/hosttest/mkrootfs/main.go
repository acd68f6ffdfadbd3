// Command mkrootfs builds the cached Debian root tarball that test/hosttest
// boots (scripts/test-deps runs it). It does nothing when the tarball exists.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tpctl/tpctl/test/hosttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := hosttest.CacheDir()
	if err == nil {
		var p string
		p, err = hosttest.BuildRootfs(ctx, dir, hosttest.DefaultRootfs(), func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, f+"\n", a...)
		})
		if err == nil {
			fmt.Println(p)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkrootfs:", err)
		os.Exit(1)
	}
}
