package hosttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMountsUnit(t *testing.T) {
	u := mountsUnit([]string{"cpu", "memory"})
	assert.Contains(t, u, "ExecStart=-/bin/mount -o remount,bind,rw /sys/fs/cgroup/cpu\n")
	assert.Contains(t, u, "ExecStart=-/bin/mount -o remount,bind,rw /sys/fs/cgroup/memory\n")
	assert.Contains(t, u, "Before=sysinit.target\n")
	assert.Contains(t, u, "After=systemd-sysctl.service\n")
	// /proc/sys/net is bound onto itself before it is remounted writable.
	bind := strings.Index(u, "--bind /proc/sys/net /proc/sys/net")
	rw := strings.Index(u, "remount,bind,rw /proc/sys/net")
	require.True(t, bind > 0 && rw > bind, u)
	assert.Contains(t, u, "ExecStart=/bin/mount --bind "+tunablesDir+"/vm.overcommit_memory /proc/sys/vm/overcommit_memory\n")
	assert.NotContains(t, u, "SYSTEMD_NSPAWN_API_VFS_WRITABLE=")
}

func TestConfigureRoot(t *testing.T) {
	root := t.TempDir()
	// A debootstrapped root links var/run to /run: setup must not follow it.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var"), 0o755))
	require.NoError(t, os.Symlink("/run", filepath.Join(root, "var/run")))
	require.NoError(t, configureRoot(root, "h1", []string{"memory"}))
	b, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	require.NoError(t, err)
	assert.Equal(t, "h1\n", string(b))
	target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/containerd.service"))
	require.NoError(t, err)
	assert.Equal(t, "/dev/null", target, "Debian's containerd.service is masked")
	target, err = os.Readlink(filepath.Join(root, "etc/systemd/system/sysinit.target.wants", MountsUnit))
	require.NoError(t, err)
	assert.Equal(t, "../"+MountsUnit, target)
	b, err = os.ReadFile(filepath.Join(root, strings.TrimPrefix(tunablesDir, "/"), "kernel.panic"))
	require.NoError(t, err)
	assert.Equal(t, "10\n", string(b))
	// Running it twice is fine (links replaced, not duplicated).
	require.NoError(t, configureRoot(root, "h1", []string{"memory"}))
}

func TestSnapshotDiff(t *testing.T) {
	a := Snapshot{Files: []string{"/etc/a -rw-r--r-- 1", "/etc/b -rw-r--r-- 1"}, Links: []string{"lo", "eth0"}, Rules: []string{"x"}}
	b := Snapshot{Files: []string{"/etc/a -rw-r--r-- 1", "/etc/c -rw-r--r-- 1"}, Links: []string{"lo", "eth0", "cni0"}, Rules: []string{"x"}}
	d := a.Diff(b)
	assert.Equal(t, []string{
		"- file: /etc/b -rw-r--r-- 1",
		"+ file: /etc/c -rw-r--r-- 1",
		"+ interface: cni0",
	}, d)
	assert.Equal(t, map[string]int{"file": 2, "interface": 1}, Residue(d))
	assert.Empty(t, a.Diff(a))
}

func TestSnapshotNoise(t *testing.T) {
	for _, p := range []string{"/var/log/journal", "/var/log/journal/x/system.journal", "/run/systemd/units/x", "/run/utmp"} {
		assert.True(t, snapshotNoise(p), p)
	}
	for _, p := range []string{"/run/k3s", "/var/lib/rancher", "/etc/systemd/system/k3s.service", "/var/log/tpctl", "/run/systemdx"} {
		assert.False(t, snapshotNoise(p), p)
	}
}

func TestOwnNames(t *testing.T) {
	for _, l := range []string{"cni0", "flannel.1", "veth1234", "kube-ipvs0", "cilium_host"} {
		assert.True(t, k3sLink(l), l)
	}
	for _, l := range []string{"eth0", "lo", "ifb0", "docker0"} {
		assert.False(t, k3sLink(l), l)
	}
	assert.True(t, ownChain("KUBE-SERVICES"))
	assert.True(t, ownChain("CNI-abc"))
	assert.False(t, ownChain("INPUT"))
	assert.True(t, builtinChain("POSTROUTING"))
	assert.False(t, builtinChain("KUBE-POSTROUTING"))
}

func TestRootfsKey(t *testing.T) {
	s := DefaultRootfs()
	assert.Equal(t, s.Key(), DefaultRootfs().Key(), "stable")
	s2 := s
	s2.Packages = append(append([]string(nil), s.Packages...), "nftables")
	assert.NotEqual(t, s.Key(), s2.Key(), "a changed recipe is another tarball")
	assert.True(t, strings.HasPrefix(s.TarballName(), "debian-bookworm-minbase-"))
	_, err := CachedRootfs(t.TempDir(), s)
	assert.ErrorIs(t, err, ErrNoRootfs)
}

func TestMountsBelowDeepestFirstAndStrictlyBelow(t *testing.T) {
	table := []byte(`22 1 0:5 / /build/root/proc rw - proc proc rw
23 22 0:6 / /build/root/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt rw
24 1 0:7 / /build/root rw - tmpfs tmpfs rw
25 1 0:8 / /build/rootother/proc rw - proc proc rw
`)
	got, err := mountsBelow(table, "/build/root/")
	require.NoError(t, err)
	assert.Equal(t, []string{"/build/root/proc/sys/fs/binfmt_misc", "/build/root/proc"}, got)
}
