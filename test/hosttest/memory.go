package hosttest

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Memory is what a Host's processes use, measured from this machine.
type Memory struct {
	// Cgroup is the memory cgroup's usage (cgroup v1
	// memory.usage_in_bytes, v2 memory.current): resident memory and page
	// cache charged to the container, its kernel memory included.
	Cgroup uint64
	// RSS and Cache split the cgroup's usage (v1 total_rss/total_cache,
	// v2 anon/file).
	RSS, Cache uint64
	// PSS is the sum of the proportional set sizes of the container's
	// processes (shared pages divided between their users).
	PSS uint64
	// Processes counted for PSS.
	Processes int
}

// String formats the figures in MiB.
func (m Memory) String() string {
	mib := func(v uint64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }
	return fmt.Sprintf("cgroup %s (rss %s, cache %s), PSS %s over %d processes",
		mib(m.Cgroup), mib(m.RSS), mib(m.Cache), mib(m.PSS), m.Processes)
}

// Memory measures the container's memory: its memory cgroup (made for it
// by the harness) and the PSS of every process in it.
func (h *Host) Memory() (Memory, error) {
	var m Memory
	var dir string
	v2 := false
	for _, c := range h.cgroups {
		switch {
		case strings.HasPrefix(c, "/sys/fs/cgroup/memory/"):
			dir = c
		case dir == "" && fileExists(filepath.Join(c, "memory.current")):
			dir, v2 = c, true
		}
	}
	if dir == "" {
		return m, fmt.Errorf("no memory cgroup for %s", h.opts.Name)
	}
	usage, stat := "memory.usage_in_bytes", map[string]*uint64{"total_rss": &m.RSS, "total_cache": &m.Cache}
	if v2 {
		usage, stat = "memory.current", map[string]*uint64{"anon": &m.RSS, "file": &m.Cache}
	}
	data, err := os.ReadFile(filepath.Join(dir, usage))
	if err != nil {
		return m, fmt.Errorf("read %s: %w", usage, err)
	}
	if m.Cgroup, err = strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err != nil {
		return m, fmt.Errorf("parse %s: %w", usage, err)
	}
	data, err = os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return m, fmt.Errorf("read memory.stat: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			if p := stat[k]; p != nil {
				*p, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	pids := map[int]bool{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil //nolint:nilerr // a cgroup removed meanwhile
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids[pid] = true
			}
		}
		return nil
	})
	for pid := range pids {
		if pss, ok := processPSS(pid); ok {
			m.PSS += pss
			m.Processes++
		}
	}
	return m, nil
}

// processPSS reads a process's Pss from smaps_rollup, in bytes.
func processPSS(pid int) (uint64, bool) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
