//go:build e2e

package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
)

// Paths of the upgrade's artifacts inside the host.
const (
	newTpctlBin    = e2eDir + "/tpctl-new"
	newLauncherBin = e2eDir + "/k3s-new"
	brokenK3sBin   = e2eDir + "/k3s-broken"
	upgradeVersion = "v0.0.1-e2e"
)

// TestUpgradeOnBootedHost upgrades the booted host from tpctl v0.0.0-e2e
// (K3s stand-in +k3s1) to a build of the same tree stamped v0.0.1-e2e
// (its charts and operator image are versioned from the stamp; stand-in
// +k3s2, so the K3s binary changes and K3s is restarted) while a sender
// streams numbered records to a pipeline's frontend; then rolls the
// upgrade back on demand; then tries an upgrade to a K3s binary that
// never starts, which rolls back by itself. After each, the node is Ready,
// the K3s binary is the expected one and the pipeline carries data.
func TestUpgradeOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-upgrade", hosttest.Options{})
	h, a := e.h, e.a

	root, err := moduleRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	newTpctl, newLauncher := filepath.Join(dir, "tpctl"), filepath.Join(dir, "k3s")
	require.NoError(t, goBuild(ctx, root, newTpctl, "./cmd/tpctl", "-s -w -X github.com/tpctl/tpctl/internal/buildinfo.Version="+upgradeVersion))
	require.NoError(t, goBuild(ctx, root, newLauncher, "./test/k3slauncher", "-s -w -X github.com/tpctl/tpctl/test/k3slauncher/launcher.K3sRelease=k3s2"))
	require.NoError(t, h.CopyIn(newTpctl, newTpctlBin, 0o755))
	require.NoError(t, h.CopyIn(newLauncher, newLauncherBin, 0o755))
	// A K3s that answers --version as K3s does and exits 1 for anything
	// else: the node never comes back.
	broken := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'k3s version %s+k3s2 (broken test double)'; exit 0; fi\necho 'k3s: broken on purpose' >&2\nexit 1\n",
		cluster.PinnedVersions().Kubernetes)
	require.NoError(t, os.WriteFile(h.Path(brokenK3sBin), []byte(broken), 0o755))

	r := tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	oldSHA := e.fileSHA(t, installer.K3sBinaryPath)
	newSHA := e.fileSHA(t, newLauncherBin)
	require.NotEqual(t, oldSHA, newSHA, "the two stand-ins differ")

	p := e.createPipeline(ctx, t, "up-a", "--port", "data=tcp/15290", "--port", "report=tcp/18192",
		"--arg=--tcp=15290", "--arg=--http=:18192")
	data := frontend(t, p, v1alpha1.ProtocolTCP, 15290).Frontend
	report := frontend(t, p, v1alpha1.ProtocolTCP, 18192).Frontend
	e.waitIngress(ctx, t, "default", "up-a")
	e.sendUntilReceived(ctx, t, "tcp", data, 15290, report, "before the upgrade\n")
	podBefore := e.pipelinePodUIDs(ctx, t, "up-a")

	// 1. The upgrade, with records flowing.
	out, err := e.upgradeText(ctx, "--dry-run")
	require.NoError(t, err, out)
	t.Logf("upgrade plan:\n%s", out)
	pidBefore, _, _ := e.mainPID(ctx, t)
	cursor := e.k3sJournalCursor(ctx, t)
	base := e.receivedBytes(ctx, t, report, 15290)
	s := startSender(ctx, net.JoinHostPort(nodeIP, strconv.Itoa(int(data))), report, 15290)
	time.Sleep(3 * time.Second)
	begin := time.Now()
	out, err = e.upgradeText(ctx, "--yes", "--timeout", "10m")
	took := time.Since(begin)
	time.Sleep(3 * time.Second)
	st := s.stop()
	if err != nil {
		e.logState(ctx, t)
	}
	require.NoError(t, err, out)
	t.Logf("upgrade output:\n%s", out)
	pidAfter, _, _ := e.mainPID(ctx, t)
	podAfter := e.pipelinePodUIDs(ctx, t, "up-a")
	got := e.receivedBytes(ctx, t, report, 15290) - base
	recv := got / int64(recordLen)
	t.Logf("FIGURE upgrade v0.0.0-e2e → %s: %s; records sent %d (writes the kernel accepted), received %d (sink byte count / %d), lost %d; "+
		"longest gap between sent records %s, longest time the sink's byte count stood still (polled every %s) %s; reconnects %d",
		upgradeVersion, took.Round(time.Millisecond), st.sent, recv, recordLen, int64(st.sent)-recv,
		st.sendGap.Round(time.Millisecond), pollEvery, st.recvGap.Round(time.Millisecond), st.reconnects)
	if pidBefore == pidAfter {
		t.Logf("K3s was NOT restarted by the upgrade (main PID %d before and after)", pidAfter)
	} else {
		t.Logf("K3s was restarted by the upgrade (main PID %d → %d)", pidBefore, pidAfter)
	}
	assert.NotEqual(t, pidBefore, pidAfter, "the K3s binary changed: K3s runs the new one")
	// systemd logs "Started k3s.service" to the unit's journal each time
	// the unit becomes active (K3s sent READY=1). K3s restarts once for the
	// new binary, with or without CAP_SYS_RESOURCE: there the containerd
	// drop-in sets restrict_oom_score_adj and the stand-in's generated
	// config imports it, as K3s 1.36's does.
	noCap := e.facts(t).NoCapSysResource
	starts := e.k3sStartsSince(ctx, t, cursor, 1)
	t.Logf("FIGURE K3s starts during the upgrade: %d (host without CAP_SYS_RESOURCE: %v)", len(starts), noCap)
	assert.Len(t, starts, 1, "K3s starts during the upgrade: %q", starts)
	if noCap {
		dir := installer.ContainerdDir(installer.Config{DataDir: installer.DefaultDataDir})
		gen, err := e.h.Exec(ctx, "cat", dir+"/"+installer.ContainerdConfigFile)
		require.NoError(t, err, gen)
		assert.True(t, installer.ImportsDropIn([]byte(gen), dir+"/"+installer.ContainerdDropInDir), "the generated config imports the drop-in directory:\n%s", gen)
		assert.NotContains(t, gen, "# tpctl: restrict_oom_score_adj", "K3s renders its own base config, no template")
	}
	assert.Equal(t, podBefore, podAfter, "the pipeline's pod kept running across the upgrade")
	assert.Zero(t, st.errors, "the sender's last error: %v", st.lastErr)
	assert.Equal(t, int64(st.sent), recv, "records lost across the upgrade")
	assert.Equal(t, newSHA, e.fileSHA(t, installer.K3sBinaryPath), "the new K3s is installed")
	e.checkNode(ctx, t)

	// 2. --rollback on demand: one restart, with the old binary and the
	// containerd template kept for it.
	cursor = e.k3sJournalCursor(ctx, t)
	begin = time.Now()
	out, err = e.upgradeText(ctx, "--rollback", "--yes", "--timeout", "10m")
	require.NoError(t, err, out)
	t.Logf("FIGURE upgrade --rollback: %s\n%s", time.Since(begin).Round(time.Millisecond), out)
	starts = e.k3sStartsSince(ctx, t, cursor, 1)
	assert.Len(t, starts, 1, "K3s starts during the rollback: %q", starts)
	assert.Equal(t, oldSHA, e.fileSHA(t, installer.K3sBinaryPath), "the old K3s is back")
	e.checkNode(ctx, t)
	e.sendUntilReceived(ctx, t, "tcp", data, 15290, report, "after upgrade --rollback\n")

	// 3. An upgrade whose K3s never starts rolls back by itself.
	begin = time.Now()
	out, err = e.upgradeWith(ctx, brokenK3sBin, "--yes", "--timeout", "3m")
	t.Logf("FIGURE failed upgrade (broken K3s) and automatic rollback: %s, exit %d\n%s", time.Since(begin).Round(time.Millisecond), exitCode(err), out)
	require.Error(t, err, "an upgrade to a K3s that never starts fails")
	assert.Equal(t, 1, exitCode(errors.Unwrap(err)), "exit code of a failed upgrade")
	assert.Contains(t, err.Error(), "the upgrade failed and was rolled back", "the error says it rolled back")
	assert.Equal(t, oldSHA, e.fileSHA(t, installer.K3sBinaryPath), "the old K3s is back after the failed upgrade")
	e.checkNode(ctx, t)
	out, err = e.tpctlText(ctx, "status")
	t.Logf("tpctl status after the failed upgrade (err %v):\n%s", err, out)
	assert.NoError(t, err)
	e.sendUntilReceived(ctx, t, "tcp", data, 15290, report, "after the failed upgrade\n")

	// The upgrade's artifacts were copied in after the snapshot uninstall
	// is compared with.
	for _, f := range []string{newTpctlBin, newLauncherBin, brokenK3sBin} {
		require.NoError(t, os.Remove(h.Path(f)))
	}
	e.uninstall(t)
}

