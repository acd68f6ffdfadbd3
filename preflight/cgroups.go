package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/tpctl/tpctl/internal/mountinfo"
)

// mount is one line of /proc/self/mountinfo.
type mount = mountinfo.Mount

// cgroupInfo is the host's cgroup layout.
type cgroupInfo struct {
	// Version is 2 when /sys/fs/cgroup is a cgroup2 mount, 1 when cgroup v1
	// hierarchies are mounted (hybrid layouts included), 0 when unknown.
	Version int
	Hybrid  bool
	// V1 maps a v1 controller to its mount; Unified is the cgroup2 mount.
	V1      map[string]mount
	Unified *mount
	// Enabled maps controller → enabled, from /proc/cgroups (nil if unread).
	Enabled map[string]bool
	// Available lists the v2 root's controllers (cgroup.controllers).
	Available map[string]bool
	// Self maps a v1 controller ("" for v2) to this process's cgroup path.
	Self map[string]string
}

func (h *Host) cgroupInfo() (*cgroupInfo, error) {
	return h.cgroups.get(func() (*cgroupInfo, error) {
		b, err := h.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return nil, err
		}
		mounts, err := mountinfo.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("parse /proc/self/mountinfo: %w", err)
		}
		ci := &cgroupInfo{V1: map[string]mount{}}
		for _, m := range mounts {
			switch m.FSType {
			case "cgroup2":
				mm := m
				if ci.Unified == nil || m.MountPoint == "/sys/fs/cgroup" {
					ci.Unified = &mm
				}
			case "cgroup":
				for _, o := range m.SuperOpts {
					if o != "rw" && o != "ro" && !strings.Contains(o, "=") {
						ci.V1[o] = m
					}
				}
			}
		}
		switch {
		case ci.Unified != nil && ci.Unified.MountPoint == "/sys/fs/cgroup":
			// A v1 controller mounted somewhere else on a unified host
			// does not make it a v1 host.
			ci.Version = 2
		case len(ci.V1) > 0:
			ci.Version, ci.Hybrid = 1, ci.Unified != nil
		case ci.Unified != nil:
			ci.Version = 2
		}
		if ci.Version == 2 {
			if b, err := h.ReadFile(ci.Unified.MountPoint + "/cgroup.controllers"); err == nil {
				ci.Available = map[string]bool{}
				for _, c := range strings.Fields(string(b)) {
					ci.Available[c] = true
				}
			}
		}
		if b, err := h.ReadFile("/proc/cgroups"); err == nil {
			ci.Enabled = parseProcCgroups(b)
		}
		if b, err := h.ReadFile("/proc/self/cgroup"); err == nil {
			ci.Self = parseSelfCgroup(b)
		}
		return ci, nil
	})
}

// parseProcCgroups reads /proc/cgroups: "subsys hierarchy num enabled".
func parseProcCgroups(b []byte) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		out[f[0]] = f[3] == "1"
	}
	return out
}

