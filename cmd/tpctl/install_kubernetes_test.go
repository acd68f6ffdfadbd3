package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
)

func TestTargetFlagsRefuseTheOtherTargetsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install", "--target", "kubernetes", "--data-dir", "/srv/k3s"}, "--data-dir: not a flag of --target kubernetes"},
		{[]string{"install", "--target", "kubernetes", "--skip-charts"}, "--skip-charts: not a flag of --target kubernetes"},
		{[]string{"install", "--kubeconfig", "/k", "--operator-image", "r/o:1"}, "--kubeconfig, --operator-image needs --target kubernetes"},
		{[]string{"install", "--target", "cloud"}, `--target "cloud"`},
		{[]string{"install", "--target", "kubernetes", "--service-type", "ExternalName", "--operator-image", "r/o:1"}, `--service-type "ExternalName"`},
		{[]string{"install", "--target", "kubernetes", "--operator-image", "r/o"}, "name a tag"},
		{[]string{"uninstall", "--target", "kubernetes", "--keep-data", "--operator-image", "x"}, "unknown flag: --operator-image"},
		{[]string{"uninstall", "--context", "prod"}, "--context needs --target kubernetes"},
	} {
		r := mgmtRun(t, newRootCmd(), "", tc.args...)
		require.Error(t, r.err, tc.args)
		assert.Contains(t, r.err.Error(), tc.want, tc.args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), tc.args)
	}
}

func TestInstallKubernetesWithoutAPublishedImageNamesTheFlag(t *testing.T) {
	// A plain build publishes no operator image: refuse, never invent one.
	r := mgmtRun(t, newRootCmd(), "", "install", "--target", "kubernetes", "--kubeconfig", "/nonexistent", "--dry-run")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "pass --operator-image REF")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
}
