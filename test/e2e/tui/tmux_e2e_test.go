//go:build e2e

// Package tui runs the built tpctl binary: `tpctl tui` in a tmux session
// (keys in with send-keys, the screen out with capture-pane) against a real
// API server with the operator, and, on the full node, a pipeline created
// with `tpctl pipeline create --wait` that receives data at the address
// `tpctl pipeline endpoints` prints.
package tui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/testenv"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
)

// tmux drives one session on a tmux server of the test's own.
type tmux struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/test-deps installs it)")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	x := &tmux{t: t, socket: "tpctl-e2e-" + hex.EncodeToString(b)}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", x.socket, "kill-server").Run() })
	return x
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	require.NoError(x.t, err, "tmux %v: %s", args, out)
	return string(out)
}

// start opens a session of w×h running argv with env (added to a clean
// environment), keeping the pane when the program exits.
func (x *tmux) start(name string, w, h int, env []string, argv ...string) {
	x.t.Helper()
	args := []string{"new-session", "-d", "-s", name, "-x", itoa(w), "-y", itoa(h)}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	x.run(append(args, argv...)...)
	x.run("set-option", "-t", name, "remain-on-exit", "on")
}

func (x *tmux) keys(target string, keys ...string) {
	x.t.Helper()
	x.run(append([]string{"send-keys", "-t", target}, keys...)...)
}

// typeText sends text literally.
func (x *tmux) typeText(target, text string) {
	x.t.Helper()
	x.run("send-keys", "-t", target, "-l", text)
}

func (x *tmux) capture(target string, escapes bool) string {
	x.t.Helper()
	args := []string{"capture-pane", "-p", "-t", target}
	if escapes {
		args = append(args, "-e")
	}
	return x.run(args...)
}

