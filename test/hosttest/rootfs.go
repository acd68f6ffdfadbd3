package hosttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tpctl/tpctl/internal/mountinfo"
)

// RootfsSpec describes the Debian root file system a Host boots: a minimal
// debootstrap with systemd, plus packages added with apt-get in a chroot.
type RootfsSpec struct {
	Suite   string
	Variant string
	Mirror  string
	// Include are debootstrap --include packages.
	Include []string
	// Packages are installed afterwards with `chroot DIR apt-get install`.
	Packages []string
}

// DefaultRootfs is the root the install tests boot: systemd and D-Bus, the
// network tools K3s and its uninstall use, and the container runtime the
// K3s-compatible launcher drives (Debian's own containerd.service is masked
// when a Host is made).
func DefaultRootfs() RootfsSpec {
	return RootfsSpec{
		Suite:    "bookworm",
		Variant:  "minbase",
		Mirror:   "http://deb.debian.org/debian",
		Include:  []string{"systemd", "systemd-sysv", "dbus", "iproute2", "iptables", "ca-certificates"},
		Packages: []string{"containerd", "runc", "containernetworking-plugins", "conntrack", "procps", "curl", "kmod"},
	}
}

// Key identifies the recipe: the cached tarball is rebuilt when it changes.
func (s RootfsSpec) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\n%s\n%s\n%s\n%s\n%s\n", s.Suite, s.Variant, s.Mirror, strings.Join(s.Include, ","), strings.Join(s.Packages, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// TarballName is the file name of the cached root under the cache directory.
func (s RootfsSpec) TarballName() string {
	return fmt.Sprintf("debian-%s-%s-%s.tar", s.Suite, s.Variant, s.Key())
}

// CacheDir is where root tarballs are kept: $TPCTL_HOSTTEST_CACHE, else
// .cache/hosttest under the module root that holds the working directory.
func CacheDir() (string, error) {
	if d := os.Getenv("TPCTL_HOSTTEST_CACHE"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tpctl/tpctl\n") {
			return filepath.Join(d, ".cache", "hosttest"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find the module root above %s (or set TPCTL_HOSTTEST_CACHE)", wd)
		}
	}
}

// ErrNoRootfs: the cached root tarball is missing and building it was not
// asked for.
var ErrNoRootfs = errors.New("debian root tarball missing: run scripts/test-deps")

// CachedRootfs returns the path of the cached tarball for spec, or an error
// wrapping ErrNoRootfs.
func CachedRootfs(cacheDir string, spec RootfsSpec) (string, error) {
	p := filepath.Join(cacheDir, spec.TarballName())
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w", p, ErrNoRootfs)
	}
	return p, nil
}

// BuildRootfs makes the tarball for spec in cacheDir unless it exists and
// returns its path. debootstrap takes about two minutes; the packages a
// minute more. The tarball is written under a temporary name and renamed,
// so an interrupted build leaves no half tarball.
func BuildRootfs(ctx context.Context, cacheDir string, spec RootfsSpec, logf func(string, ...any)) (string, error) {
	if p, err := CachedRootfs(cacheDir, spec); err == nil {
		return p, nil
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("make cache dir %s: %w", cacheDir, err)
	}
	work, err := os.MkdirTemp(cacheDir, ".build-")
	if err != nil {
		return "", fmt.Errorf("make build dir: %w", err)
	}
	root := filepath.Join(work, "root")
	defer func() {
		// Never remove through a mount left in the build root.
		if detachBelow(root) == nil {
			_ = os.RemoveAll(work)
		}
	}()
	logf("hosttest: debootstrap %s (%s) into %s", spec.Suite, spec.Variant, root)
	if _, err := run(ctx, nil, "debootstrap", "--variant="+spec.Variant, "--include="+strings.Join(spec.Include, ","),
		spec.Suite, root, spec.Mirror); err != nil {
		return "", err
	}
	if len(spec.Packages) > 0 {
		// Keep maintainer scripts from starting services in the chroot.
		policy := filepath.Join(root, "usr/sbin/policy-rc.d")
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return "", fmt.Errorf("write %s: %w", policy, err)
		}
		env := []string{"DEBIAN_FRONTEND=noninteractive", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		logf("hosttest: apt-get install %s", strings.Join(spec.Packages, " "))
		if _, err := run(ctx, env, "chroot", root, "apt-get", "update", "-qq"); err != nil {
			return "", err
		}
		args := append([]string{root, "apt-get", "install", "-y", "-qq", "--no-install-recommends"}, spec.Packages...)
		if _, err := run(ctx, env, "chroot", args...); err != nil {
			return "", err
		}
		if _, err := run(ctx, env, "chroot", root, "apt-get", "clean"); err != nil {
			return "", err
		}
		if err := os.Remove(policy); err != nil {
			return "", fmt.Errorf("remove %s: %w", policy, err)
		}
	}
	lists, _ := filepath.Glob(filepath.Join(root, "var/lib/apt/lists/*_*"))
	for _, l := range lists {
		_ = os.Remove(l)
	}
	// debootstrap mounts proc (and sometimes sys) in the target and may
	// leave it behind when something still held it; neither belongs in the
	// tarball, and the build dir cannot be removed while they are mounted.
	if err := detachBelow(root); err != nil {
		return "", err
	}
	tmp := filepath.Join(work, "root.tar")
	if _, err := run(ctx, nil, "tar", "--numeric-owner", "--one-file-system", "--xattrs", "--xattrs-include=*", "-C", root, "-cf", tmp, "."); err != nil {
		return "", err
	}
	dst := filepath.Join(cacheDir, spec.TarballName())
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("move root tarball into place: %w", err)
	}
	logf("hosttest: root tarball %s", dst)
	return dst, nil
}

// mountsBelow lists the mount points strictly below dir in a mountinfo
// table, deepest first.
func mountsBelow(table []byte, dir string) ([]string, error) {
	ms, err := mountinfo.Parse(table)
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.MountPoint, prefix) {
			out = append(out, m.MountPoint)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, nil
}

// detachBelow lazily unmounts everything mounted below dir (a build root
// of this package's own making).
func detachBelow(dir string) error {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	points, err := mountsBelow(raw, dir)
	if err != nil {
		return err
	}
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s left in the build root: %w", p, err)
		}
	}
	return nil
}

// RequireRootfs skips t when the cached Debian root tarball is missing
// (scripts/test-deps builds it), and fails it under CI=true, where a
// missing tarball is a broken setup, not a reason to pass.
func RequireRootfs(t testing.TB) {
	t.Helper()
	dir, err := CacheDir()
	if err == nil {
		_, err = CachedRootfs(dir, DefaultRootfs())
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the Debian root tarball is missing (scripts/test-deps builds it), and CI must run this test: %v", err)
	}
	t.Skipf("needs the Debian root tarball (scripts/test-deps builds it): %v", err)
}