// parseSelfCgroup reads /proc/self/cgroup: "id:controllers:path".
func parseSelfCgroup(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// cgroupDirs returns this process's cgroup directory for a controller and
// its ancestors up to the mount, nearest first (absolute host paths).
func (ci *cgroupInfo) cgroupDirs(controller string) []string {
	var m mount
	var rel string
	switch {
	case ci.Version == 1:
		mm, ok := ci.V1[controller]
		p, ok2 := ci.Self[controller]
		if !ok || !ok2 {
			return nil
		}
		m, rel = mm, p
	case ci.Version == 2 && ci.Unified != nil:
		p, ok := ci.Self[""]
		if !ok {
			return nil
		}
		m, rel = *ci.Unified, p
	default:
		return nil
	}
	// The path in /proc/self/cgroup is relative to the hierarchy's root;
	// the mount may show a sub-tree of it.
	if m.Root != "/" && strings.HasPrefix(rel, m.Root) {
		rel = strings.TrimPrefix(rel, m.Root)
	}
	var dirs []string
	for p := path.Clean("/" + rel); ; p = path.Dir(p) {
		dirs = append(dirs, path.Join(m.MountPoint, p))
		if p == "/" {
			break
		}
	}
	return dirs
}

// cpuLimit returns the smallest CPU quota (in CPUs) on this process's cgroup
// and its ancestors; ok is false when none is set or none can be read.
func (h *Host) cpuLimit() (cpus float64, ok bool) {
	ci, err := h.cgroupInfo()
	if err != nil {
		return 0, false
	}
	cpus = math.Inf(1)
	if ci.Version == 1 {
		for _, d := range ci.cgroupDirs("cpu") {
			q, err1 := h.readTrim(d + "/cpu.cfs_quota_us")
			p, err2 := h.readTrim(d + "/cpu.cfs_period_us")
			if err1 != nil || err2 != nil {
				continue
			}
			qv, err1 := strconv.ParseFloat(q, 64)
			pv, err2 := strconv.ParseFloat(p, 64)
			if err1 == nil && err2 == nil && qv > 0 && pv > 0 {
				cpus = math.Min(cpus, qv/pv)
			}
		}
	} else {
		for _, d := range ci.cgroupDirs("") {
			s, err := h.readTrim(d + "/cpu.max")
			if err != nil {
				continue
			}
			f := strings.Fields(s)
			if len(f) != 2 || f[0] == "max" {
				continue
			}
			qv, err1 := strconv.ParseFloat(f[0], 64)
			pv, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil && qv > 0 && pv > 0 {
				cpus = math.Min(cpus, qv/pv)
			}
		}
	}
	return cpus, !math.IsInf(cpus, 1)
}

// memoryLimit returns the smallest memory limit in bytes on this process's
// cgroup and its ancestors; ok is false when none is set.
func (h *Host) memoryLimit() (bytes uint64, ok bool) {
	ci, err := h.cgroupInfo()
	if err != nil {
		return 0, false
	}
	file, controller := "memory.max", ""
	if ci.Version == 1 {
		file, controller = "memory.limit_in_bytes", "memory"
	}
	bytes = math.MaxUint64
	for _, d := range ci.cgroupDirs(controller) {
		s, err := h.readTrim(d + "/" + file)
		if err != nil || s == "max" {
			continue
		}
		v, err := strconv.ParseUint(s, 10, 64)
		// cgroup v1 reports "no limit" as a huge page-aligned number.
		if err == nil && v > 0 && v < 1<<62 && v < bytes {
			bytes = v
		}
	}
	return bytes, bytes != math.MaxUint64
}

// cgroupVersionCheck is "CgroupVersion".
func cgroupVersionCheck() Check {
	return checkFunc{name: "CgroupVersion", run: func(_ context.Context, h *Host, r Result) Result {
		ci, err := h.cgroupInfo()
		if err != nil {
			return r.warn(fmt.Sprintf("cannot tell the cgroup version: %s", err),
				"make /proc readable so the cgroup layout can be checked")
		}
		switch ci.Version {
		case 2:
			return r.pass("cgroup v2 (unified hierarchy)")
		case 1:
			layout := "cgroup v1"
			if ci.Hybrid {
				layout = "cgroup v1 (hybrid: v1 controllers with a cgroup2 mount for systemd)"
			}
			return r.warn(layout+": Kubernetes 1.35 and newer kubelets refuse cgroup v1 unless failCgroupV1 is false, "+
				"so tpctl install passes --kubelet-arg=fail-cgroupv1=false to K3s; cgroup v1 is deprecated and its support will be removed",
				"move the host to cgroup v2 (kernel command line systemd.unified_cgroup_hierarchy=1, or a distribution release that defaults to it)")
		}
		return r.fail("no cgroup file system is mounted (neither cgroup2 at /sys/fs/cgroup nor cgroup v1 hierarchies)",
			"mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup) or boot with systemd, which mounts it")
	}}
}

// Controllers the kubelet needs. v1 has separate cpuacct, devices and
// freezer hierarchies; v2 builds them in.
var (
	cgroupV1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer"}
	cgroupV2Controllers = []string{"cpu", "cpuset", "memory", "pids"}
)

// cgroupControllersCheck is "CgroupControllers".
func cgroupControllersCheck() Check {
	return checkFunc{name: "CgroupControllers", run: func(_ context.Context, h *Host, r Result) Result {
		ci, err := h.cgroupInfo()
		if err != nil {
			return r.warn(fmt.Sprintf("cannot list cgroup controllers: %s", err),
				"make /proc readable so the cgroup controllers can be checked")
		}
		var want []string
		have := func(string) bool { return false }
		switch ci.Version {
		case 1:
			want = cgroupV1Controllers
			have = func(c string) bool {
				_, mounted := ci.V1[c]
				return mounted && (ci.Enabled == nil || ci.Enabled[c])
			}
		case 2:
			want = cgroupV2Controllers
			if ci.Available == nil {
				return r.warn(fmt.Sprintf("cannot read %s/cgroup.controllers", ci.Unified.MountPoint),
					"check that /sys/fs/cgroup is a readable cgroup2 mount")
			}
			have = func(c string) bool { return ci.Available[c] }
		default:
			return r.fail("no cgroup file system is mounted, so no controllers are available",
				"mount cgroup2 at /sys/fs/cgroup or boot with systemd")
		}
		var missing []string
		for _, c := range want {
			if !have(c) {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			return r.pass("controllers available: " + strings.Join(want, ", "))
		}
		sort.Strings(missing)
		remedy := "enable the controllers on the kernel command line (cgroup_enable=<name>) and make sure none is listed in cgroup_disable="
		for _, m := range missing {
			if m == "memory" {
				remedy = "add cgroup_memory=1 cgroup_enable=memory to the kernel command line (e.g. /boot/firmware/cmdline.txt on a Raspberry Pi) and reboot"
			}
		}
		return r.fail("missing or disabled cgroup controllers: "+strings.Join(missing, ", "), remedy)
	}}
}
