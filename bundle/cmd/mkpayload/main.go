// Command mkpayload prepares the release payload (see bundle/internal/payloadgen):
//
//	mkpayload k3s -dir DIR -version V
//	    check DIR's K3s files against the release's sha256sum files and
//	    write DIR/manifest.json
//	mkpayload pipeline-image -ref REF -digest sha256:D -arch A -o FILE [-mirror HOST]
//	    fetch the pinned image for linux/A, check it against the digest and
//	    write it to FILE as a docker-archive tagged REF
//	mkpayload assemble -arch A -out bundle/payload -k3s DIR [-chart F]... [-operator-image F] [-pipeline-image F]
//	    fill bundle/payload with architecture A's artifacts and manifest.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

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
		return fmt.Errorf("usage: mkpayload k3s|pipeline-image|assemble [flags]")
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
	case "pipeline-image":
		var pin payloadgen.ImagePin
		fs.StringVar(&pin.Ref, "ref", "", "the image's tag reference, as pods name it")
		fs.StringVar(&pin.Digest, "digest", "", "sha256 digest of the tag's manifest list")
		fs.StringVar(&pin.Mirror, "mirror", "", "registry host[:port] serving the same repository (optional)")
		arch := fs.String("arch", "", "architecture (GOARCH)")
		dst := fs.String("o", "", "archive to write")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *arch == "" || *dst == "" {
			return fmt.Errorf("pipeline-image needs -arch and -o")
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		digest, err := payloadgen.FetchImage(ctx, pin, *arch, *dst)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s for linux/%s (manifest %s), checked against %s\n", *dst, pin.Ref, *arch, digest, pin.Digest)
		return nil
	case "assemble":
		arch := fs.String("arch", "", "architecture (GOARCH)")
		out := fs.String("out", "bundle/payload", "payload directory")
		k3sDir := fs.String("k3s", "", "K3s release directory (with manifest.json from `mkpayload k3s`)")
		var charts, images, pipelineImages list
		fs.Var(&charts, "chart", "chart archive NAME-VERSION.tgz (repeatable)")
		fs.Var(&images, "operator-image", "operator image archive NAME-VERSION.tar for -arch (repeatable)")
		fs.Var(&pipelineImages, "pipeline-image", "default pipeline image archive NAME-VERSION.tar for -arch (repeatable)")
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
		for _, i := range pipelineImages {
			extras = append(extras, payloadgen.Extra{Path: i, Kind: bundle.KindPipelineImage, Arch: *arch})
		}
		m, err := payloadgen.Assemble(*out, *arch, *k3sDir, &k3s, extras)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d artifacts for %s\n", *out, len(m.Artifacts), *arch)
		return nil
	}
	return fmt.Errorf("unknown sub-command %q (want k3s, pipeline-image or assemble)", args[0])
}
