//go:build e2e

package install

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/hosttest"
)

// TestInstallOnBootedHost runs tpctl install and uninstall inside a booted
// Debian whose PID 1 is systemd, exactly as a user would, and checks the
// result through systemd itself, the node through kubectl, and the host
// through before/after snapshots.
func TestInstallOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-e2e", hosttest.Options{})
	ok := t.Run("install", e.install) &&
		t.Run("second install changes nothing", e.secondInstall) &&
		t.Run("concurrent runs: one refuses", e.concurrent) &&
		t.Run("restarted after kill -9", e.restartAfterKill) &&
		t.Run("pods survive a restart", e.podsSurviveRestart) &&
		t.Run("uninstall leaves the host as before", e.uninstall)
	if !ok {
		return
	}
	_ = t.Run("killed after staging, resumed", func(t *testing.T) { e.killAndResume(t, "stage payload", installer.EventDone) }) &&
		t.Run("uninstall after resume", e.uninstall) &&
		t.Run("killed after the unit is written, resumed", func(t *testing.T) { e.killAndResume(t, "write unit", installer.EventDone) }) &&
		t.Run("killed while waiting for the node, resumed", func(t *testing.T) { e.killAndResume(t, "wait for node", installer.EventStarted) }) &&
		t.Run("final uninstall", e.uninstall) &&
		t.Run("without servicelb: the health check on a node port", e.nodePortInstall) &&
		t.Run("uninstall without servicelb", e.uninstall)
}

// nodePortInstall installs with servicelb disabled (the one configuration
// here that disables anything: without a service load balancer pipelines
// default to NodePort, and 2020 is outside the node port range). The
// summary must print the node port URL, and that URL answers the first
// request right after install returned.
func (e *e2e) nodePortInstall(t *testing.T) {
	ctx := e.ctx(t, 10*time.Minute)
	// The configuration goes to /tmp, outside the snapshot.
	cfg := manifestPath("install-nodeport.yaml")
	require.NoError(t, os.WriteFile(e.h.Path(cfg), []byte(installConfig+"disable: [servicelb]\n"), 0o644))
	args := installArgs(e.a.images)
	for i := range args {
		if args[i] == configFile {
			args[i] = cfg
		}
	}
	r := tpctl(ctx, e.h, nil, nil, args...)
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE install without servicelb: %s", r.took.Round(time.Millisecond))
	url := e.healthURLAnswersAtOnce(t, r)
	_, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), installer.HealthCheckPath))
	require.NoError(t, err, url)
	n, err := strconv.Atoi(port)
	require.NoError(t, err, url)
	assert.True(t, n >= 30000 && n <= 32767, "the health check's URL %s is a node port (30000-32767), not %d", url, installer.HealthCheckPort)
}

type e2e struct {
	t      *testing.T
	h      *hosttest.Host
	a      artifacts
	before hosttest.Snapshot
}

func (e *e2e) ctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// install: the first install, timed, then checked through systemd and kubectl.
func (e *e2e) install(t *testing.T) {
	ctx := e.ctx(t, 10*time.Minute)
	r := tpctl(ctx, e.h, nil, nil, installArgs(e.a.images)...)
	require.NoError(t, r.err, "%s", r)
	e.healthURLAnswersAtOnce(t, r)
	e.nextCommandsSucceed(t, r)
	for step, typ := range r.outcome() {
		assert.NotEqual(t, installer.EventFailed, typ, step)
	}
	started, _ := r.stepEvent("start K3s", installer.EventDone)
	var k3sBound time.Duration
	for _, step := range []string{"start K3s", "containerd template", "wait for node"} {
		if ev, ok := r.stepEvent(step, installer.EventDone); ok {
			k3sBound += ev.Elapsed
		}
	}
	k3sActive := started.Time.Sub(r.events[0].Time)
	// Up to K3s's READY=1 (its API server answers), everything but the
	// "start K3s" step (systemd waiting for READY=1) is tpctl's own.
	t.Logf("FIGURE install: %s in all; K3s active (READY=1 at /readyz, end of \"start K3s\") %s after the first event, "+
		"of which tpctl's own share %s (K3s starting: %s); after that K3s-bound %s (containerd restart, node Ready, add-ons), charts and the rest %s",
		r.took.Round(time.Millisecond), k3sActive.Round(time.Millisecond), (k3sActive - started.Elapsed).Round(time.Millisecond),
		started.Elapsed.Round(time.Millisecond), (k3sBound - started.Elapsed).Round(time.Millisecond),
		(r.took - k3sActive - (k3sBound - started.Elapsed)).Round(time.Millisecond))
	for _, ev := range r.events {
		if ev.Type == installer.EventDone || ev.Type == installer.EventSkipped {
			t.Logf("  step %-22s %-7s %s %s", ev.Step, ev.Type, ev.Elapsed.Round(time.Millisecond), ev.Message)
		}
	}
	e.checkUnit(ctx, t)
	e.checkNode(ctx, t)
	if _, ok := r.stepEvent("wait for core instance", installer.EventDone); ok {
		e.checkOperator(ctx, t)
	} else {
		t.Log("the operator and core-instance charts are not part of this install: the operator and health-check checks did not run")
	}
}

