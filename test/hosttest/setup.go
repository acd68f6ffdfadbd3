package hosttest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MountsUnit is the oneshot unit that makes the cgroup v1 hierarchies and
// /proc/sys/net writable inside the container before sysinit.target.
const MountsUnit = "tpctl-hosttest-mounts.service"

// tunablesDir holds the files bound over the kubelet's kernel tunables.
const tunablesDir = "/usr/lib/tpctl-hosttest/sysctl"

// kubeletTunables are the host-wide sysctls a kubelet sets at start (and
// fails on when it cannot), with the values it wants.
func kubeletTunables() [][2]string {
	return [][2]string{
		{"vm/overcommit_memory", "1"}, {"vm/panic_on_oom", "0"}, {"kernel/panic", "10"},
		{"kernel/panic_on_oops", "1"}, {"kernel/keys/root_maxkeys", "1000000"}, {"kernel/keys/root_maxbytes", "25000000"},
	}
}

// mountsUnit renders MountsUnit. A plain remount,rw of a cgroup hierarchy
// gives EBUSY: it takes remount,bind,rw. /proc/sys/net is bound onto itself
// first so that only it turns writable (kube-proxy sets route_localnet);
// SYSTEMD_NSPAWN_API_VFS_WRITABLE would let the container's systemd rewrite
// host-wide fs.* sysctls. The kubelet's host-wide tunables (vm.*, kernel.*)
// are shown to the container with the values the kubelet wants, from files
// bound over them: the kubelet then has nothing to write, and the host's
// own values stay as they are.
func mountsUnit(controllers []string) string {
	var b strings.Builder
	b.WriteString(`[Unit]
Description=Writable cgroup hierarchies and /proc/sys/net for a Kubernetes node (test host)
DefaultDependencies=no
After=systemd-sysctl.service
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
`)
	for _, c := range controllers {
		fmt.Fprintf(&b, "ExecStart=-/bin/mount -o remount,bind,rw /sys/fs/cgroup/%s\n", c)
	}
	for _, k := range kubeletTunables() {
		fmt.Fprintf(&b, "ExecStart=/bin/mount --bind %s/%s /proc/sys/%s\n", tunablesDir, strings.ReplaceAll(k[0], "/", "."), k[0])
	}
	b.WriteString("ExecStart=/bin/mount --bind /proc/sys/net /proc/sys/net\n")
	b.WriteString("ExecStart=/bin/mount -o remount,bind,rw /proc/sys/net\n")
	b.WriteString("\n[Install]\nWantedBy=sysinit.target\n")
	return b.String()
}

// configureRoot prepares an unpacked root for booting as a node host: host
// name, the mounts unit, Debian's own containerd.service masked (the node's
// runtime is started by K3s), and units that only slow a container's boot
// masked.
func configureRoot(root, name string, controllers []string) error {
	files := map[string]string{
		"etc/hostname":                     name + "\n",
		"etc/hosts":                        "127.0.0.1 localhost\n127.0.1.1 " + name + "\n::1 localhost ip6-localhost ip6-loopback\n",
		"etc/systemd/system/" + MountsUnit: mountsUnit(controllers),
	}
	for _, k := range kubeletTunables() {
		files[strings.TrimPrefix(tunablesDir, "/")+"/"+strings.ReplaceAll(k[0], "/", ".")] = k[1] + "\n"
	}
	for p, content := range files {
		if err := writeRootFile(root, p, content); err != nil {
			return err
		}
	}
	links := map[string]string{
		"etc/systemd/system/sysinit.target.wants/" + MountsUnit: "../" + MountsUnit,
		"etc/systemd/system/containerd.service":                 "/dev/null",
		// No consoles to log in on, no clock to keep.
		"etc/systemd/system/console-getty.service":     "/dev/null",
		"etc/systemd/system/getty@.service":            "/dev/null",
		"etc/systemd/system/systemd-timesyncd.service": "/dev/null",
	}
	for p, target := range links {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("make dir for %s: %w", p, err)
		}
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", p, err)
		}
		if err := os.Symlink(target, full); err != nil {
			return fmt.Errorf("link %s: %w", p, err)
		}
	}
	return nil
}

func writeRootFile(root, p, content string) error {
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("make dir for %s: %w", p, err)
	}
	// The root's own files may be symlinks (etc/hostname is not, but be
	// safe): never write through a link that could lead out of the root.
	if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", p, err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
