package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tpctl/tpctl/internal/buildinfo"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/internal/releasesig"
	"github.com/tpctl/tpctl/internal/version"
)

// The refusals of `tpctl upgrade --release` besides releasesig's (each
// wrapped in a CodeError with ExitPreflight: nothing was installed).
var (
	errInsecureRelease = errors.New("insecure release location")
	errNoRelease       = errors.New("not a release")
	errDowngrade       = errors.New("older than the running tpctl")
	errUnordered       = errors.New("version cannot be ordered")
)

// Size limits of what a release location serves.
const (
	maxSumsSize   = 1 << 20
	maxSigSize    = 4 << 10
	maxBinarySize = 4 << 30
)

// releaseUpgrader fetches a release's tpctl (its SHA256SUMS, the
// signature and tpctl-linux-<arch>), verifies it with the keys it was given,
// refuses a downgrade, and runs the verified binary's `upgrade`.
type releaseUpgrader struct {
	keys    []releasesig.PublicKey
	running string // the running tpctl's version
	arch    string
	client  *http.Client
	// tempDir holds the download directory ("" is os.TempDir()); it is
	// removed whatever happens.
	tempDir string
	in      io.Reader
	out     io.Writer // the dry run's and the child's standard output
	errOut  io.Writer // progress and the child's standard error
	// installPath is where the host's tpctl lives (install.sh writes
	// InstalledTpctl): after the release's upgrade succeeded, the verified
	// binary replaces the file there, when there is one ("": never).
	installPath string
}

// InstalledTpctl is where install.sh puts tpctl.
const InstalledTpctl = "/usr/local/bin/tpctl"

// newReleaseUpgrader trusts exactly keys (tpctl passes
// releasesig.TrustedKeys(); tests a throwaway key).
func newReleaseUpgrader(keys []releasesig.PublicKey, running, arch string, client *http.Client, tempDir string, in io.Reader, out, errOut io.Writer) *releaseUpgrader {
	u := &releaseUpgrader{
		keys: append([]releasesig.PublicKey(nil), keys...), running: running, arch: arch,
		client: client, tempDir: tempDir, in: in, out: out, errOut: errOut,
	}
	if u.client == nil {
		u.client = &http.Client{}
	}
	// Every redirect is held to the same rule as the location given.
	c := *u.client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		return checkReleaseURL(req.URL)
	}
	u.client = &c
	return u
}

// releaseRun is what a release upgrade ran or, with --dry-run, would run.
type releaseRun struct {
	Release      string   `json:"release"`
	Binary       string   `json:"binary"`
	BinarySHA256 string   `json:"binarySHA256"`
	SignedBy     string   `json:"signedBy"`
	Version      string   `json:"version"`
	Running      string   `json:"running"`
	Argv         []string `json:"argv"`
	DryRun       bool     `json:"dryRun"`
}

// refuse is a refusal: nothing was installed.
func refuse(err error) error {
	return &cli.CodeError{Code: cli.ExitPreflight, Err: fmt.Errorf("upgrade --release refused, nothing was installed: %w", err)}
}

// checkReleaseURL accepts https, and http on loopback only.
func checkReleaseURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return nil
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%w: %s is plain http:// to a host that is not loopback (use https://)", errInsecureRelease, u.Redacted())
	default:
		return fmt.Errorf("%w: %s: only https://, http:// on loopback, file:// or a directory", errInsecureRelease, u.Redacted())
	}
}

// releaseSource is a release location: a base URL or a local directory.
type releaseSource struct {
	base *url.URL // nil for a directory
	dir  string
}

func parseReleaseSource(s string) (releaseSource, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return releaseSource{}, fmt.Errorf("%w: %q: %v", errNoRelease, s, err)
		}
		if u.Scheme == "file" {
			return dirSource(u.Path)
		}
		if err := checkReleaseURL(u); err != nil {
			return releaseSource{}, err
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		return releaseSource{base: u}, nil
	}
	return dirSource(s)
}

func dirSource(dir string) (releaseSource, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return releaseSource{}, fmt.Errorf("%w: %v", errNoRelease, err)
	}
	if !fi.IsDir() {
		return releaseSource{}, fmt.Errorf("%w: %s is not a directory (a release directory holds %s, %s and tpctl-linux-<arch>)", errNoRelease, dir, releasesig.SumsFile, releasesig.SigFile)
	}
	return releaseSource{dir: dir}, nil
}

func (s releaseSource) String() string {
	if s.base != nil {
		return s.base.Redacted()
	}
	return s.dir
}

