//go:build integration || e2e

package release

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// privateBinEnv names, in the test binary's own environment, a directory to
// bind over /usr/local/bin before it execs the rest of its arguments: the
// test binary re-executes itself in a new mount namespace for that (see
// TestMain and privateBinCmd).
const privateBinEnv = "TPCTL_RELEASE_TEST_PRIVATE_BIN"

func TestMain(m *testing.M) {
	if dir := os.Getenv(privateBinEnv); dir != "" {
		os.Exit(execWithPrivateBin(dir, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// execWithPrivateBin runs in the child's private mount namespace: it binds
// dir over /usr/local/bin and replaces itself with args (an absolute path
// first).
func execWithPrivateBin(dir string, args []string) int {
	if len(args) == 0 || !filepath.IsAbs(args[0]) {
		fmt.Fprintln(os.Stderr, "private bin: want an absolute program path")
		return 125
	}
	if err := syscall.Mount(dir, "/usr/local/bin", "", syscall.MS_BIND, ""); err != nil {
		fmt.Fprintf(os.Stderr, "private bin: bind %s over /usr/local/bin: %v\n", dir, err)
		return 125
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, privateBinEnv+"=") {
			env = append(env, e)
		}
	}
	err := syscall.Exec(args[0], args, env)
	fmt.Fprintf(os.Stderr, "private bin: exec %s: %v\n", args[0], err)
	return 126
}

// privateBinCmd returns a command that runs args (an absolute program path
// first) with bin mounted over /usr/local/bin in a mount namespace of its
// own; the host's /usr/local/bin is not touched. env is the whole
// environment of the program.
func privateBinCmd(ctx context.Context, bin string, env []string, args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(append([]string{}, env...), privateBinEnv+"="+bin)
	// Go makes the new namespace's mounts private (MS_REC|MS_PRIVATE on /)
	// before the child runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd
}

// moduleRoot is the directory holding tpctl's go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	for d := wd; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/tpctl/tpctl\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no tpctl go.mod above %s", wd)
		}
	}
}

// releaseKey is a throwaway release key pair made for one test: the files
// scripts/release reads (TPCTL_RELEASE_KEY, TPCTL_RELEASE_TRUSTED_KEYS).
type releaseKey struct {
	priv            ed25519.PrivateKey
	keyFile, listed string
}

// newReleaseKey writes a fresh Ed25519 key (PEM, 0600) and a trusted-key
// list naming its public half into a temporary directory.
func newReleaseKey(t testing.TB) releaseKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	dir := t.TempDir()
	k := releaseKey{priv: priv, keyFile: filepath.Join(dir, "release.pem"), listed: filepath.Join(dir, "keys.txt")}
	require.NoError(t, os.WriteFile(k.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(k.listed, []byte(base64.StdEncoding.EncodeToString(pubDER)+" test key\n"), 0o644))
	return k
}

func (k releaseKey) env() []string {
	return []string{"TPCTL_RELEASE_KEY=" + k.keyFile, "TPCTL_RELEASE_TRUSTED_KEYS=" + k.listed}
}

// sign writes dir/SHA256SUMS.sig: the signature of dir/SHA256SUMS by k.
func (k releaseKey) sign(t testing.TB, dir string) {
	t.Helper()
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "SHA256SUMS.sig"), ed25519.Sign(k.priv, sums), 0o644))
}

// buildRelease runs scripts/release for this machine's architecture into
// dist with the given extra arguments and environment, and returns its
// combined output. Without TPCTL_RELEASE_KEY in env it signs with a
// throwaway key of its own.
func buildRelease(t testing.TB, dist string, env []string, args ...string) (string, error) {
	t.Helper()
	keyed := false
	for _, e := range env {
		keyed = keyed || strings.HasPrefix(e, "TPCTL_RELEASE_KEY=")
	}
	if !keyed {
		env = append(append([]string{}, env...), newReleaseKey(t).env()...)
	}
	if _, err := exec.LookPath("go"); err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			t.Skip("needs the Go toolchain to build the release")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root := moduleRoot(t)
	full := append([]string{"--arch", runtime.GOARCH, "--dist", dist}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "release"), full...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/release %s: %s", strings.Join(full, " "), time.Since(start).Round(time.Second))
	if err != nil {
		return string(out), fmt.Errorf("scripts/release %s: %w", strings.Join(full, " "), err)
	}
	return string(out), nil
}

// binaryName is the release binary for this machine.
func binaryName() string { return "tpctl-linux-" + runtime.GOARCH }

// install.sh's exit codes, as its header documents them.
const (
	exitNotRoot    = 10
	exitArch       = 11
	exitDownload   = 12
	exitChecksum   = 13
	exitTool       = 14
	exitNoSig      = 16
	exitBadSig     = 17
	exitDowngrade  = 18
	exitInsecure   = 19
	exitNotRelease = 20
)

func sha256File(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// readSums parses a SHA256SUMS file into name → digest.
func readSums(t testing.TB, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 2, "SHA256SUMS line %q", line)
		sums[f[1]] = f[0]
	}
	return sums
}

// copyRelease copies a release directory, applying edit to the named file's
// bytes (a tampered or truncated copy).
func copyRelease(t testing.TB, src, dst, name string, edit func([]byte) []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		if e.Name() == name {
			data = edit(data)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), data, 0o755))
	}
}

// corruptUpdate writes into dst a release that looks like a newer one
// (SHA256SUMS names another digest for the binary) whose binary arrives
// truncated: install.sh refuses it before downloading the binary, since
// SHA256SUMS does not list the digest the script carries.
func corruptUpdate(t testing.TB, src, dst, name string) {
	t.Helper()
	copyRelease(t, src, dst, name, truncate)
	newer := sha256.Sum256([]byte("a newer tpctl"))
	sums := fmt.Sprintf("%s  %s\n", hex.EncodeToString(newer[:]), name)
	require.NoError(t, os.WriteFile(filepath.Join(dst, "SHA256SUMS"), []byte(sums), 0o644))
}

func tamper(b []byte) []byte {
	c := append([]byte{}, b...)
	c[len(c)/2] ^= 0xff
	return c
}

func truncate(b []byte) []byte { return append([]byte{}, b[:len(b)/2]...) }

// exitCode is the process's exit status, or -1 when it did not exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// requestLog records the paths a test HTTP server was asked for.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) add(p string) { l.mu.Lock(); l.paths = append(l.paths, p); l.mu.Unlock() }

// take returns the paths asked for since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.paths
	l.paths = nil
	return p
}

// serve serves root over HTTP on 127.0.0.1 until the test ends.
func serve(t *testing.T, ln net.Listener, root string, log *requestLog) {
	files := http.FileServer(http.Dir(root))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.add(r.URL.Path)
			files.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// openTempDir is a temporary directory that the user nobody can enter too
// (t.TempDir's parent is private to root).
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tpctl-release-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func tailOf(s string) string {
	if len(s) > 600 {
		return "…" + s[len(s)-600:]
	}
	return s
}
