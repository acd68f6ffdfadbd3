package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/internal/releasesig"
)

const testArch = "amd64"

func testReleaseKey(t *testing.T, label string) (ed25519.PrivateKey, releasesig.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return priv, releasesig.PublicKey{Key: pub, Label: label}
}

// testRelease is a release directory as scripts/release lays it out:
// tpctl-linux-<arch> (a stub that states its version and records the
// arguments of anything else it is run with), SHA256SUMS and its signature.
type testRelease struct {
	dir, record string
}

func (r testRelease) path(name string) string { return filepath.Join(r.dir, name) }

func writeTestRelease(t *testing.T, priv ed25519.PrivateKey, ver string) testRelease {
	t.Helper()
	r := testRelease{dir: t.TempDir(), record: filepath.Join(t.TempDir(), "argv")}
	stub := fmt.Sprintf(`#!/bin/sh
if [ "$1" = version ]; then
  printf '{"version":"%s","commit":"test"}\n'
  exit 0
fi
printf '%%s\n' "$@" > '%s'
case " $* " in *" --fail "*) echo "stub failed" >&2; exit 7 ;; esac
echo "stub upgraded"
`, ver, r.record)
	bin := "tpctl-linux-" + testArch
	require.NoError(t, os.WriteFile(r.path(bin), []byte(stub), 0o755))
	d := sha256.Sum256([]byte(stub))
	sums := fmt.Sprintf("%s  %s\n%s  install.sh\n", hex.EncodeToString(d[:]), bin, strings.Repeat("0", 64))
	require.NoError(t, os.WriteFile(r.path(releasesig.SumsFile), []byte(sums), 0o644))
	require.NoError(t, os.WriteFile(r.path(releasesig.SigFile), ed25519.Sign(priv, []byte(sums)), 0o644))
	return r
}

// upgrader returns a releaseUpgrader trusting keys, running as tpctl
// running, with its download directory and output buffers.
func upgrader(t *testing.T, running string, keys ...releasesig.PublicKey) (*releaseUpgrader, string, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	tmp := t.TempDir()
	var out, errOut bytes.Buffer
	return newReleaseUpgrader(keys, running, testArch, nil, tmp, strings.NewReader(""), &out, &errOut), tmp, &out, &errOut
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing is left in the download directory")
}

func TestUpgradeReleaseRunsTheVerifiedBinary(t *testing.T) {
	priv, pub := testReleaseKey(t, "release-2026")
	rel := writeTestRelease(t, priv, "v0.6.0")
	srv := httptest.NewServer(http.FileServer(http.Dir(rel.dir)))
	defer srv.Close()

	u, tmp, out, errOut := upgrader(t, "v0.5.0", pub)
	err := u.Upgrade(context.Background(), srv.URL+"/", []string{"--yes", "--timeout=20m0s", "--k3s-images=/a b.tar"}, false, false)
	require.NoError(t, err, errOut.String())

	got, err := os.ReadFile(rel.record)
	require.NoError(t, err, "the release's tpctl ran")
	assert.Equal(t, "upgrade\n--yes\n--timeout=20m0s\n--k3s-images=/a b.tar\n", string(got), "its argv, each argument whole")
	assert.Equal(t, "stub upgraded\n", out.String())
	assert.Contains(t, errOut.String(), "signed by release key release-2026")
	assertEmptyDir(t, tmp)
}

func TestUpgradeReleasePassesTheExitCodeOn(t *testing.T) {
	priv, pub := testReleaseKey(t, "")
	rel := writeTestRelease(t, priv, "v0.6.0")
	u, tmp, _, errOut := upgrader(t, "v0.5.0", pub)
	err := u.Upgrade(context.Background(), rel.dir, []string{"--fail"}, false, false)
	require.Error(t, err)
	assert.Equal(t, 7, cli.ExitCode(err))
	assert.Contains(t, err.Error(), "tpctl v0.6.0 upgrade ended with exit code 7")
	assert.Contains(t, errOut.String(), "stub failed")
	assertEmptyDir(t, tmp)
}

func TestUpgradeReleaseDryRunVerifiesAndRunsNothing(t *testing.T) {
	priv, pub := testReleaseKey(t, "")
	rel := writeTestRelease(t, priv, "v0.6.0")
	u, tmp, out, _ := upgrader(t, "v0.6.0", pub) // the same version is not refused
	require.NoError(t, u.Upgrade(context.Background(), "file://"+rel.dir, []string{"--yes"}, true, false))
	assert.Contains(t, out.String(), "tpctl-linux-amd64 v0.6.0 (sha256 ")
	assert.Contains(t, out.String(), "Would run (from a temporary copy, removed afterwards): ")
	assert.Contains(t, out.String(), "/tpctl-linux-amd64 upgrade --yes\n")
	_, err := os.Stat(rel.record)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing ran")
	assertEmptyDir(t, tmp)
}