// upgradeText runs the new tpctl's upgrade with the new stand-in and the
// air-gap images.
func (e *e2e) upgradeText(ctx context.Context, args ...string) (string, error) {
	return e.upgradeWith(ctx, newLauncherBin, args...)
}

// upgradeWith runs the new tpctl's upgrade to the K3s binary k3s.
func (e *e2e) upgradeWith(ctx context.Context, k3s string, args ...string) (string, error) {
	cmd := append([]string{newTpctlBin, "upgrade", "--k3s-binary", k3s}, args...)
	for _, img := range e.a.images {
		cmd = append(cmd, "--k3s-images", e2eDir+"/images/"+filepath.Base(img))
	}
	return e.h.Exec(ctx, cmd...)
}

func (e *e2e) fileSHA(t *testing.T, inside string) string {
	t.Helper()
	b, err := os.ReadFile(e.h.Path(inside))
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (e *e2e) pipelinePodUIDs(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	out, err := e.kubectl(ctx, "get", "pods", "-n", "default", "-l", v1alpha1.LabelPipeline+"="+name,
		"-o", "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid} {end}")
	require.NoError(t, err, out)
	return out
}

// receivedBytes is the sink's byte count on tcp/backend.
func (e *e2e) receivedBytes(ctx context.Context, t *testing.T, report, backend int32) int64 {
	t.Helper()
	var n int64
	require.Eventually(t, func() bool {
		var err error
		n, err = sinkBytes(ctx, report, backend)
		return err == nil
	}, time.Minute, time.Second, "the sink's report")
	return n
}

func sinkBytes(ctx context.Context, report, backend int32) (int64, error) {
	code, body, err := httpGet(ctx, "http://"+net.JoinHostPort(nodeIP, strconv.Itoa(int(report)))+"/received")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /received: %d", code)
	}
	var rep struct {
		Ports []struct {
			Protocol string `json:"protocol"`
			Port     int32  `json:"port"`
			Bytes    int64  `json:"bytes"`
		} `json:"ports"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		return 0, err
	}
	for _, p := range rep.Ports {
		if p.Protocol == "tcp" && p.Port == backend {
			return p.Bytes, nil
		}
	}
	return 0, fmt.Errorf("no tcp/%d in the sink's report", backend)
}

const (
	recordLen = len("rec 00000000\n")
	sendEvery = 20 * time.Millisecond
	pollEvery = 250 * time.Millisecond
)

type sendStats struct {
	sent, reconnects, errors int
	lastErr                  error
	sendGap, recvGap         time.Duration
}

type sender struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	st    sendStats
}

// startSender streams fixed-width numbered records to addr over TCP, one
// every sendEvery, reconnecting when a write fails (the record is sent
// again on the new connection); a record counts as sent once the kernel
// accepted its write. A second goroutine polls the sink's byte count.
func startSender(ctx context.Context, addr string, report, backend int32) *sender {
	s := &sender{stopc: make(chan struct{})}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		var c net.Conn
		last := time.Now()
		defer func() {
			if c != nil {
				_ = c.Close()
			}
		}()
		for i := 0; ; {
			select {
			case <-s.stopc:
				return
			case <-time.After(sendEvery):
			}
			if c == nil {
				var err error
				c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", addr)
				if err != nil {
					s.mu.Lock()
					s.st.errors++
					s.st.lastErr = err
					s.mu.Unlock()
					continue
				}
				if i > 0 {
					s.mu.Lock()
					s.st.reconnects++
					s.mu.Unlock()
				}
			}
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := fmt.Fprintf(c, "rec %08d\n", i); err != nil {
				_ = c.Close()
				c = nil
				s.mu.Lock()
				s.st.errors++
				s.st.lastErr = err
				s.mu.Unlock()
				continue
			}
			i++
			now := time.Now()
			s.mu.Lock()
			s.st.sent = i
			if g := now.Sub(last); g > s.st.sendGap {
				s.st.sendGap = g
			}
			s.mu.Unlock()
			last = now
		}
	}()
	go func() {
		defer s.wg.Done()
		var prev int64 = -1
		changed := time.Now()
		for {
			select {
			case <-s.stopc:
				return
			case <-time.After(pollEvery):
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			n, err := sinkBytes(pctx, report, backend)
			cancel()
			now := time.Now()
			if err == nil && n != prev {
				s.mu.Lock()
				if g := now.Sub(changed); prev >= 0 && g > s.st.recvGap {
					s.st.recvGap = g
				}
				s.mu.Unlock()
				prev, changed = n, now
			}
		}
	}()
	return s
}

func (s *sender) stop() sendStats {
	close(s.stopc)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// facts are the host facts the install state records.
func (e *e2e) facts(t *testing.T) installer.Facts {
	t.Helper()
	b, err := os.ReadFile(e.h.Path(installer.StatePath))
	require.NoError(t, err)
	var st installer.State
	require.NoError(t, json.Unmarshal(b, &st))
	return st.Facts
}

// k3sJournalCursor is the cursor of k3s.service's last journal entry.
func (e *e2e) k3sJournalCursor(ctx context.Context, t *testing.T) string {
	t.Helper()
	out, err := e.h.Exec(ctx, "journalctl", "--no-pager", "-u", installer.UnitName, "-n", "1", "-o", "cat", "--show-cursor")
	require.NoError(t, err, out)
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "-- cursor: "); ok {
			return c
		}
	}
	t.Fatalf("no cursor in journalctl's output:\n%s", out)
	return ""
}

// k3sStartsSince returns systemd's "Started k3s.service …" lines (one
// each time the unit became active) that k3s.service's journal holds after
// cursor, waiting up to 30 s for at least want of them (journald may lag
// behind).
func (e *e2e) k3sStartsSince(ctx context.Context, t *testing.T, cursor string, want int) []string {
	t.Helper()
	var starts []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := e.h.Exec(ctx, "journalctl", "--no-pager", "-u", installer.UnitName, "--after-cursor", cursor, "-o", "cat")
		require.NoError(t, err, out)
		starts = starts[:0]
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "Started "+installer.UnitName) {
				starts = append(starts, l)
			}
		}
		if len(starts) >= want || time.Now().After(deadline) {
			return starts
		}
		time.Sleep(time.Second)
	}
}