// fetch copies the release's file name into w (at most limit bytes);
// fs.ErrNotExist when the release has no such file.
func (u *releaseUpgrader) fetch(ctx context.Context, src releaseSource, name string, w io.Writer, limit int64) error {
	var r io.Reader
	if src.base == nil {
		f, err := os.Open(filepath.Join(src.dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	} else {
		ref := *src.base
		ref.Path += "/" + name
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.String(), nil)
		if err != nil {
			return err
		}
		resp, err := u.client.Do(req)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", name, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s at %s: %w", name, src, fs.ErrNotExist)
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("fetch %s from %s: HTTP %s", name, src, resp.Status)
		}
		r = resp.Body
	}
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("fetch %s from %s: %w", name, src, err)
	}
	if n > limit {
		return fmt.Errorf("%w: %s at %s is larger than %d bytes", errNoRelease, name, src, limit)
	}
	return nil
}

// Upgrade verifies the release at location and runs its tpctl's `upgrade`
// with args (unless dryRun). Whatever happens, the download is removed.
func (u *releaseUpgrader) Upgrade(ctx context.Context, location string, args []string, dryRun, jsonOut bool) error {
	src, err := parseReleaseSource(location)
	if err != nil {
		return refuse(err)
	}
	if len(u.keys) == 0 {
		return refuse(fmt.Errorf("%w: this tpctl was built without release keys (internal/releasesig/keys.txt lists none and none were stamped in), so it cannot verify any release; see docs/RELEASING.md", releasesig.ErrNoKeys))
	}
	name := "tpctl-linux-" + u.arch
	var sums, sig bytes.Buffer
	if err := u.fetch(ctx, src, releasesig.SumsFile, &sums, maxSumsSize); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return refuse(fmt.Errorf("%w: no %s at %s", errNoRelease, releasesig.SumsFile, src))
		}
		return refuse(err)
	}
	if err := u.fetch(ctx, src, releasesig.SigFile, &sig, maxSigSize); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return refuse(err)
	}
	key, err := releasesig.NewVerifier(u.keys).VerifySums(sums.Bytes(), sig.Bytes())
	if err != nil {
		return refuse(fmt.Errorf("%s at %s: %w", releasesig.SumsFile, src, err))
	}
	want, err := releasesig.Lookup(sums.Bytes(), name)
	if err != nil {
		return refuse(fmt.Errorf("%w (this host is linux/%s)", err, u.arch))
	}
	fmt.Fprintf(u.errOut, "%s at %s is signed by release key %s\n", releasesig.SumsFile, src, keyName(key))

	dir, err := os.MkdirTemp(u.tempDir, "tpctl-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, name)
	if err := u.download(ctx, src, name, bin); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return refuse(fmt.Errorf("%w: %s lists %s but %s has none", errNoRelease, releasesig.SumsFile, name, src))
		}
		return refuse(err)
	}
	if err := releasesig.VerifyFile(bin, name, sums.Bytes()); err != nil {
		return refuse(fmt.Errorf("%s from %s: %w", name, src, err))
	}
	newVersion, err := u.versionOf(ctx, bin)
	if err != nil {
		return refuse(err)
	}
	if err := checkNotOlder(newVersion, u.running); err != nil {
		return refuse(err)
	}
	run := releaseRun{
		Release: src.String(), Binary: name, BinarySHA256: want, SignedBy: keyName(key),
		Version: newVersion, Running: u.running, Argv: append([]string{bin, "upgrade"}, args...), DryRun: dryRun,
	}
	if dryRun {
		if jsonOut {
			return cli.Encode(u.out, cli.JSON, run)
		}
		fmt.Fprintf(u.out, "Release %s: %s %s (sha256 %s) verified; running tpctl %s.\n", run.Release, name, newVersion, want, u.running)
		fmt.Fprintf(u.out, "Would run (from a temporary copy, removed afterwards): %s\n", quoteArgv(run.Argv))
		if u.installed() {
			fmt.Fprintf(u.out, "Would then install it at %s (replacing tpctl %s).\n", u.installPath, u.running)
		}
		fmt.Fprintln(u.out, "Nothing was changed (dry run).")
		return nil
	}
	fmt.Fprintf(u.errOut, "running tpctl %s (%s verified): %s\n", newVersion, name, quoteArgv(run.Argv))
	// Not bound to ctx: an interrupt reaches the child from the terminal and
	// it records and stops its own upgrade; this process waits for it.
	c := exec.Command(bin, run.Argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = u.in, u.out, u.errOut
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = cli.ExitError
		}
		return &cli.CodeError{Code: code, Err: fmt.Errorf("tpctl %s upgrade ended with exit code %d (its messages are above)", newVersion, ee.ExitCode())}
	}
	if err != nil {
		return fmt.Errorf("run tpctl %s: %w", newVersion, err)
	}
	if !u.installed() {
		if u.installPath != "" {
			fmt.Fprintf(u.errOut, "no tpctl at %s: the verified tpctl %s was not kept (the release is at %s)\n", u.installPath, newVersion, run.Release)
		}
		return nil
	}
	if err := replaceFile(bin, u.installPath); err != nil {
		return fmt.Errorf("the upgrade to tpctl %s succeeded, but installing it at %s failed (the old tpctl is still there; run install.sh of the release to put it in place): %w", newVersion, u.installPath, err)
	}
	fmt.Fprintf(u.errOut, "installed tpctl %s at %s\n", newVersion, u.installPath)
	return nil
}

