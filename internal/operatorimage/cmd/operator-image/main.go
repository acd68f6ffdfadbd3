// Command operator-image writes the operator image archive for one
// architecture around an already built operator binary and prints
// "path  reference" (used by scripts/release):
//
//	operator-image -arch arm64 -binary DIR/tpctl-operator -version V -out DIR
//
// -program names the binary: tpctl-operator (cmd/tpctl-operator, the
// default: what the release ships) or tpctl (the whole tpctl, run as
// `tpctl operator`).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tpctl/tpctl/internal/operatorimage"
)

func main() {
	arch := flag.String("arch", "", "architecture of the binary (amd64 or arm64)")
	binary := flag.String("binary", "", "static linux binary of -program for -arch")
	program := flag.String("program", "tpctl-operator", "the binary's program: tpctl-operator (cmd/tpctl-operator) or tpctl")
	version := flag.String("version", "dev", "release version (the image tag is its chart version form)")
	out := flag.String("out", "", "output directory")
	flag.Parse()
	if *arch == "" || *binary == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: operator-image -arch ARCH -binary FILE [-program tpctl-operator|tpctl] -version V -out DIR")
		os.Exit(2)
	}
	prog, err := operatorimage.ParseProgram(*program)
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator-image:", err)
		os.Exit(2)
	}
	path, ref, err := operatorimage.Write(*out, *version, *arch, prog, *binary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator-image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s  %s\n", path, ref)
}
