package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
)

func installEvents() []installer.Event {
	ev := func(typ installer.EventType, i int, step, msg string) installer.Event {
		return installer.Event{Time: t0, Type: typ, Step: step, Index: i, Total: 5, Message: msg}
	}
	done := ev(installer.EventDone, 1, "preflight", "0 failures, 1 warning")
	done.Elapsed = 1200 * time.Millisecond
	skipped := ev(installer.EventSkipped, 2, "write K3s configuration", "")
	skipped.Elapsed = 5 * time.Millisecond
	prog := ev(installer.EventProgress, 3, "stage payload", "k3s-airgap-images-amd64.tar.zst")
	prog.Bytes, prog.BytesTotal = 96*1024*1024, 256*1024*1024
	warn := installer.Event{Time: t0, Type: installer.EventLog, Message: "swap is on: the kubelet is told to tolerate it", Warning: true}
	return []installer.Event{
		ev(installer.EventStarted, 1, "preflight", ""), warn, done,
		ev(installer.EventStarted, 2, "write K3s configuration", ""), skipped,
		ev(installer.EventStarted, 3, "stage payload", ""), prog,
	}
}

func feedInstall(m InstallModel, msgs ...tea.Msg) InstallModel {
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(InstallModel)
	}
	return m
}

func installModelWith(events []installer.Event) InstallModel {
	m := feedInstall(NewInstallModel(plain), tea.WindowSizeMsg{Width: screenW, Height: screenH})
	for _, e := range events {
		m = feedInstall(m, installEventMsg(e))
	}
	return m
}

func TestInstallScreenProgress(t *testing.T) {
	m := installModelWith(installEvents())
	s := m.View().Content
	assert.Contains(t, s, "[ok] preflight: 0 failures, 1 warning (1.2s)")
	assert.Contains(t, s, "[--] write K3s configuration: no change")
	assert.Contains(t, s, "[..] stage payload: k3s-airgap-images-amd64.tar.zst")
	assert.Contains(t, s, " 38%  96.0 MiB of 256.0 MiB", "the byte progress bar")
	assert.Contains(t, s, "[  ] …", "steps not started yet are listed")
	assert.Contains(t, s, "warning: swap is on")
	golden.RequireEqual(t, []byte(s))
}

func TestInstallScreenSummary(t *testing.T) {
	events := installEvents()
	for i := 3; i <= 5; i++ {
		name := map[int]string{3: "stage payload", 4: "start k3s.service", 5: "wait for the node"}[i]
		events = append(events, installer.Event{Type: installer.EventDone, Step: name, Index: i, Total: 5, Elapsed: time.Second})
	}
	m := installModelWith(events)
	m = feedInstall(m, installDoneMsg{summary: InstallSummary{
		Kubeconfig: "/etc/rancher/k3s/k3s.yaml",
		Endpoints:  []string{"API server: https://192.0.2.10:6443", "health check: tcp/2020"},
		Next:       []string{"tpctl pipeline create --name NAME --config-file FILE", "tpctl tui"},
		LogFile:    "/var/log/tpctl/install.log",
	}})
	done, err := m.Finished()
	assert.True(t, done)
	assert.NoError(t, err)
	s := m.View().Content
	assert.NotContains(t, s, "MiB of", "no progress bar once finished")
	assert.Contains(t, s, "Kubeconfig  /etc/rancher/k3s/k3s.yaml")
	golden.RequireEqual(t, []byte(s))
}

func TestInstallScreenFailure(t *testing.T) {
	events := installEvents()
	events = append(events, installer.Event{Type: installer.EventFailed, Step: "stage payload", Index: 3, Total: 5,
		Error: "sha256 of k3s-airgap-images-amd64.tar.zst is 1f2e…, want 9a8b…", Elapsed: 3 * time.Second})
	m := installModelWith(events)
	m = feedInstall(m, installDoneMsg{err: errors.New("stage payload: checksum mismatch"), summary: InstallSummary{LogFile: "/var/log/tpctl/install.log"}})
	s := m.View().Content
	assert.Contains(t, s, "[!!] stage payload: failed: sha256")
	assert.Contains(t, s, "Install failed: stage payload: checksum mismatch")
	golden.RequireEqual(t, []byte(s))
}

func TestInstallStepsWithoutIndex(t *testing.T) {
	m := installModelWith([]installer.Event{
		{Type: installer.EventStarted, Step: "uninstall"},
		{Type: installer.EventDone, Step: "uninstall"},
	})
	require.Len(t, m.steps, 1, "an event without an index is found by name")
	assert.Equal(t, stepDone, m.steps[0].state)
}

func TestRunInstallShowsTheStreamAndReturnsTheError(t *testing.T) {
	var out strings.Builder
	in := strings.NewReader("")
	boom := errors.New("boom")
	err := RunInstall(context.Background(), in, &out, nil, func(_ context.Context, ev installer.Events) (InstallSummary, error) {
		for _, e := range installEvents()[:3] {
			ev.Emit(e)
		}
		return InstallSummary{}, boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Contains(t, out.String(), "preflight")
	assert.Contains(t, out.String(), "Install failed: boom")

	out.Reset()
	err = RunInstall(context.Background(), strings.NewReader(""), &out, nil, func(_ context.Context, ev installer.Events) (InstallSummary, error) {
		ev.Emit(installer.Event{Type: installer.EventDone, Step: "preflight", Index: 1, Total: 1})
		return InstallSummary{Kubeconfig: "/etc/rancher/k3s/k3s.yaml"}, nil
	})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "Installed.")
}

func TestRunInstallInterruptCancelsTheRun(t *testing.T) {
	tm := teatest.NewTestModel(t, NewInstallModel(plain), teatest.WithInitialTermSize(screenW, screenH))
	tm.Send(installEventMsg(installEvents()[0]))
	tm.Send(keyMsg("ctrl+c"))
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(InstallModel)
	_, err := fm.Finished()
	assert.EqualError(t, err, "interrupted")
}

func TestNewInstallSummary(t *testing.T) {
	s := NewInstallSummary("/etc/rancher/k3s/k3s.yaml", "/var/log/tpctl/install.log", "API server: https://192.0.2.10:6443")
	assert.Equal(t, "/etc/rancher/k3s/k3s.yaml", s.Kubeconfig)
	assert.Equal(t, []string{"API server: https://192.0.2.10:6443"}, s.Endpoints)
	require.Len(t, s.Next, 4)
	assert.Contains(t, s.Next[1], "tpctl pipeline create --name NAME")
	m := feedInstall(NewInstallModel(plain), installDoneMsg{summary: s})
	assert.Contains(t, m.View().Content, "tpctl tui")
}

func TestInstallScreenNamesEveryStepUpFront(t *testing.T) {
	names := []string{"preflight", "write K3s configuration", "stage payload", "start K3s", "wait for node"}
	m := feedInstall(NewInstallModel(plain).WithSteps(names...), tea.WindowSizeMsg{Width: screenW, Height: screenH})
	for _, e := range installEvents() {
		m = feedInstall(m, installEventMsg(e))
	}
	s := m.View().Content
	assert.Contains(t, s, "[ok] preflight: 0 failures, 1 warning (1.2s)")
	assert.Contains(t, s, "[..] stage payload")
	assert.Contains(t, s, "[  ] start K3s", "a step that has not started is named")
	assert.Contains(t, s, "[  ] wait for node")
	assert.NotContains(t, s, "[  ] …")
}
