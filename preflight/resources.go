package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Resource thresholds. A single-node K3s server with the operator, the core
// instance and a few pipelines needs about one CPU and one GiB of memory to
// start at all, and twice that to run without pressure; container images,
// the datastore and logs need 5 GiB of disk at least and 10 GiB to grow.
//
//	check   fail below   warn below
//	CPU     1 CPU        2 CPUs      (CPUs usable by this process: affinity and cgroup CPU quota)
//	Memory  1 GiB        2 GiB       (MemTotal, or a lower cgroup memory limit)
//	Disk    5 GiB        10 GiB      (free space under the K3s data dir)
const (
	CPUFail    = 1.0
	CPUWarn    = 2.0
	MemoryFail = 1 << 30
	MemoryWarn = 2 << 30
	DiskFail   = 5 << 30
	DiskWarn   = 10 << 30
)

// DefaultDataDir is where K3s keeps its state unless told otherwise.
const DefaultDataDir = "/var/lib/rancher/k3s"

func cpuCheck() Check {
	return checkFunc{name: "CPU", run: func(_ context.Context, h *Host, r Result) Result {
		n := float64(h.NumCPU())
		src := fmt.Sprintf("%d CPUs", int(n))
		if q, ok := h.cpuLimit(); ok && q < n {
			n = q
			src = fmt.Sprintf("%.2f CPUs (cgroup CPU quota; the host has %d)", q, h.NumCPU())
		}
		remedy := "give the host (or its container) more CPUs"
		switch {
		case n < CPUFail:
			return r.fail(fmt.Sprintf("%s usable, at least %.0f needed", src, CPUFail), remedy)
		case n < CPUWarn:
			return r.warn(fmt.Sprintf("%s usable, %.0f or more recommended", src, CPUWarn), remedy)
		}
		return r.pass(src + " usable")
	}}
}

// parseMeminfo reads "Key: value kB" lines of /proc/meminfo into bytes.
func parseMeminfo(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		out[strings.TrimSpace(k)] = n
	}
	return out
}

func memoryCheck() Check {
	return checkFunc{name: "Memory", run: func(_ context.Context, h *Host, r Result) Result {
		b, err := h.ReadFile("/proc/meminfo")
		if err != nil {
			return r.warn(fmt.Sprintf("cannot read the memory size: %s", err), "check by hand that the host has 2 GiB of memory or more")
		}
		total, ok := parseMeminfo(b)["MemTotal"]
		if !ok {
			return r.warn("/proc/meminfo has no MemTotal line", "check by hand that the host has 2 GiB of memory or more")
		}
		src := formatBytes(total)
		if lim, ok := h.memoryLimit(); ok && lim < total {
			src = fmt.Sprintf("%s (cgroup memory limit; the host has %s)", formatBytes(lim), formatBytes(total))
			total = lim
		}
		remedy := "give the host (or its container) more memory"
		switch {
		case total < MemoryFail:
			return r.fail(fmt.Sprintf("%s of memory, at least %s needed", src, formatBytes(MemoryFail)), remedy)
		case total < MemoryWarn:
			return r.warn(fmt.Sprintf("%s of memory, %s or more recommended", src, formatBytes(MemoryWarn)), remedy)
		}
		return r.pass(src + " of memory")
	}}
}

// diskCheck is "Disk": free space where the K3s data dir is or will be.
func diskCheck(dataDir string) Check {
	return checkFunc{name: "Disk", run: func(_ context.Context, h *Host, r Result) Result {
		dir := path.Clean("/" + dataDir)
		for dir != "/" && !h.Exists(dir) {
			dir = path.Dir(dir)
		}
		where := dir
		if dir != path.Clean("/"+dataDir) {
			where = fmt.Sprintf("%s (nearest existing parent of %s)", dir, dataDir)
		}
		ds, err := h.Statfs(h.Path(dir))
		if err != nil {
			return r.warn(fmt.Sprintf("cannot measure free space under %s: %s", where, err),
				fmt.Sprintf("check by hand (df -h %s) that %s are free", dir, formatBytes(DiskWarn)))
		}
		remedy := fmt.Sprintf("free space on the file system holding %s, or choose another --data-dir", dataDir)
		switch {
		case ds.Free < DiskFail:
			return r.fail(fmt.Sprintf("%s free under %s, at least %s needed", formatBytes(ds.Free), where, formatBytes(DiskFail)), remedy)
		case ds.Free < DiskWarn:
			return r.warn(fmt.Sprintf("%s free under %s, %s or more recommended", formatBytes(ds.Free), where, formatBytes(DiskWarn)), remedy)
		}
		return r.pass(fmt.Sprintf("%s free under %s", formatBytes(ds.Free), where))
	}}
}

// swapDevice is one line of /proc/swaps.
type swapDevice struct {
	Name string
	Size uint64 // bytes
}

// parseSwaps reads /proc/swaps (a header line, then one line per device).
func parseSwaps(b []byte) []swapDevice {
	var out []swapDevice
	sc := bufio.NewScanner(bytes.NewReader(b))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 3 {
			continue
		}
		kb, _ := strconv.ParseUint(f[2], 10, 64)
		out = append(out, swapDevice{Name: f[0], Size: kb * 1024})
	}
	return out
}

func swapCheck() Check {
	return checkFunc{name: "Swap", run: func(_ context.Context, h *Host, r Result) Result {
		b, err := h.ReadFile("/proc/swaps")
		if err != nil {
			return r.warn(fmt.Sprintf("cannot tell whether swap is on: %s", err), "check by hand with swapon --show")
		}
		devs := parseSwaps(b)
		if len(devs) == 0 {
			return r.pass("swap is off")
		}
		var names []string
		var total uint64
		for _, d := range devs {
			names = append(names, d.Name)
			total += d.Size
		}
		return r.warn(fmt.Sprintf("swap is on (%s on %s): K3s runs the kubelet with fail-swap-on=false, but memory limits of pods become less predictable",
			formatBytes(total), strings.Join(names, ", ")),
			"turn swap off (swapoff -a) and remove the swap entries from /etc/fstab")
	}}
}

// formatBytes prints a size in binary units with one decimal.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