func TestUpgradeReleaseRefusals(t *testing.T) {
	priv, pub := testReleaseKey(t, "current")
	otherPriv, _ := testReleaseKey(t, "other")
	bin := "tpctl-linux-" + testArch

	cases := []struct {
		name    string
		keys    []releasesig.PublicKey
		running string
		prepare func(t *testing.T, r testRelease)
		// location overrides the loopback server.
		location func(srv string) string
		is       error
		want     string
	}{
		{name: "tampered sums", prepare: func(t *testing.T, r testRelease) {
			b, err := os.ReadFile(r.path(releasesig.SumsFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(r.path(releasesig.SumsFile), bytes.Replace(b, []byte("0000"), []byte("1111"), 1), 0o644))
		}, is: releasesig.ErrBadSignature, want: "signature does not verify with any trusted release key"},
		{name: "wrong key", prepare: func(t *testing.T, r testRelease) {
			b, err := os.ReadFile(r.path(releasesig.SumsFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(r.path(releasesig.SigFile), ed25519.Sign(otherPriv, b), 0o644))
		}, is: releasesig.ErrBadSignature, want: "(1 keys tried)"},
		{name: "missing signature", prepare: func(t *testing.T, r testRelease) {
			require.NoError(t, os.Remove(r.path(releasesig.SigFile)))
		}, is: releasesig.ErrNoSignature, want: "SHA256SUMS.sig is missing or empty"},
		{name: "tampered binary", prepare: func(t *testing.T, r testRelease) {
			f, err := os.OpenFile(r.path(bin), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString("echo evil\n")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, is: releasesig.ErrDigestMismatch, want: "sha256 mismatch"},
		{name: "downgrade", running: "v0.7.0", is: errDowngrade,
			want: "the release is tpctl v0.6.0, this tpctl is v0.7.0"},
		{name: "running tpctl not a release", running: "dev", is: errUnordered, want: "this tpctl is dev, not a release"},
		{name: "no trusted keys", keys: []releasesig.PublicKey{}, is: releasesig.ErrNoKeys,
			want: "this tpctl was built without release keys"},
		{name: "http to a host that is not loopback", location: func(string) string { return "http://releases.example.com/v0.6.0" },
			is: errInsecureRelease, want: "plain http:// to a host that is not loopback"},
		{name: "redirect to http not on loopback", location: func(srv string) string { return srv + "/redirect" },
			is: errInsecureRelease, want: "http://releases.example.com/SHA256SUMS is plain http://"},
		{name: "other scheme", location: func(string) string { return "ftp://127.0.0.1/r" },
			is: errInsecureRelease, want: "only https://, http:// on loopback, file:// or a directory"},
		{name: "not a directory", location: func(string) string { return "/nonexistent/release" },
			is: errNoRelease, want: "no such file or directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rel := writeTestRelease(t, priv, "v0.6.0")
			if c.prepare != nil {
				c.prepare(t, rel)
			}
			mux := http.NewServeMux()
			mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://releases.example.com/"+filepath.Base(r.URL.Path), http.StatusFound)
			})
			mux.Handle("/", http.FileServer(http.Dir(rel.dir)))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			loc := srv.URL
			if c.location != nil {
				loc = c.location(srv.URL)
			}
			keys := []releasesig.PublicKey{pub}
			if c.keys != nil {
				keys = c.keys
			}
			running := "v0.5.0"
			if c.running != "" {
				running = c.running
			}
			u, tmp, _, _ := upgrader(t, running, keys...)
			err := u.Upgrade(context.Background(), loc, []string{"--yes"}, false, false)
			require.Error(t, err)
			assert.ErrorIs(t, err, c.is)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "nothing was installed")
			assert.Equal(t, cli.ExitPreflight, cli.ExitCode(err))
			_, serr := os.Stat(rel.record)
			assert.ErrorIs(t, serr, os.ErrNotExist, "the release's tpctl did not run")
			assertEmptyDir(t, tmp)
		})
	}
}

