//go:build e2e

package install

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
)

// Paths inside the host.
const (
	e2eDir      = "/root/tpctl-e2e"
	tpctlBin    = e2eDir + "/tpctl"
	launcherBin = e2eDir + "/k3s"
	configFile  = e2eDir + "/install.yaml"
	nodeIP      = "10.99.0.1"
)

// installConfig is what a user of a machine like this writes: the node
// address (a /32 the test put on lo) and air-gap images only. Nothing is
// disabled: K3s's packaged Traefik, service load balancer, local storage
// and metrics-server run, as after `tpctl install --yes` on any host.
const installConfig = `nodeIP: ` + nodeIP + `
airGap: true
`

// tpctlRun is one tpctl process inside the host.
type tpctlRun struct {
	events []installer.Event
	stderr string
	err    error
	killed bool
	took   time.Duration
}

// stepEvent returns the last event of type typ for step.
func (r tpctlRun) stepEvent(step string, typ installer.EventType) (installer.Event, bool) {
	for i := len(r.events) - 1; i >= 0; i-- {
		if e := r.events[i]; e.Step == step && e.Type == typ {
			return e, true
		}
	}
	return installer.Event{}, false
}

// outcome maps each step to its final event type (done, skipped, failed).
func (r tpctlRun) outcome() map[string]installer.EventType {
	out := map[string]installer.EventType{}
	for _, e := range r.events {
		switch e.Type {
		case installer.EventDone, installer.EventSkipped, installer.EventFailed:
			out[e.Step] = e.Type
		}
	}
	return out
}

func (r tpctlRun) String() string {
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "  %s %s %s %s\n", e.Type, e.Step, e.Message, e.Error)
	}
	fmt.Fprintf(&b, "stderr: %s\nerr: %v", r.stderr, r.err)
	return b.String()
}

// tpctl runs `tpctl args… -o json` inside the host, collecting the events.
// When kill is not nil, the tpctl process is sent SIGKILL as soon as kill
// returns true for an event. started, when not nil, is closed at the first
// event (the run then holds the install lock).
func tpctl(ctx context.Context, h *hosttest.Host, kill func(installer.Event) bool, started chan<- struct{}, args ...string) tpctlRun {
	args = append(append([]string{tpctlBin}, args...), "-o", "json")
	cmd := h.Command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return tpctlRun{err: err}
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return tpctlRun{err: err}
	}
	var r tpctlRun
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var e installer.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		r.events = append(r.events, e)
		if started != nil {
			close(started)
			started = nil
		}
		if kill != nil && !r.killed && kill(e) {
			r.killed = true
			killInner(cmd.Process.Pid)
		}
	}
	_, _ = io.Copy(io.Discard, out)
	r.err = cmd.Wait()
	r.took = time.Since(begin)
	r.stderr = stderr.String()
	if started != nil {
		close(started)
	}
	return r
}

// killInner sends SIGKILL to the process nsenter runs (its child inside the
// host's PID namespace): killing nsenter alone would leave it running.
func killInner(nsenter int) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nsenter, nsenter))
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// installArgs are the flags of every install run.
func installArgs(archives []string) []string {
	args := []string{"install", "--config", configFile, "--k3s-binary", launcherBin, "--yes",
		"--pipeline-image", images.SinkRef, "--pipeline-arg=--http=:2020"}
	for _, img := range archives {
		args = append(args, "--k3s-images", e2eDir+"/images/"+filepath.Base(img))
	}
	return args
}

// prepareHost copies the artifacts in and gives the node its address, as an
// operator would before installing; the snapshot that uninstall is compared
// with is taken after this.
func prepareHost(ctx context.Context, t *testing.T, h *hosttest.Host, a artifacts) {
	t.Helper()
	require.NoError(t, h.CopyIn(a.tpctl, tpctlBin, 0o755))
	require.NoError(t, h.CopyIn(a.launcher, launcherBin, 0o755))
	for _, img := range a.images {
		require.NoError(t, h.CopyIn(img, e2eDir+"/images/"+filepath.Base(img), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(h.Root(), configFile), []byte(installConfig), 0o644))
	_, err := h.Exec(ctx, "ip", "addr", "add", nodeIP+"/32", "dev", "lo")
	require.NoError(t, err)
}
