package command

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
)

// `tpctl operator` and tpctl-operator are one command: the same flags with
// the same defaults (the chart passes flags only, to either binary).
func TestBothNamesTakeTheSameFlags(t *testing.T) {
	flags := func(use string) map[string]string {
		out := map[string]string{}
		New(use).Flags().VisitAll(func(f *pflag.Flag) { out[f.Name] = f.DefValue })
		return out
	}
	a, b := flags("operator"), flags("tpctl-operator")
	assert.Equal(t, a, b)
	for _, name := range []string{"kubeconfig", "leader-elect", "leader-election-namespace", "metrics-bind-address",
		"health-probe-bind-address", "default-image", "node-port-range", "workers", "namespace", "node-condition",
		"reserve", "packaged-component", "verbose"} {
		assert.Contains(t, a, name, "the chart's deployment passes --%s", name)
	}
}

// A bad flag value is a usage error, found before any API server is asked.
func TestBadPortRangeIsAUsageError(t *testing.T) {
	cmd := New("tpctl-operator")
	cmd.SetArgs([]string{"--node-port-range=bogus", "--kubeconfig=/nonexistent"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	require.Error(t, err)
	var usage *cli.UsageError
	assert.True(t, errors.As(err, &usage), "%v", err)
}