func TestCheckReleaseURLLoopback(t *testing.T) {
	for loc, ok := range map[string]bool{
		"https://github.com/tpctl/tpctl/releases/download/v1": true,
		"http://127.0.0.1:8080/r":                             true,
		"http://127.8.9.10/r":                                 true,
		"http://[::1]:9/r":                                    true,
		"http://localhost/r":                                  true,
		"http://10.0.0.1/r":                                   false,
		"http://localhost.example.com/r":                      false,
		"http://127.0.0.1.nip.io/r":                           false,
	} {
		_, err := parseReleaseSource(loc)
		if ok {
			assert.NoError(t, err, loc)
		} else {
			assert.ErrorIs(t, err, errInsecureRelease, loc)
		}
	}
}

func TestUpgradeReleaseFlagsPassedOn(t *testing.T) {
	cmd := newUpgradeCmd()
	require.NoError(t, cmd.ParseFlags([]string{"--release", "https://example.com/r", "-y", "--dry-run",
		"--k3s-images", "/a.tar,/b.tar", "--timeout", "5m", "--k3s-binary", "/x/k3s"}))
	assert.Equal(t, []string{"--k3s-binary=/x/k3s", "--k3s-images=/a.tar", "--k3s-images=/b.tar", "--timeout=5m0s", "--yes=true"},
		passedFlags(cmd.Flags(), "release", "dry-run"))
}

// TestUpgradeReleaseCommandWithoutKeys: this tree lists no release key, so
// the command refuses before fetching anything.
func TestUpgradeReleaseCommandWithoutKeys(t *testing.T) {
	keys, err := releasesig.TrustedKeys()
	require.NoError(t, err)
	if len(keys) > 0 {
		t.Skip("this build trusts release keys")
	}
	rel := writeTestRelease(t, ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), "v0.6.0")
	cmd := newUpgradeCmd()
	cmd.SetArgs([]string{"--release", rel.dir, "--yes"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err = cmd.ExecuteContext(context.Background())
	require.Error(t, err)
	assert.True(t, errors.Is(err, releasesig.ErrNoKeys), err.Error())
	_, serr := os.Stat(rel.record)
	assert.ErrorIs(t, serr, os.ErrNotExist)
}

// After the release's upgrade succeeded, the verified binary replaces the
// host's tpctl (0755); a failed upgrade leaves it; without one there,
// nothing is created.
func TestUpgradeReleaseInstallsTheVerifiedBinary(t *testing.T) {
	priv, pub := testReleaseKey(t, "")
	rel := writeTestRelease(t, priv, "v0.6.0")
	want, err := os.ReadFile(rel.path("tpctl-linux-" + testArch))
	require.NoError(t, err)
	bindir := t.TempDir()
	installed := filepath.Join(bindir, "tpctl")
	require.NoError(t, os.WriteFile(installed, []byte("old tpctl"), 0o755))

	u, tmp, _, errOut := upgrader(t, "v0.5.0", pub)
	u.installPath = installed
	require.Error(t, u.Upgrade(context.Background(), rel.dir, []string{"--fail"}, false, false))
	got, err := os.ReadFile(installed)
	require.NoError(t, err)
	assert.Equal(t, "old tpctl", string(got), "a failed upgrade leaves the installed tpctl")

	u, _, out, _ := upgrader(t, "v0.5.0", pub)
	u.installPath = installed
	require.NoError(t, u.Upgrade(context.Background(), rel.dir, []string{"--yes"}, true, false))
	assert.Contains(t, out.String(), "Would then install it at "+installed+" (replacing tpctl v0.5.0).")
	got, err = os.ReadFile(installed)
	require.NoError(t, err)
	assert.Equal(t, "old tpctl", string(got), "the dry run installs nothing")

	u, tmp, _, errOut = upgrader(t, "v0.5.0", pub)
	u.installPath = installed
	require.NoError(t, u.Upgrade(context.Background(), rel.dir, []string{"--yes"}, false, false), errOut.String())
	got, err = os.ReadFile(installed)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the verified binary is installed")
	fi, err := os.Stat(installed)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	assert.Contains(t, errOut.String(), "installed tpctl v0.6.0 at "+installed)
	ents, err := os.ReadDir(bindir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary file is left beside it")
	assertEmptyDir(t, tmp)

	u, _, _, errOut = upgrader(t, "v0.5.0", pub)
	u.installPath = filepath.Join(t.TempDir(), "tpctl")
	require.NoError(t, u.Upgrade(context.Background(), rel.dir, []string{"--yes"}, false, false))
	_, err = os.Stat(u.installPath)
	assert.ErrorIs(t, err, os.ErrNotExist, "no tpctl is created where there was none")
	assert.Contains(t, errOut.String(), "was not kept")
}
