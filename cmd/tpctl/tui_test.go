package main

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage/managetest"
)

func TestTUIRefusesWithoutATerminal(t *testing.T) {
	connected := false
	d := clusterDeps{
		connect: func(string, string) (clusterClient, error) {
			connected = true
			return managetest.NewMemory("tp"), nil
		},
		isTerminal: func(any) bool { return false },
		now:        time.Now,
	}
	r := mgmtRun(t, newTUICmdWith(d), "")
	require.Error(t, r.err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.Contains(t, r.err.Error(), "needs an interactive terminal")
	assert.Contains(t, r.err.Error(), "tpctl pipeline list|get|create|update|delete|endpoints")
	assert.False(t, connected, "nothing is contacted")
}

func TestTUIReportsConnectionErrors(t *testing.T) {
	d := clusterDeps{
		connect:    func(string, string) (clusterClient, error) { return nil, errors.New("no kubeconfig found") },
		isTerminal: func(any) bool { return true },
		now:        time.Now,
	}
	r := mgmtRun(t, newTUICmdWith(d), "")
	assert.EqualError(t, r.err, "no kubeconfig found")
	assert.Equal(t, cli.ExitError, cli.ExitCode(r.err))
}

func TestRendererWithoutColours(t *testing.T) {
	assert.Equal(t, colorprofile.ASCII, renderer(&bytes.Buffer{}).Profile, "not a terminal: no colours")
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, colorprofile.ASCII, renderer(f).Profile, "a file is not a colour terminal")
}