// checkOperator: the operator pods run and the core instance's health-check
// pipeline (TCP 2020) answers on its Service address from the host.
func (e *e2e) checkOperator(ctx context.Context, t *testing.T) {
	out, err := e.kubectl(ctx, "-n", installer.OperatorNamespace, "get", "pods", "-o", "jsonpath={.items[*].status.phase}")
	require.NoError(t, err)
	require.NotEmpty(t, strings.Fields(out))
	for _, phase := range strings.Fields(out) {
		assert.Equal(t, "Running", phase)
	}
	out, err = e.kubectl(ctx, "get", "services", "-A", "-o",
		`jsonpath={range .items[?(@.spec.ports[0].port==2020)]}{.spec.clusterIP}{"\n"}{end}`)
	require.NoError(t, err)
	ips := strings.Fields(out)
	require.NotEmpty(t, ips, "no Service on port 2020 (the health-check pipeline)")
	require.Eventually(t, func() bool {
		out, err := e.h.Exec(ctx, "curl", "-sS", "-m", "3", "http://"+ips[0]+":2020/healthz")
		return err == nil && strings.TrimSpace(out) == "ok"
	}, 2*time.Minute, 2*time.Second, "the health-check pipeline does not answer on %s:2020", ips[0])
}

// checkUnit asserts through systemd (D-Bus) that k3s.service is installed,
// enabled, active and has the properties of DESIGN.md.
func (e *e2e) checkUnit(ctx context.Context, t *testing.T) {
	sd, err := e.h.Systemd(ctx)
	require.NoError(t, err)
	defer sd.Close()
	u, err := sd.GetUnitPropertiesContext(ctx, installer.UnitName)
	require.NoError(t, err)
	assert.Equal(t, "loaded", u["LoadState"])
	assert.Equal(t, "active", u["ActiveState"])
	assert.Equal(t, "running", u["SubState"])
	assert.Equal(t, "enabled", u["UnitFileState"])
	assert.Equal(t, installer.UnitPath, u["FragmentPath"])
	s, err := sd.GetUnitTypePropertiesContext(ctx, installer.UnitName, "Service")
	require.NoError(t, err)
	assert.Equal(t, "notify", s["Type"])
	assert.Equal(t, "process", s["KillMode"])
	assert.Equal(t, true, s["Delegate"])
	assert.Equal(t, uint64(1048576), s["LimitNOFILE"])
	assert.Equal(t, uint64(1<<64-1), s["TasksMax"], "TasksMax=infinity")
	assert.Equal(t, uint64(1<<64-1), s["TimeoutStartUSec"], "TimeoutStartSec=0 (no start timeout)")
	assert.Equal(t, "always", s["Restart"])
	assert.NotZero(t, s["MainPID"])
	pre := fmt.Sprint(s["ExecStartPre"])
	assert.Contains(t, pre, "br_netfilter")
	assert.Contains(t, pre, "overlay")
	assert.Contains(t, fmt.Sprint(s["ExecStart"]), installer.K3sBinaryPath)
	assert.Contains(t, fmt.Sprint(s["EnvironmentFiles"]), installer.EnvFilePath)
}

