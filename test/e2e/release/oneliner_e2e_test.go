//go:build e2e

package release

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/hosttest"
)

// TestOneLinerOnBootedHost runs the documented one-liner inside a booted
// Debian with a real systemd (test/hosttest), against a release (built here
// without the K3s payload, which cannot be fetched in this build
// environment) served over HTTP on 127.0.0.1 by this test process: the
// container shares the host's network, so its loopback is this one.
//
// The install runs with --dry-run: a real install needs a K3s, and the
// nopayload release carries none, so the plan is made against a stand-in
// file passed as --k3s-binary (a dry run only records it). What is checked
// is the installer script's part: download, verification, atomic placement,
// refusals, idempotence, and that tpctl install ran with the arguments.
func TestOneLinerOnBootedHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	hosttest.RequireRootfs(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	work := openTempDir(t)
	dist := filepath.Join(work, "ok")
	out, err := buildRelease(t, dist, []string{"RELEASE_URL=" + url + "/ok"}, "--no-payload")
	require.NoError(t, err, out)
	name := binaryName()
	want := readSums(t, filepath.Join(dist, "SHA256SUMS"))[name]
	require.Len(t, want, 64)
	copyRelease(t, dist, filepath.Join(work, "tampered"), name, tamper)
	copyRelease(t, dist, filepath.Join(work, "truncated"), name, truncate)
	corruptUpdate(t, dist, filepath.Join(work, "update"), name)
	log := &requestLog{}
	serve(t, ln, work, log)

	h := hosttest.Start(ctx, t, hosttest.Options{Name: "tpctl-release"})
	standIn := filepath.Join(work, "k3s-stand-in")
	require.NoError(t, os.WriteFile(standIn, []byte("#!/bin/sh\necho 'stand-in for a K3s binary (dry run only)'\nexit 1\n"), 0o755))
	require.NoError(t, h.CopyIn(standIn, "/root/k3s-stand-in", 0o755))
	flags := "--dry-run --k3s-binary /root/k3s-stand-in"

	sh := func(t *testing.T, line string) (string, string, int) {
		t.Helper()
		var stdout, stderr strings.Builder
		err := h.ExecIO(ctx, nil, &stdout, &stderr, "sh", "-c", line)
		t.Logf("$ %s → exit %d\n%s%s", line, exitCode(err), tailOf(stdout.String()), stderr.String())
		return stdout.String(), stderr.String(), exitCode(err)
	}
	snapshot := func(t *testing.T) hosttest.Snapshot {
		t.Helper()
		s, err := h.Snapshot(ctx)
		require.NoError(t, err)
		return s
	}
	installedDigest := func(t *testing.T) string {
		t.Helper()
		return sha256File(t, h.Path("/usr/local/bin/tpctl"))
	}
	// The one-liner exactly as the README documents it.
	oneLiner := "curl -sfL " + url + "/ok/install.sh | sh -s - " + flags
	fresh := snapshot(t)

	t.Run("tampered and truncated binaries are refused, nothing installed", func(t *testing.T) {
		for _, bad := range []string{"tampered", "truncated"} {
			_, stderr, code := sh(t, "curl -sfL "+url+"/ok/install.sh | TPCTL_BASE_URL="+url+"/"+bad+" sh -s - "+flags)
			assert.Equal(t, exitChecksum, code, bad)
			assert.Contains(t, stderr, "checksum mismatch")
			assert.Empty(t, fresh.Diff(snapshot(t)), "a refused %s binary leaves the host as it was", bad)
		}
	})

	t.Run("not root", func(t *testing.T) {
		_, stderr, code := sh(t, "curl -sfL "+url+"/ok/install.sh | setpriv --reuid=65534 --regid=65534 --clear-groups sh -s - "+flags)
		assert.Equal(t, exitNotRoot, code)
		assert.Contains(t, stderr, "must run as root")
		assert.Empty(t, fresh.Diff(snapshot(t)))
	})

	var installed hosttest.Snapshot
	t.Run("the documented one-liner over HTTP", func(t *testing.T) {
		log.take()
		stdout, stderr, code := sh(t, oneLiner)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "Dry run of", "tpctl install ran with the script's arguments")
		assert.Contains(t, stderr+stdout, "installed /usr/local/bin/tpctl")
		assert.Equal(t, want, installedDigest(t))
		assert.Equal(t, []string{"/ok/install.sh", "/ok/SHA256SUMS", "/ok/SHA256SUMS.sig", "/ok/" + name}, log.take(),
			"the script downloads SHA256SUMS, its signature and the binary, nothing else")
		installed = snapshot(t)
		diff := fresh.Diff(installed)
		require.NotEmpty(t, diff)
		for _, l := range diff {
			assert.True(t, strings.HasPrefix(l, "+ file: /usr/local/bin/tpctl -rwxr-xr-x "),
				"only /usr/local/bin/tpctl appears (a dry run changes nothing else): %s", l)
		}
		out, err := h.Exec(ctx, "tpctl", "version")
		require.NoError(t, err)
		assert.Contains(t, out, "NO K3S PAYLOAD")
	})

	t.Run("twice is harmless", func(t *testing.T) {
		require.NotEmpty(t, installed.Files, "needs the install above")
		stdout, _, code := sh(t, oneLiner)
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "Dry run of")
		assert.Contains(t, stdout, "already")
		assert.Equal(t, []string{"/ok/install.sh", "/ok/SHA256SUMS", "/ok/SHA256SUMS.sig"}, log.take(), "the binary is not downloaded again")
		assert.Empty(t, installed.Diff(snapshot(t)))
	})

	t.Run("a refused update keeps the installed binary", func(t *testing.T) {
		require.NotEmpty(t, installed.Files, "needs the install above")
		_, stderr, code := sh(t, "curl -sfL "+url+"/ok/install.sh | TPCTL_BASE_URL="+url+"/update sh -s - "+flags)
		assert.Equal(t, exitChecksum, code)
		assert.Contains(t, stderr, "checksum mismatch")
		assert.Equal(t, want, installedDigest(t))
		assert.Empty(t, installed.Diff(snapshot(t)))
	})

	t.Run("file:// on an air-gapped host", func(t *testing.T) {
		_, err := h.Exec(ctx, "rm", "-f", "/usr/local/bin/tpctl")
		require.NoError(t, err)
		for _, f := range []string{name, "SHA256SUMS", "SHA256SUMS.sig", "install.sh"} {
			require.NoError(t, h.CopyIn(filepath.Join(dist, f), "/srv/tpctl-release/"+f, 0o755))
		}
		log.take()
		stdout, stderr, code := sh(t, "TPCTL_BASE_URL=file:///srv/tpctl-release sh /srv/tpctl-release/install.sh "+flags)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "Dry run of")
		assert.Equal(t, want, installedDigest(t))
		assert.Empty(t, log.take(), "nothing was fetched over the network")
	})
}
