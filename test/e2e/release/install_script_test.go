//go:build integration

package release

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toolDir makes a PATH directory holding exactly the named programs (links
// to this machine's, or to busybox when via is "busybox"), so that a run
// shows which tools install.sh needs.
func toolDir(t *testing.T, via string, names ...string) string {
	t.Helper()
	dir := openTempDir(t)
	for _, n := range names {
		target := via
		if via == "" {
			p, err := exec.LookPath(n)
			if err != nil {
				t.Skipf("needs %s (scripts/test-deps installs it)", n)
			}
			target = p
		}
		require.NoError(t, os.Symlink(target, filepath.Join(dir, n)))
	}
	return dir
}

// coreTools are the programs install.sh uses besides the downloader and
// the hash tool.
func coreTools() []string {
	return []string{"id", "uname", "cp", "mktemp", "rm", "mkdir", "chmod", "mv"}
}

func tools(extra ...string) []string { return append(coreTools(), extra...) }

type scriptRun struct {
	shell  []string // absolute path first: dash, or busybox ash
	path   string   // the PATH the script sees
	base   string   // TPCTL_BASE_URL; empty: the script's default
	args   []string // passed to `tpctl install`
	nobody bool     // run as the unprivileged user nobody
}

type scriptResult struct {
	stdout, stderr string
	code           int
}

// run executes install.sh with bin mounted over /usr/local/bin.
func (r scriptRun) run(t *testing.T, script, bin string) scriptResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := []string{"PATH=" + r.path, "HOME=/root", "LANG=C"}
	if r.base != "" {
		env = append(env, "TPCTL_BASE_URL="+r.base)
	}
	args := append(append([]string{}, r.shell...), script)
	args = append(args, r.args...)
	if r.nobody {
		args = append([]string{"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
	}
	cmd := privateBinCmd(ctx, bin, env, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := scriptResult{stdout: out.String(), stderr: errb.String(), code: exitCode(err)}
	t.Logf("%s → exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, tailOf(res.stdout), res.stderr)
	return res
}

// listing names a directory's entries with their sizes and digests.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		info, err := e.Info()
		require.NoError(t, err)
		line := e.Name() + " " + info.Mode().String()
		if info.Mode().IsRegular() {
			line += " " + sha256File(t, filepath.Join(dir, e.Name()))
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// TestInstallScript builds a release without the K3s payload for this
// machine's architecture and runs its install.sh the ways a user can.
func TestInstallScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: install.sh runs in a mount namespace of its own with a private /usr/local/bin")
	}
	for _, p := range []string{"/usr/bin/dash", "/usr/bin/busybox", "/usr/bin/setpriv"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (scripts/test-deps installs it)", p)
		}
	}
	hostBin := listing(t, "/usr/local/bin")
	t.Cleanup(func() {
		assert.Equal(t, hostBin, listing(t, "/usr/local/bin"), "the host's /usr/local/bin changed")
	})

	// The listener exists before the release, so its install.sh defaults to
	// this server: the plain run below sets no TPCTL_BASE_URL at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	work := openTempDir(t)
	dist := filepath.Join(work, "ok")
	out, err := buildRelease(t, dist, []string{"RELEASE_URL=" + url + "/ok"}, "--no-payload")
	require.NoError(t, err, out)

	name := binaryName()
	sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
	want := sums[name]
	require.Len(t, want, 64, "SHA256SUMS lists %s", name)
	assert.Equal(t, want, sha256File(t, filepath.Join(dist, name)))
	assert.Equal(t, sums["install.sh"], sha256File(t, filepath.Join(dist, "install.sh")))
	script := filepath.Join(dist, "install.sh")

	t.Run("the release says it carries no K3s", func(t *testing.T) {
		assert.GreaterOrEqual(t, strings.Count(out, "NO K3S PAYLOAD"), 2, "at the start and the end of the build")
		assert.Equal(t, []string{"install.sh", name}, keys(sums))
		v, table := tpctlVersion(t, filepath.Join(dist, name))
		assert.Equal(t, "release-nopayload", v.Variant)
		assert.Empty(t, v.Payload.K3sVersion)
		assert.False(t, v.Payload.Complete)
		var missing []string
		for _, m := range v.Payload.Missing {
			missing = append(missing, m.Requirement.Kind)
		}
		assert.ElementsMatch(t, []string{"k3s-binary", "k3s-images", "pipeline-image"}, missing,
			"only K3s and the Fluent Bit image are missing: the charts and the operator image are built here")
		assert.Contains(t, table, "WARNING:  NO K3S PAYLOAD")
		assert.Contains(t, table, "variant:  release-nopayload")
	})

	copyRelease(t, dist, filepath.Join(work, "tampered"), name, tamper)
	copyRelease(t, dist, filepath.Join(work, "truncated"), name, truncate)
	corruptUpdate(t, dist, filepath.Join(work, "update"), name)
	require.NoError(t, os.MkdirAll(filepath.Join(work, "empty"), 0o755))
	log := &requestLog{}
	serve(t, ln, work, log)

	dash := []string{"/usr/bin/dash"}
	ash := []string{"/usr/bin/busybox", "ash"}
	curl := toolDir(t, "", tools("sha256sum", "curl")...)
	wget := toolDir(t, "", tools("sha256sum", "wget")...)
	bbox := toolDir(t, "/usr/bin/busybox", tools("sha256sum", "wget")...)
	printCfg := []string{"--print-config", "--cluster-cidr", "10.99.0.0/16"}

	installed := func(t *testing.T, bin string) {
		t.Helper()
		assert.Equal(t, []string{"tpctl -rwxr-xr-x " + want}, listing(t, bin), "exactly tpctl, executable, with the released digest")
	}
	ranTpctl := func(t *testing.T, r scriptResult) {
		t.Helper()
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "clusterCIDR: 10.99.0.0/16", "the script's arguments reach tpctl install")
	}

	for _, c := range []struct {
		name string
		run  scriptRun
	}{
		{"dash/curl/default-url", scriptRun{shell: dash, path: curl, args: printCfg}},
		{"dash/wget", scriptRun{shell: dash, path: wget, base: url + "/ok/", args: printCfg}},
		{"busybox-ash/busybox-wget", scriptRun{shell: ash, path: bbox, base: url + "/ok", args: printCfg}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			log.take()
			r := c.run.run(t, script, bin)
			ranTpctl(t, r)
			installed(t, bin)
			assert.Equal(t, []string{"/ok/SHA256SUMS", "/ok/" + name}, log.take(), "downloads exactly SHA256SUMS and the binary")

			// Twice: harmless, and the binary is not downloaded again.
			r = c.run.run(t, script, bin)
			ranTpctl(t, r)
			assert.Contains(t, r.stdout, "already")
			installed(t, bin)
			assert.Equal(t, []string{"/ok/SHA256SUMS"}, log.take())
		})
	}

	t.Run("file-url-without-curl-or-wget", func(t *testing.T) {
		for _, shell := range [][]string{dash, ash} {
			bin := t.TempDir()
			r := scriptRun{shell: shell, path: toolDir(t, "", tools("sha256sum")...), base: "file://" + dist, args: printCfg}.run(t, script, bin)
			ranTpctl(t, r)
			installed(t, bin)
		}
	})

	t.Run("busybox-sha256sum-fallback", func(t *testing.T) {
		bin := t.TempDir()
		path := toolDir(t, "", tools("curl", "busybox")...)
		r := scriptRun{shell: dash, path: path, base: url + "/ok", args: printCfg}.run(t, script, bin)
		ranTpctl(t, r)
		installed(t, bin)
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name string
			run  scriptRun
			code int
			msg  string
		}{
			{"tampered/dash", scriptRun{shell: dash, path: curl, base: url + "/tampered"}, exitChecksum, "checksum mismatch"},
			{"tampered/ash", scriptRun{shell: ash, path: bbox, base: url + "/tampered"}, exitChecksum, "checksum mismatch"},
			{"truncated/dash", scriptRun{shell: dash, path: curl, base: url + "/truncated"}, exitChecksum, "checksum mismatch"},
			{"truncated/file", scriptRun{shell: ash, path: bbox, base: "file://" + filepath.Join(work, "truncated")}, exitChecksum, "checksum mismatch"},
			{"404", scriptRun{shell: dash, path: curl, base: url + "/empty"}, exitDownload, "download of " + url + "/empty/SHA256SUMS failed"},
			{"404/busybox-wget", scriptRun{shell: ash, path: bbox, base: url + "/empty"}, exitDownload, "failed"},
			{"missing-file", scriptRun{shell: dash, path: curl, base: "file://" + filepath.Join(work, "empty")}, exitDownload, "failed"},
			{"not-root", scriptRun{shell: dash, path: curl, nobody: true}, exitNotRoot, "must run as root"},
			{"unsupported-arch", scriptRun{shell: dash, path: archShim(t, curl, "riscv64")}, exitArch, "unsupported architecture riscv64"},
			{"no-downloader", scriptRun{shell: dash, path: toolDir(t, "", tools("sha256sum")...), base: url + "/ok"}, exitTool, "curl or wget"},
			{"no-sha256sum", scriptRun{shell: dash, path: toolDir(t, "", tools("curl")...), base: url + "/ok"}, exitTool, "sha256sum is missing"},
		} {
			t.Run(c.name, func(t *testing.T) {
				bin := t.TempDir()
				require.NoError(t, os.Chmod(bin, 0o755))
				c.run.args = printCfg
				r := c.run.run(t, script, bin)
				assert.Equal(t, c.code, r.code)
				assert.Contains(t, r.stderr, c.msg)
				assert.NotContains(t, r.stdout, "clusterCIDR", "tpctl must not run")
				assert.Empty(t, listing(t, bin), "nothing installed, no temporary file left")
			})
		}
	})

	t.Run("refused-keeps-the-installed-binary", func(t *testing.T) {
		bin := t.TempDir()
		good := scriptRun{shell: dash, path: curl, args: printCfg}.run(t, script, bin)
		ranTpctl(t, good)
		before := listing(t, bin)
		for _, shell := range [][]string{dash, ash} {
			log.take()
			r := scriptRun{shell: shell, path: curl, base: url + "/update", args: printCfg}.run(t, script, bin)
			assert.Equal(t, exitChecksum, r.code)
			assert.Contains(t, r.stderr, "checksum mismatch")
			assert.Equal(t, []string{"/update/SHA256SUMS", "/update/" + name}, log.take())
			assert.Equal(t, before, listing(t, bin), "the installed tpctl is unchanged")
		}
	})
}

// archShim is a copy of the tool directory whose uname reports arch.
func archShim(t *testing.T, tools, arch string) string {
	t.Helper()
	dir := openTempDir(t)
	ents, err := os.ReadDir(tools)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Name() == "uname" {
			continue
		}
		target, err := os.Readlink(filepath.Join(tools, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.Symlink(target, filepath.Join(dir, e.Name())))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "uname"), []byte("#!/bin/sh\necho "+arch+"\n"), 0o755))
	return dir
}

// TestInstallScriptDocumentsItsExitCodes pins the header a user reads
// before piping the script into a shell.
func TestInstallScriptDocumentsItsExitCodes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "scripts", "install.sh"))
	require.NoError(t, err)
	s := string(data)
	for _, line := range []string{
		"#   10  not root", "#   11  unsupported architecture", "#   12  download failed",
		"#   13  checksum mismatch", "#   14  a needed tool is missing",
	} {
		assert.Contains(t, s, line)
	}
	assert.Less(t, strings.Count(s, "\n"), 100, "short enough to read before piping it into a shell")
	assert.Contains(t, s, "\nmain \"$@\"\n", "everything runs from main, so a cut-short download runs nothing")
}