// installed reports whether installPath holds a tpctl to replace (a
// regular file).
func (u *releaseUpgrader) installed() bool {
	if u.installPath == "" {
		return false
	}
	fi, err := os.Lstat(u.installPath)
	return err == nil && fi.Mode().IsRegular()
}

// replaceFile puts a copy of src at dst (0755) atomically: a temporary
// file beside dst, synced, then renamed over it.
func replaceFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".new-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err = tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err = tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// download writes the release's binary to path (0700).
func (u *releaseUpgrader) download(ctx context.Context, src releaseSource, name, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return err
	}
	if err := u.fetch(ctx, src, name, f, maxBinarySize); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// versionOf asks a verified binary its version (`version -o json`).
func (u *releaseUpgrader) versionOf(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, bin, "version", "-o", "json")
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		hint := ""
		if errors.Is(err, fs.ErrPermission) {
			hint = fmt.Sprintf(" (is %s mounted noexec? TMPDIR names another directory)", filepath.Dir(filepath.Dir(bin)))
		}
		return "", fmt.Errorf("%w: the release's tpctl version: %v%s %s", errNoRelease, err, hint, strings.TrimSpace(stderr.String()))
	}
	var info struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Version == "" {
		return "", fmt.Errorf("%w: the release's tpctl does not state its version (`version -o json`)", errNoRelease)
	}
	return info.Version, nil
}

// checkNotOlder refuses a release older than the running tpctl, and a
// version either side that cannot be ordered. The same version is allowed
// (it completes an interrupted upgrade, or has nothing to do).
func checkNotOlder(release, running string) error {
	r, err := version.Parse(release)
	if err != nil {
		return fmt.Errorf("%w: the release's tpctl is %s: %v", errUnordered, release, err)
	}
	cur, err := version.Parse(running)
	if err != nil {
		return fmt.Errorf("%w: this tpctl is %s, not a release, so whether %s is older cannot be told: run the release's tpctl upgrade directly", errUnordered, running, release)
	}
	if r.Compare(cur) < 0 {
		return fmt.Errorf("%w: the release is tpctl %s, this tpctl is %s (a downgrade is `tpctl upgrade --rollback`)", errDowngrade, release, running)
	}
	return nil
}

func keyName(k releasesig.PublicKey) string {
	if k.Label != "" {
		return k.Label + " (" + k.Fingerprint() + ")"
	}
	return k.Fingerprint()
}

// quoteArgv prints argv for a reader (each argument quoted when needed);
// it is never run by a shell.
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>*?()[]{}") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// passedFlags are the flags set on the command line except those named in
// skip, as --name=value arguments (a slice flag once per value).
func passedFlags(fs *pflag.FlagSet, skip ...string) []string {
	var args []string
	fs.Visit(func(f *pflag.Flag) {
		for _, s := range skip {
			if f.Name == s {
				return
			}
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				args = append(args, "--"+f.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	return args
}

// runReleaseUpgrade is `tpctl upgrade --release LOCATION`.
func runReleaseUpgrade(cmd *cobra.Command, location string, dryRun bool) error {
	keys, err := releasesig.TrustedKeys()
	if err != nil {
		return refuse(err)
	}
	jsonOut := false
	if f := cmd.Flags().Lookup("output"); f != nil {
		jsonOut = f.Value.String() == string(cli.JSON)
	}
	u := newReleaseUpgrader(keys, buildinfo.Get().Version, runtime.GOARCH, nil, "",
		cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	u.installPath = InstalledTpctl
	return u.Upgrade(cmd.Context(), location, passedFlags(cmd.Flags(), "release", "dry-run"), dryRun, jsonOut)
}
