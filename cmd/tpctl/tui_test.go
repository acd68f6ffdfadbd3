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
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
	"github.com/tpctl/tpctl/tui"
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
	r := mgmtRun(t, newTUICmdWith(d, noLogs(t)), "")
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
	r := mgmtRun(t, newTUICmdWith(d, noLogs(t)), "")
	assert.EqualError(t, r.err, "no kubeconfig found")
	assert.Equal(t, cli.ExitError, cli.ExitCode(r.err))
}

// noLogs is a logs connection a test does not expect to be made.
func noLogs(t *testing.T) tuiLogsConnect {
	return func(string, string) (tui.LogReader, error) {
		t.Error("the log reader is not connected")
		return nil, errors.New("unexpected")
	}
}

// The logs page's reader is connected with the kubeconfig flag and the
// namespace the manager's client resolved; a failure stops the command
// before the screen is taken.
func TestTUIConnectsTheLogReader(t *testing.T) {
	d := clusterDeps{
		connect:    func(string, string) (clusterClient, error) { return managetest.NewMemory("from-context"), nil },
		isTerminal: func(any) bool { return true },
		now:        time.Now,
	}
	var gotKubeconfig, gotNamespace string
	logs := func(kubeconfig, namespace string) (tui.LogReader, error) {
		gotKubeconfig, gotNamespace = kubeconfig, namespace
		return nil, errors.New("create Kubernetes client for https://127.0.0.1:6443: bad TLS data")
	}
	r := mgmtRun(t, newTUICmdWith(d, logs), "", "--kubeconfig", "/k/config")
	assert.EqualError(t, r.err, "create Kubernetes client for https://127.0.0.1:6443: bad TLS data")
	assert.Equal(t, "/k/config", gotKubeconfig)
	assert.Equal(t, "from-context", gotNamespace, "the namespace the client resolved")
	assert.Empty(t, r.out, "the screen was not taken")
}

// manage.LogReader is what the logs page reads with.
var _ tui.LogReader = (*manage.LogReader)(nil)

func TestRendererWithoutColours(t *testing.T) {
	assert.Equal(t, colorprofile.ASCII, renderer(&bytes.Buffer{}).Profile, "not a terminal: no colours")
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, colorprofile.ASCII, renderer(f).Profile, "a file is not a colour terminal")
}
