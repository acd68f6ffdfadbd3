// Command package-charts writes the tpctl chart archives
// (tp-operator-<version>.tgz, tp-core-instance-<version>.tgz) into a
// directory and prints "sha256  path" for each, like sha256sum.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tpctl/tpctl/charts"
)

func main() {
	version := flag.String("version", "", "build version; the chart version and appVersion (the operator image tag) are its SemVer form")
	out := flag.String("out", ".cache/release", "output directory")
	flag.Parse()
	pkgs, err := charts.Package(charts.SemVer(*version), *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "package-charts:", err)
		os.Exit(1)
	}
	for _, p := range pkgs {
		fmt.Printf("%s  %s\n", p.SHA256, p.Path)
	}
}
