package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
)

func TestInstallChartFlagsAreCheckedBeforeAnything(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--instance-name", "Core"}, "--instance-name"},
		{[]string{"--pipeline-arg", "--http"}, "--pipeline-arg needs --pipeline-image"},
		{[]string{"--pipeline-image", "a b"}, "--pipeline-image"},
	} {
		_, err := runCmd(t, newInstallCmd(), append(c.args, "--dry-run", "--k3s-binary", "/nonexistent/k3s")...)
		require.Error(t, err, c.args)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(err), "%v: %v", c.args, err)
		assert.Contains(t, err.Error(), c.want)
	}
}

func TestInstallChartFlagsAreRegistered(t *testing.T) {
	cmd := newInstallCmd()
	for name, def := range map[string]string{"skip-charts": "false", "instance-name": "core", "pipeline-image": "", "pipeline-arg": "[]"} {
		f := cmd.Flags().Lookup(name)
		require.NotNil(t, f, name)
		assert.Equal(t, def, f.DefValue, name)
	}
	assert.Contains(t, cmd.Long, "--skip-charts stops at")
}
