package preflight

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCgroupVersion(t *testing.T) {
	r := runOne(t, cgroupVersionCheck(), fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "cgroup v2")

	h := fakeHost(t, "v1", nil)
	r = runOne(t, cgroupVersionCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "hybrid")
	assert.Contains(t, r.Message, "Kubernetes 1.35 and newer kubelets refuse cgroup v1")
	assert.Contains(t, r.Message, "--kubelet-arg=fail-cgroupv1=false")
	assert.Contains(t, r.Message, "deprecated")
	assert.Contains(t, r.Remedy, "systemd.unified_cgroup_hierarchy=1")
	assert.Equal(t, []string{"fail-cgroupv1=false"}, GatherFacts(h).KubeletArgs)
	assert.Equal(t, 1, GatherFacts(h).CgroupVersion)

	none := "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	r = runOne(t, cgroupVersionCheck(), fakeHost(t, "v2", map[string]string{"proc/self/mountinfo": none}))
	assert.Equal(t, Fail, r.Severity)

	r = runOne(t, cgroupVersionCheck(), fakeHost(t, "v2", map[string]string{"proc/self/mountinfo": del}))
	assert.Equal(t, Warn, r.Severity)
}

func TestCgroupControllers(t *testing.T) {
	r := runOne(t, cgroupControllersCheck(), fakeHost(t, "v2", nil))
	assert.Equal(t, Pass, r.Severity, r.Message)
	assert.Equal(t, "controllers available: cpu, cpuset, memory, pids", r.Message)

	r = runOne(t, cgroupControllersCheck(), fakeHost(t, "v1", nil))
	assert.Equal(t, Pass, r.Severity, r.Message)

	r = runOne(t, cgroupControllersCheck(), fakeHost(t, "v2", map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu io memory\n"}))
	assert.Equal(t, Fail, r.Severity)
	assert.Equal(t, "missing or disabled cgroup controllers: cpuset, pids", r.Message)

	// Memory disabled on the kernel command line (Raspberry Pi OS default).
	h := fakeHost(t, "v1", map[string]string{"proc/cgroups": "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t3\t1\t1\ncpuacct\t3\t1\t1\nmemory\t0\t1\t0\ndevices\t3\t1\t1\nfreezer\t3\t1\t1\npids\t3\t1\t1\n"})
	r = runOne(t, cgroupControllersCheck(), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "memory")
	assert.Contains(t, r.Remedy, "cgroup_enable=memory")

	r = runOne(t, cgroupControllersCheck(), fakeHost(t, "v2", map[string]string{"sys/fs/cgroup/cgroup.controllers": del}))
	assert.Equal(t, Warn, r.Severity)
}

func TestCPU(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	r := runOne(t, cpuCheck(), h)
	assert.Equal(t, Pass, r.Severity)
	assert.Equal(t, "4 CPUs usable", r.Message)

	h.NumCPU = func() int { return 1 }
	r = runOne(t, cpuCheck(), h)
	assert.Equal(t, Warn, r.Severity)

	// A container with half a CPU (cgroup v2 cpu.max on an ancestor).
	h = fakeHost(t, "v2", map[string]string{"proc/self/cgroup": "0::/machine.slice/ct1\n", "sys/fs/cgroup/machine.slice/cpu.max": "50000 100000\n", "sys/fs/cgroup/machine.slice/ct1/cpu.max": "max 100000\n"})
	r = runOne(t, cpuCheck(), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "0.50 CPUs (cgroup CPU quota; the host has 4)")

	// cgroup v1 quota of 1.5 CPUs.
	h = fakeHost(t, "v1", map[string]string{"sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_quota_us": "150000\n"})
	r = runOne(t, cpuCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "1.50 CPUs")
}

func TestMemory(t *testing.T) {
	meminfo := func(kb int) map[string]string {
		return map[string]string{"proc/meminfo": fmt.Sprintf("MemTotal:       %d kB\nMemFree:          1000 kB\n", kb)}
	}
	cases := map[int]Severity{512 * 1024: Fail, 1536 * 1024: Warn, 8 * 1024 * 1024: Pass}
	for kb, want := range cases {
		r := runOne(t, memoryCheck(), fakeHost(t, "v2", meminfo(kb)))
		assert.Equal(t, want, r.Severity, "%d kB: %s", kb, r.Message)
		if want != Pass {
			assert.NotEmpty(t, r.Remedy)
		}
	}
	r := runOne(t, memoryCheck(), fakeHost(t, "v2", nil))
	assert.Equal(t, "7.7 GiB of memory", r.Message)

	// A cgroup v1 limit below MemTotal wins; the "unlimited" value does not.
	r = runOne(t, memoryCheck(), fakeHost(t, "v1", nil))
	assert.Equal(t, Pass, r.Severity)
	r = runOne(t, memoryCheck(), fakeHost(t, "v1", map[string]string{"sys/fs/cgroup/memory/user.slice/memory.limit_in_bytes": "536870912\n"}))
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "512.0 MiB (cgroup memory limit")

	r = runOne(t, memoryCheck(), fakeHost(t, "v2", map[string]string{"proc/meminfo": "MemFree: 1 kB\n"}))
	assert.Equal(t, Warn, r.Severity)
}

func TestDisk(t *testing.T) {
	for free, want := range map[uint64]Severity{3 * gib: Fail, 7 * gib: Warn, 50 * gib: Pass} {
		h := fakeHost(t, "v2", nil)
		var asked string
		h.Statfs = func(p string) (DiskSpace, error) { asked = p; return DiskSpace{Total: 100 * gib, Free: free}, nil }
		r := runOne(t, diskCheck(DefaultDataDir), h)
		assert.Equal(t, want, r.Severity, "%d free: %s", free, r.Message)
		// /var/lib/rancher/k3s does not exist in the fake tree: the nearest
		// existing parent is its root.
		assert.Equal(t, h.Path("/"), asked)
		assert.Contains(t, r.Message, "nearest existing parent of /var/lib/rancher/k3s")
	}

	h := fakeHost(t, "v2", map[string]string{"var/lib/rancher/k3s/server/token": "x"})
	var asked string
	h.Statfs = func(p string) (DiskSpace, error) { asked = p; return DiskSpace{Free: 20 * gib}, nil }
	r := runOne(t, diskCheck(DefaultDataDir), h)
	assert.Equal(t, h.Path("/var/lib/rancher/k3s"), asked)
	assert.Equal(t, "20.0 GiB free under /var/lib/rancher/k3s", r.Message)

	h.Statfs = func(string) (DiskSpace, error) { return DiskSpace{}, errBoom }
	r = runOne(t, diskCheck(DefaultDataDir), h)
	assert.Equal(t, Warn, r.Severity)
}

func TestSwap(t *testing.T) {
	assert.Equal(t, Pass, runOne(t, swapCheck(), fakeHost(t, "v2", nil)).Severity)
	swaps := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t2097148\t\t0\t\t-2\n"
	r := runOne(t, swapCheck(), fakeHost(t, "v2", map[string]string{"proc/swaps": swaps}))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "2.0 GiB on /swapfile")
	assert.Contains(t, r.Remedy, "swapoff -a")
	assert.Equal(t, Warn, runOne(t, swapCheck(), fakeHost(t, "v2", map[string]string{"proc/swaps": del})).Severity)
}

func TestFormatBytes(t *testing.T) {
	assert.Equal(t, "512 B", formatBytes(512))
	assert.Equal(t, "1.0 KiB", formatBytes(1024))
	assert.Equal(t, "1.5 GiB", formatBytes(1536<<20))
	assert.Equal(t, "2.0 TiB", formatBytes(2<<40))
}

func TestCgroupV2WithStrayV1Mount(t *testing.T) {
	mi := "25 24 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
		"50 22 0:40 / /dev/cpuset rw - cgroup cgroup rw,cpuset\n"
	h := fakeHost(t, "v2", map[string]string{"proc/self/mountinfo": mi})
	r := runOne(t, cgroupVersionCheck(), h)
	assert.Equal(t, Pass, r.Severity, r.Message)
	assert.Equal(t, Pass, runOne(t, cgroupControllersCheck(), h).Severity)
}
