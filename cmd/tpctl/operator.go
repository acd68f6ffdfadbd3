package main

import (
	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/operator/command"
)

// newOperatorCmd is `tpctl operator`: the same command as the dedicated
// tpctl-operator binary (cmd/tpctl-operator) that the release's operator
// image runs; an image built from the tpctl binary itself runs this one.
func newOperatorCmd() *cobra.Command { return command.New("operator") }
