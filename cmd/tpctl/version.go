package main

import (
	"fmt"

	"github.com/spf13/cobra"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
)

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of tpctl",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON, cli.YAML)
			if err != nil {
				return err
			}
			info := buildinfo.Get()
			payload, err := bundle.Describe()
			if err != nil {
				return err
			}
			if f != cli.Table {
				return cli.Encode(cmd.OutOrStdout(), f, struct {
					buildinfo.Info
					Payload bundle.Description `json:"payload"`
				}{info, payload})
			}
			w := cmd.OutOrStdout()
			dirty := ""
			if info.Dirty {
				dirty = " (modified)"
			}
			fmt.Fprintf(w, "tpctl %s\n", info.Version)
			if warn := noK3sWarning(payload); warn != "" {
				fmt.Fprintln(w, warn)
			}
			if info.Variant != "" {
				fmt.Fprintf(w, "  variant:  %s\n", info.Variant)
			}
			fmt.Fprintf(w, "  commit:   %s%s\n", info.Commit, dirty)
			if info.Date != "" {
				fmt.Fprintf(w, "  built:    %s\n", info.Date)
			}
			fmt.Fprintf(w, "  go:       %s\n", info.GoVersion)
			fmt.Fprintf(w, "  platform: %s\n", info.Platform)
			return bundle.WriteDescription(w, payload)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table|json|yaml")
	return cmd
}

// noK3sWarning is the line `tpctl version` leads with when the binary carries
// no K3s (a plain build, or `make release-nopayload`).
func noK3sWarning(d bundle.Description) string {
	for _, m := range d.Missing {
		if m.Requirement.Kind == bundle.KindK3sBinary {
			return "  WARNING:  NO K3S PAYLOAD in this binary: tpctl install needs --k3s-binary PATH (or a supported K3s already at /usr/local/bin/k3s)"
		}
	}
	return ""
}
