//go:build integration

package release

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toolDir makes a PATH directory holding exactly the named programs (links
// to this machine's, or to busybox when via is "busybox"; openssl is always
// this machine's), so that a run shows which tools install.sh needs.
func toolDir(t *testing.T, via string, names ...string) string {
	t.Helper()
	dir := openTempDir(t)
	for _, n := range names {
		target := via
		if via == "" || n == "openssl" {
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

// coreTools are the programs install.sh uses besides the downloader, the
// hash tool and openssl.
func coreTools() []string {
	return []string{"id", "uname", "cp", "mktemp", "rm", "mkdir", "chmod", "mv"}
}

func tools(extra ...string) []string { return append(coreTools(), extra...) }

// verified are coreTools with openssl, which checks the signature.
func verified(extra ...string) []string { return tools(append([]string{"openssl"}, extra...)...) }

type scriptRun struct {
	shell  []string // absolute path first: dash, or busybox ash
	path   string   // the PATH the script sees
	base   string   // TPCTL_BASE_URL; empty: the script's default
	args   []string // passed to `tpctl install`
	env    []string // more environment
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
	env := append([]string{"PATH=" + r.path, "HOME=/root", "LANG=C"}, r.env...)
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

// TestInstallScript builds a signed release without the K3s payload for
// this machine's architecture and runs its install.sh the ways a user can,
// and against releases that must be refused.
func TestInstallScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: install.sh runs in a mount namespace of its own with a private /usr/local/bin")
	}
	for _, p := range []string{"/usr/bin/dash", "/usr/bin/busybox", "/usr/bin/setpriv"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (scripts/test-deps installs it)", p)
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing: scripts/test-deps installs it, and CI must run this test")
		}
		t.Skip("needs openssl (scripts/test-deps installs it): install.sh verifies the release signature with it")
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
	key := newReleaseKey(t)
	const version = "v1.2.3"
	out, err := buildRelease(t, dist, append(key.env(), "RELEASE_URL="+url+"/ok", "VERSION="+version), "--no-payload")
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

	t.Run("the release is signed and install.sh carries its digest and key", func(t *testing.T) {
		sig, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS.sig"))
		require.NoError(t, err)
		data, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		require.NoError(t, err)
		assert.True(t, ed25519.Verify(key.priv.Public().(ed25519.PublicKey), data, sig), "signed by the release key")
		text, err := os.ReadFile(script)
		require.NoError(t, err)
		listed, err := os.ReadFile(key.listed)
		require.NoError(t, err)
		pub, _, _ := strings.Cut(string(listed), " ")
		assert.Contains(t, string(text), "\nrelease_version='"+version+"'\n")
		assert.Contains(t, string(text), "\nrelease_keys='"+pub+"'\n")
		assert.Contains(t, string(text), "\nsha256_"+runtime.GOARCH+"='"+want+"'\n")
	})

	// Releases that must be refused, each a copy of dist with one thing wrong.
	copyRelease(t, dist, filepath.Join(work, "tampered"), name, tamper)
	copyRelease(t, dist, filepath.Join(work, "truncated"), name, truncate)
	corruptUpdate(t, dist, filepath.Join(work, "update"), name)
	// The binary swapped and SHA256SUMS rewritten to match it (and re-signed
	// by a key that is not the release's).
	swapped := filepath.Join(work, "swapped")
	copyRelease(t, dist, swapped, name, tamper)
	swappedSums := fmt.Sprintf("%s  install.sh\n%s  %s\n", sums["install.sh"], sha256File(t, filepath.Join(swapped, name)), name)
	require.NoError(t, os.WriteFile(filepath.Join(swapped, "SHA256SUMS"), []byte(swappedSums), 0o644))
	other := newReleaseKey(t)
	other.sign(t, swapped)
	// SHA256SUMS edited where the script does not look (install.sh's line),
	// the signature kept.
	edited := filepath.Join(work, "edited-sums")
	copyRelease(t, dist, edited, "SHA256SUMS", func(b []byte) []byte {
		return []byte(strings.Replace(string(b), sums["install.sh"], strings.Repeat("0", 64), 1))
	})
	// Signed by another key.
	wrongKey := filepath.Join(work, "wrong-key")
	copyRelease(t, dist, wrongKey, "", nil)
	other.sign(t, wrongKey)
	// No signature, or an empty one.
	unsigned := filepath.Join(work, "unsigned")
	copyRelease(t, dist, unsigned, "", nil)
	require.NoError(t, os.Remove(filepath.Join(unsigned, "SHA256SUMS.sig")))
	emptySig := filepath.Join(work, "empty-sig")
	copyRelease(t, dist, emptySig, "SHA256SUMS.sig", func([]byte) []byte { return nil })
	require.NoError(t, os.MkdirAll(filepath.Join(work, "empty"), 0o755))
	log := &requestLog{}
	serve(t, ln, work, log)

	dash := []string{"/usr/bin/dash"}
	ash := []string{"/usr/bin/busybox", "ash"}
	curl := toolDir(t, "", verified("sha256sum", "curl")...)
	wget := toolDir(t, "", verified("sha256sum", "wget")...)
	bbox := toolDir(t, "/usr/bin/busybox", verified("sha256sum", "wget")...)
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
	downloads := []string{"/ok/SHA256SUMS", "/ok/SHA256SUMS.sig", "/ok/" + name}

	for _, c := range []struct {
		name string
		run  scriptRun
	}{
		{"dash/curl/default-url", scriptRun{shell: dash, path: curl, args: printCfg}},
		{"dash/wget", scriptRun{shell: dash, path: wget, base: url + "/ok/", args: printCfg}},
		{"busybox-ash/busybox-wget", scriptRun{shell: ash, path: bbox, base: url + "/ok", args: printCfg}},
		{"dash/curl/localhost", scriptRun{shell: dash, path: curl, base: strings.Replace(url, "127.0.0.1", "localhost", 1) + "/ok", args: printCfg}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			log.take()
			r := c.run.run(t, script, bin)
			ranTpctl(t, r)
			installed(t, bin)
			assert.Equal(t, downloads, log.take(), "downloads exactly SHA256SUMS, its signature and the binary")

			// Twice: harmless, and the binary is not downloaded again.
			r = c.run.run(t, script, bin)
			ranTpctl(t, r)
			assert.Contains(t, r.stdout, "already")
			installed(t, bin)
			assert.Equal(t, downloads[:2], log.take())
		})
	}

	t.Run("file-url-without-curl-or-wget", func(t *testing.T) {
		for _, shell := range [][]string{dash, ash} {
			bin := t.TempDir()
			r := scriptRun{shell: shell, path: toolDir(t, "", verified("sha256sum")...), base: "file://" + dist, args: printCfg}.run(t, script, bin)
			ranTpctl(t, r)
			installed(t, bin)
		}
	})

	t.Run("busybox-sha256sum-fallback", func(t *testing.T) {
		bin := t.TempDir()
		path := toolDir(t, "", verified("curl", "busybox")...)
		r := scriptRun{shell: dash, path: path, base: url + "/ok", args: printCfg}.run(t, script, bin)
		ranTpctl(t, r)
		installed(t, bin)
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			run    scriptRun
			script string // default: the release's install.sh
			code   int
			msg    string
		}{
			{"tampered/dash", scriptRun{shell: dash, path: curl, base: url + "/tampered"}, "", exitChecksum, "checksum mismatch"},
			{"tampered/ash", scriptRun{shell: ash, path: bbox, base: url + "/tampered"}, "", exitChecksum, "checksum mismatch"},
			{"truncated/dash", scriptRun{shell: dash, path: curl, base: url + "/truncated"}, "", exitChecksum, "checksum mismatch"},
			{"truncated/file", scriptRun{shell: ash, path: bbox, base: "file://" + filepath.Join(work, "truncated")}, "", exitChecksum, "checksum mismatch"},
			{"tampered-sums/swapped-binary", scriptRun{shell: dash, path: curl, base: url + "/swapped"}, "", exitChecksum, "checksum mismatch: SHA256SUMS at"},
			{"tampered-sums/signature-kept", scriptRun{shell: dash, path: curl, base: url + "/edited-sums"}, "", exitBadSig, "does not verify"},
			{"wrong-key/dash", scriptRun{shell: dash, path: curl, base: url + "/wrong-key"}, "", exitBadSig, "does not verify"},
			{"wrong-key/ash", scriptRun{shell: ash, path: bbox, base: url + "/wrong-key"}, "", exitBadSig, "does not verify"},
			{"missing-signature", scriptRun{shell: dash, path: curl, base: url + "/unsigned"}, "", exitNoSig, "SHA256SUMS.sig failed"},
			{"missing-signature/file", scriptRun{shell: ash, path: bbox, base: "file://" + unsigned}, "", exitNoSig, "SHA256SUMS.sig failed"},
			{"empty-signature", scriptRun{shell: dash, path: curl, base: url + "/empty-sig"}, "", exitNoSig, "is empty"},
			{"http-not-loopback", scriptRun{shell: dash, path: curl, base: "http://192.0.2.1/ok"}, "", exitInsecure, "plain http:// is refused"},
			{"http-loopback-as-userinfo", scriptRun{shell: dash, path: curl, base: "http://127.0.0.1@192.0.2.1/ok"}, "", exitInsecure, "plain http:// is refused"},
			{"http-loopback-as-query", scriptRun{shell: ash, path: bbox, base: "http://192.0.2.1?@127.0.0.1/ok"}, "", exitInsecure, "plain http:// is refused"},
			{"ftp", scriptRun{shell: dash, path: curl, base: "ftp://192.0.2.1/ok"}, "", exitInsecure, "not https://"},
			{"not-from-a-release", scriptRun{shell: dash, path: curl, base: url + "/ok"}, filepath.Join(moduleRoot(t), "scripts", "install.sh"), exitNotRelease, "carries no release keys"},
			{"404", scriptRun{shell: dash, path: curl, base: url + "/empty"}, "", exitDownload, "download of " + url + "/empty/SHA256SUMS failed"},
			{"404/busybox-wget", scriptRun{shell: ash, path: bbox, base: url + "/empty"}, "", exitDownload, "failed"},
			{"missing-file", scriptRun{shell: dash, path: curl, base: "file://" + filepath.Join(work, "empty")}, "", exitDownload, "failed"},
			{"not-root", scriptRun{shell: dash, path: curl, nobody: true}, "", exitNotRoot, "must run as root"},
			{"unsupported-arch", scriptRun{shell: dash, path: archShim(t, curl, "riscv64")}, "", exitArch, "unsupported architecture riscv64"},
			{"no-downloader", scriptRun{shell: dash, path: toolDir(t, "", verified("sha256sum")...), base: url + "/ok"}, "", exitTool, "curl or wget"},
			{"no-sha256sum", scriptRun{shell: dash, path: toolDir(t, "", verified("curl")...), base: url + "/ok"}, "", exitTool, "sha256sum is missing"},
			{"no-openssl", scriptRun{shell: dash, path: toolDir(t, "", tools("sha256sum", "curl")...), base: url + "/ok"}, "", exitTool, "openssl is needed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				bin := t.TempDir()
				require.NoError(t, os.Chmod(bin, 0o755))
				c.run.args = printCfg
				s := script
				if c.script != "" {
					s = c.script
				}
				r := c.run.run(t, s, bin)
				assert.Equal(t, c.code, r.code)
				assert.Contains(t, r.stderr, c.msg)
				assert.NotContains(t, r.stdout, "clusterCIDR", "tpctl must not run")
				assert.Empty(t, listing(t, bin), "nothing installed, no temporary file left")
			})
		}
	})

	// fakeTpctl installs into bin a stand-in tpctl that reports version.
	fakeTpctl := func(t *testing.T, bin, version string) []string {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(bin, "tpctl"), []byte("#!/bin/sh\necho 'tpctl "+version+"'\n"), 0o755))
		return listing(t, bin)
	}

	t.Run("downgrade", func(t *testing.T) {
		for _, newer := range []string{"v1.2.4", "v1.3.0", "v2.0.0-rc.1"} {
			bin := t.TempDir()
			before := fakeTpctl(t, bin, newer)
			log.take()
			r := scriptRun{shell: dash, path: curl, base: url + "/ok", args: printCfg}.run(t, script, bin)
			assert.Equal(t, exitDowngrade, r.code, newer)
			assert.Contains(t, r.stderr, "newer than "+version)
			assert.Equal(t, before, listing(t, bin), "the newer tpctl stays")
			assert.Equal(t, downloads[:2], log.take(), "the binary is not downloaded")
		}
		t.Run("allowed", func(t *testing.T) {
			bin := t.TempDir()
			fakeTpctl(t, bin, "v9.0.0")
			r := scriptRun{shell: ash, path: bbox, base: url + "/ok", args: printCfg, env: []string{"TPCTL_ALLOW_DOWNGRADE=1"}}.run(t, script, bin)
			ranTpctl(t, r)
			installed(t, bin)
		})
		t.Run("not a downgrade", func(t *testing.T) {
			for _, old := range []string{"v1.2.2", "v1.2.3", "v1.2.3-4-gabcdef0", "v0.9.9", "dev", "0123abc"} {
				bin := t.TempDir()
				fakeTpctl(t, bin, old)
				r := scriptRun{shell: dash, path: curl, base: url + "/ok", args: printCfg}.run(t, script, bin)
				ranTpctl(t, r)
				installed(t, bin)
			}
		})
	})

	t.Run("refused-keeps-the-installed-binary", func(t *testing.T) {
		for _, shell := range [][]string{dash, ash} {
			bin := t.TempDir()
			before := fakeTpctl(t, bin, "v1.0.0")
			for _, bad := range []string{"truncated", "update", "wrong-key", "unsigned"} {
				r := scriptRun{shell: shell, path: curl, base: url + "/" + bad, args: printCfg}.run(t, script, bin)
				assert.Contains(t, []int{exitChecksum, exitBadSig, exitNoSig}, r.code, bad)
				assert.Equal(t, before, listing(t, bin), "the installed tpctl is unchanged (%s)", bad)
			}
		}
		bin := t.TempDir()
		fakeTpctl(t, bin, "v1.0.0")
		log.take()
		r := scriptRun{shell: dash, path: curl, base: url + "/truncated", args: printCfg}.run(t, script, bin)
		assert.Equal(t, exitChecksum, r.code)
		assert.Equal(t, []string{"/truncated/SHA256SUMS", "/truncated/SHA256SUMS.sig", "/truncated/" + name}, log.take(),
			"the binary was downloaded, then refused")
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
		"#   13  checksum mismatch", "#   14  a needed tool is missing", "#   15  the binary could not be written",
		"#   16  signature missing", "#   17  bad signature", "#   18  downgrade refused", "#   19  insecure base URL",
		"#   20  this script is not from a release",
	} {
		assert.Contains(t, s, line)
	}
	assert.Less(t, strings.Count(s, "\n"), 170, "short enough to read before piping it into a shell")
	assert.Contains(t, s, "\nmain \"$@\"\n", "everything runs from main, so a cut-short download runs nothing")
}
