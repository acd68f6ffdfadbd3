// Command build-image writes the operator image archive
// (tpctl-operator-<version>.tar) into a directory and prints its path and
// image reference.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/tpctl/tpctl/internal/operatorimage"
)

func main() {
	version := flag.String("version", "dev", "build version (the tag is its chart version form)")
	commit := flag.String("commit", "unknown", "commit stamped into the binary")
	out := flag.String("out", ".cache/release", "output directory")
	root := flag.String("root", ".", "root of the tpctl module")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	path, ref, err := operatorimage.Build(ctx, *root, *version, *commit, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s  %s\n", path, ref)
}
