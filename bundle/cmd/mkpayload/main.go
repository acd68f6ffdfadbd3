// Command mkpayload prepares the release payload (see bundle/internal/payloadgen):
//
//	mkpayload k3s -dir DIR -version V
//	    check DIR's K3s files against the release's sha256sum files and
//	    write DIR/manifest.json
//	mkpayload assemble -arch A -out bundle/payload -k3s DIR [-chart F]... [-operator-image F]
//	    fill bundle/payload with architecture A's artifacts and manifest.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/bundle/internal/payloadgen"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkpayload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mkpayload k3s|assemble [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "k3s":
		dir := fs.String("dir", "", "directory with the downloaded K3s release files")
		version := fs.String("version", "", "K3s version")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		m, err := payloadgen.K3sManifest(*dir, *version)
		if err != nil {
			return err
		}
		return payloadgen.WriteManifest(filepath.Join(*dir, bundle.ManifestFile), m)
	case "assemble":
		arch := fs.String("arch", "", "architecture (GOARCH)")
		out := fs.String("out", "bundle/payload", "payload directory")
		k3sDir := fs.String("k3s", "", "K3s release directory (with manifest.json from `mkpayload k3s`)")
		var charts, images list
		fs.Var(&charts, "chart", "chart archive NAME-VERSION.tgz (repeatable)")
		fs.Var(&images, "operator-image", "operator image archive NAME-VERSION.tar for -arch (repeatable)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(*k3sDir, bundle.ManifestFile))
		if err != nil {
			return fmt.Errorf("read the K3s manifest (run `mkpayload k3s` first): %w", err)
		}
		var k3s bundle.Manifest
		if err := json.Unmarshal(raw, &k3s); err != nil {
			return fmt.Errorf("read the K3s manifest: %w", err)
		}
		var extras []payloadgen.Extra
		for _, c := range charts {
			extras = append(extras, payloadgen.Extra{Path: c, Kind: bundle.KindChart})
		}
		for _, i := range images {
			extras = append(extras, payloadgen.Extra{Path: i, Kind: bundle.KindOperatorImage, Arch: *arch})
		}
		m, err := payloadgen.Assemble(*out, *arch, *k3sDir, &k3s, extras)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d artifacts for %s\n", *out, len(m.Artifacts), *arch)
		return nil
	}
	return fmt.Errorf("unknown sub-command %q (want k3s or assemble)", args[0])
}