// waitScreen waits until the pane shows every part and returns the screen.
func (x *tmux) waitScreen(target string, parts ...string) string {
	x.t.Helper()
	var s string
	ok := assert.Eventually(x.t, func() bool {
		s = x.capture(target, false)
		for _, p := range parts {
			if !strings.Contains(s, p) {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond)
	if !ok {
		x.t.Fatalf("screen never showed %q; last screen:\n%s", parts, s)
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

var colourSGR = regexp.MustCompile(`\x1b\[[0-9;]*(3[0-9]|38;[0-9;]+)m`)

func TestTUIInTmux(t *testing.T) {
	ctx := context.Background()
	bin := e2etest.BuildTpctl(t)
	x := newTmux(t)
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	// A shell runs tpctl and writes its exit status to a file: tmux can
	// drop a pane's last output when its program exits, and can show a dead
	// pane before it reaps the program.
	statusFile := filepath.Join(t.TempDir(), "status")
	tui := []string{bin, "tui", "--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace}
	argv := append([]string{"sh", "-c", `status=$1; shift; "$@"; echo $? >"$status"`, "sh", statusFile}, tui...)
	// The pane's environment is the test's own, with CI unset: the pane is a
	// colour terminal whatever runs the test (CI=true as CI runs it).
	base := []string{"TERM=xterm-256color", "CI=", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}

	x.start("tui", 120, 36, base, argv...)
	s := x.waitScreen("tui", "core-health ♥", "namespace "+env.Namespace, "q quit")
	t.Logf("first screen:\n%s", s)

	// Create a pipeline with the form: name, then a port through the list editor.
	x.keys("tui", "n")
	x.waitScreen("tui", "Create a pipeline in namespace "+env.Namespace)
	x.typeText("tui", "syslog")
	x.keys("tui", "C-n")
	x.typeText("tui", "udp/5140")
	x.keys("tui", "Enter")
	x.typeText("tui", "tcp/2020")
	x.keys("tui", "C-s")
	s = x.waitScreen("tui", "pipeline syslog created", "2021 ↑moved", "FrontendReassigned")
	t.Logf("detail screen:\n%s", s)
	assert.Contains(t, s, "udp-5140        udp   5140")
	x.keys("tui", "Escape")
	s = x.waitScreen("tui", "2 pipelines", "syslog", "udp/5140, tcp/2021->2020")
	t.Logf("list screen:\n%s", s)

	p := &v1alpha1.Pipeline{}
	require.NoError(t, env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "syslog"}, p))
	assert.Equal(t, []v1alpha1.PipelinePort{{Protocol: "UDP", Port: 5140}, {Protocol: "TCP", Port: 2020}}, p.Spec.Ports)
	svc := &corev1.Service{}
	require.Eventually(t, func() bool {
		return env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "syslog"}, svc) == nil && len(svc.Spec.Ports) == 2
	}, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, int32(2021), svc.Spec.Ports[1].Port, "tcp/2020 is the health check's: frontend 2021")

	// The logs page of the pipeline opens on its reader (this API server runs
	// no pods: the page follows and says it waits for them), and esc ends it.
	x.keys("tui", "/")
	x.typeText("tui", "syslog")
	x.keys("tui", "Enter", "l")
	s = x.waitScreen("tui", "Logs of pipeline syslog", "following", "esc back")
	t.Logf("logs screen:\n%s", s)
	assert.NotContains(t, s, "read the logs of pipeline", "the reader started: %s", s)
	x.keys("tui", "Escape")
	x.waitScreen("tui", "Pipelines ·", "filter: syslog")

	// Its secrets page sets one through the masked input: the real Secret
	// holds the value, the screen only its mask and size.
	value := "e2e-" + hex.EncodeToString([]byte(env.Namespace))
	x.keys("tui", "Enter", "s")
	x.waitScreen("tui", "Secrets of pipeline syslog", "This pipeline has no secrets")
	x.keys("tui", "a")
	x.typeText("tui", "API_TOKEN")
	x.keys("tui", "Tab")
	x.typeText("tui", value)
	x.waitScreen("tui", strings.Repeat("•", len(value)))
	x.keys("tui", "Enter")
	s = x.waitScreen("tui", "secret API_TOKEN set", "API_TOKEN  "+itoa(len(value))+" bytes")
	t.Logf("secrets screen:\n%s", s)
	assert.NotContains(t, x.capture("tui", true), value)
	sec := &corev1.Secret{}
	require.NoError(t, env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: v1alpha1.SecretsName("syslog")}, sec))
	assert.Equal(t, value, string(sec.Data["API_TOKEN"]))
	x.keys("tui", "Escape")
	x.waitScreen("tui", "Pipeline syslog")
	x.keys("tui", "Escape")
	x.waitScreen("tui", "Pipelines ·", "filter: syslog")
	x.keys("tui", "Escape")
	x.waitScreen("tui", "2 pipelines", "core-health")

	// Colours are on in a colour terminal; the screen survives a resize.
	assert.Regexp(t, colourSGR, x.capture("tui", true))
	x.run("resize-window", "-t", "tui", "-x", "80", "-y", "20")
	s = x.waitScreen("tui", "core-health", "udp/5140, tcp/2021->2020", "d delete")
	t.Logf("screen at 80x20:\n%s", s)
	assert.Contains(t, s, "udp/5140, tcp/2021->2020", "narrow screens keep the ports column")
	for i, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		assert.LessOrEqual(t, len([]rune(line)), 80, "line %d after the resize: %q", i+1, line)
	}

	// Delete with confirmation.
	x.keys("tui", "/")
	x.typeText("tui", "syslog")
	x.keys("tui", "Enter", "d")
	x.waitScreen("tui", `Delete pipeline "syslog"?`)
	x.keys("tui", "y")
	x.waitScreen("tui", "pipeline syslog deleted")
	require.Eventually(t, func() bool {
		return env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "syslog"}, &v1alpha1.Pipeline{}) != nil
	}, 30*time.Second, 100*time.Millisecond)

	x.keys("tui", "q")
	assert.Equal(t, "0", waitExit(t, statusFile), "q ends tpctl tui with status 0")

	// Without colours (NO_COLOR) the same screen carries no colour codes.
	x.start("plain", 120, 36, append(base, "NO_COLOR=1"), argv...)
	s = x.waitScreen("plain", "core-health (hc)")
	t.Logf("screen without colours:\n%s", s)
	assert.NotRegexp(t, colourSGR, x.capture("plain", true))
	x.keys("plain", "q")
	assert.Equal(t, "0", waitExit(t, statusFile))
}

// waitExit waits for the pane's program to end and returns the exit status
// its shell wrote to file.
func waitExit(t *testing.T, file string) string {
	t.Helper()
	var status string
	assert.Eventually(t, func() bool {
		b, err := os.ReadFile(file)
		status = strings.TrimSpace(string(b))
		return err == nil && status != ""
	}, 30*time.Second, 100*time.Millisecond, "the program never ended")
	require.NoError(t, os.Remove(file))
	return status
}

func TestTUIRefusesWithoutATerminal(t *testing.T) {
	bin := e2etest.BuildTpctl(t)
	cmd := exec.Command(bin, "tui", "--kubeconfig", "/nonexistent")
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "use the sub-commands")
}