// kubectl runs the kubectl link tpctl made, with K3s's kubeconfig. Its
// discovery cache goes to /tmp: the test's own files must not show up as
// uninstall residue.
func (e *e2e) kubectl(ctx context.Context, args ...string) (string, error) {
	return e.h.Exec(ctx, append([]string{"/usr/local/bin/kubectl", "--kubeconfig", installer.KubeconfigPath,
		"--cache-dir", "/tmp/tpctl-e2e-kubectl-cache"}, args...)...)
}

// checkNode: the node is Ready and CoreDNS runs, seen with kubectl and the
// kubeconfig tpctl's K3s wrote (0600). The node may still be coming up:
// K3s is active (READY=1) once its API server answers, before the node is
// Ready again after a restart.
func (e *e2e) checkNode(ctx context.Context, t *testing.T) {
	var out string
	var err error
	require.Eventually(t, func() bool {
		out, err = e.kubectl(ctx, "get", "node", e.h.Name(), "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True"
	}, 2*time.Minute, time.Second, "node %s not Ready: %q %v", e.h.Name(), out, err)
	require.Eventually(t, func() bool {
		out, err = e.kubectl(ctx, "-n", "kube-system", "get", "deploy", "coredns", "-o", "jsonpath={.status.availableReplicas}")
		return err == nil && out == "1"
	}, 2*time.Minute, time.Second, "CoreDNS not available: %q %v", out, err)
	st, err := os.Stat(e.h.Path(installer.KubeconfigPath))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func (e *e2e) secondInstall(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	r := tpctl(ctx, e.h, nil, nil, installArgs(e.a.images)...)
	require.NoError(t, r.err, "%s", r)
	out := r.outcome()
	require.NotEmpty(t, out)
	for step, typ := range out {
		assert.Equal(t, installer.EventSkipped, typ, "step %s should print no change", step)
	}
	t.Logf("FIGURE second install (no change): %s", r.took.Round(time.Millisecond))
}

func (e *e2e) concurrent(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	// The second run starts once the first has emitted its first event
	// (it holds the lock then). A first run that finished before the
	// second reached the lock did not overlap: try again, a few times.
	for attempt := 1; attempt <= 3; attempt++ {
		started := make(chan struct{})
		first := make(chan tpctlRun, 1)
		go func() { first <- tpctl(ctx, e.h, nil, started, installArgs(e.a.images)...) }()
		<-started
		second := tpctl(ctx, e.h, nil, nil, installArgs(e.a.images)...)
		r := <-first
		require.NoError(t, r.err, "the first run: %s", r)
		if second.err == nil {
			t.Logf("attempt %d: the runs did not overlap (the first took %s)", attempt, r.took)
			continue
		}
		assert.Equal(t, 1, exitCode(second.err), "%s", second)
		assert.Contains(t, second.stderr, "is installing or uninstalling on this host")
		return
	}
	t.Fatal("three times the second run did not meet the first one's lock")
}

// mainPID reads k3s.service's MainPID and NRestarts over D-Bus.
func (e *e2e) mainPID(ctx context.Context, t *testing.T) (pid uint32, restarts uint32, active string) {
	sd, err := e.h.Systemd(ctx)
	require.NoError(t, err)
	defer sd.Close()
	s, err := sd.GetUnitTypePropertiesContext(ctx, installer.UnitName, "Service")
	require.NoError(t, err)
	u, err := sd.GetUnitPropertiesContext(ctx, installer.UnitName)
	require.NoError(t, err)
	pid, _ = s["MainPID"].(uint32)
	restarts, _ = s["NRestarts"].(uint32)
	active, _ = u["ActiveState"].(string)
	return pid, restarts, active
}

func (e *e2e) restartAfterKill(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	pid, restarts, _ := e.mainPID(ctx, t)
	require.NotZero(t, pid)
	_, err := e.h.Exec(ctx, "kill", "-9", strconv.Itoa(int(pid)))
	require.NoError(t, err)
	begin := time.Now()
	require.Eventually(t, func() bool {
		p, n, active := e.mainPID(ctx, t)
		return active == "active" && p != 0 && p != pid && n > restarts
	}, 3*time.Minute, time.Second, "k3s.service was not restarted after kill -9 of its main process")
	t.Logf("FIGURE restart after kill -9: active (API server ready) again after %s (RestartSec=5s included)", time.Since(begin).Round(time.Millisecond))
	e.checkNode(ctx, t)
}

func (e *e2e) podsSurviveRestart(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	id := `jsonpath={.items[0].metadata.uid} {.items[0].status.containerStatuses[0].containerID} {.items[0].status.containerStatuses[0].restartCount}`
	before, err := e.kubectl(ctx, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", id)
	require.NoError(t, err)
	begin := time.Now()
	_, err = e.h.Exec(ctx, "systemctl", "restart", installer.UnitName)
	require.NoError(t, err)
	t.Logf("FIGURE systemctl restart (ordered stop, start, API server ready): %s", time.Since(begin).Round(time.Millisecond))
	e.checkNode(ctx, t)
	after, err := e.kubectl(ctx, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", id)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the CoreDNS container kept running across the restart (same pod, container, restart count)")
}

func (e *e2e) uninstall(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	r := tpctl(ctx, e.h, nil, nil, "uninstall", "--yes")
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE uninstall: %s", r.took.Round(time.Millisecond))
	after, err := e.h.Snapshot(ctx)
	require.NoError(t, err)
	diff, known := splitKnown(e.before.Diff(after))
	t.Logf("FIGURE uninstall residue: %d lines %v; known product gaps (below) %d lines %v",
		len(diff), hosttest.Residue(diff), len(known), hosttest.Residue(known))
	for _, k := range knownResidue() {
		if n := countUnder(known, k[0]); n > 0 {
			t.Logf("KNOWN RESIDUE %s (%d lines): %s", k[0], n, k[1])
		}
	}
	assert.Empty(t, diff, "uninstall left the host different from before the install")
}

// knownResidue are paths uninstall is known to leave, with the reason; each
// is a gap of tpctl's uninstall, listed so that any other residue fails the
// test while these are being fixed. Remove an entry once it is fixed.
func knownResidue() [][2]string {
	return [][2]string{}
}

// splitKnown separates the diff lines about known residue paths.
func splitKnown(diff []string) (rest, known []string) {
	for _, l := range diff {
		isKnown := false
		for _, k := range knownResidue() {
			if strings.HasPrefix(l, "+ file: "+k[0]+" ") || strings.HasPrefix(l, "+ file: "+k[0]+"/") {
				isKnown = true
			}
		}
		if isKnown {
			known = append(known, l)
		} else {
			rest = append(rest, l)
		}
	}
	return rest, known
}

func countUnder(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "+ file: "+prefix+" ") || strings.HasPrefix(l, "+ file: "+prefix+"/") {
			n++
		}
	}
	return n
}

// killAndResume starts an install, kills tpctl (SIGKILL) at the first
// matching event of step, and runs install again, which must finish; the
// steps the killed run completed are "no change" then.
func (e *e2e) killAndResume(t *testing.T, step string, at installer.EventType) {
	ctx := e.ctx(t, 10*time.Minute)
	r := tpctl(ctx, e.h, func(ev installer.Event) bool { return ev.Step == step && ev.Type == at }, nil, installArgs(e.a.images)...)
	require.True(t, r.killed, "never reached %s %s: %s", step, at, r)
	require.Error(t, r.err)
	completed := []string{}
	for s, typ := range r.outcome() {
		if typ == installer.EventDone || typ == installer.EventSkipped {
			completed = append(completed, s)
		}
	}
	again := tpctl(ctx, e.h, nil, nil, installArgs(e.a.images)...)
	require.NoError(t, again.err, "%s", again)
	out := again.outcome()
	for _, s := range completed {
		if s == "preflight" {
			continue // preflight always looks again
		}
		assert.Equal(t, installer.EventSkipped, out[s], "step %s was done before the kill: no change expected", s)
	}
	t.Logf("FIGURE resume after a kill at %s %s: %s", step, at, again.took.Round(time.Millisecond))
	e.checkUnit(ctx, t)
	e.checkNode(ctx, t)
}
