package hosttest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupMove serialises moving this process between cgroups to start a
// container from its own.
var cgroupMove sync.Mutex

// hierarchy is one mounted cgroup hierarchy and this process's place in it.
type hierarchy struct {
	mount string // e.g. /sys/fs/cgroup/memory
	path  string // this process's cgroup in it, e.g. /process_api/x
}

// ownHierarchies maps the lines of /proc/self/cgroup to mounted
// hierarchies (v1 controllers, the named systemd hierarchy, and the unified
// one).
func ownHierarchies() ([]hierarchy, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	var out []hierarchy
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var mount string
		switch ctrl := parts[1]; {
		case ctrl == "" && fileExists("/sys/fs/cgroup/unified/cgroup.procs"):
			mount = "/sys/fs/cgroup/unified"
		case ctrl == "" && fileExists("/sys/fs/cgroup/cgroup.procs"):
			mount = "/sys/fs/cgroup"
		case ctrl == "name=systemd":
			mount = "/sys/fs/cgroup/systemd"
		case ctrl != "":
			mount = "/sys/fs/cgroup/" + ctrl
		}
		if mount == "" || !fileExists(filepath.Join(mount, "cgroup.procs")) {
			continue
		}
		out = append(out, hierarchy{mount: mount, path: parts[2]})
	}
	return out, nil
}

// v1Controllers lists the cgroup v1 hierarchies under /sys/fs/cgroup (the
// names the container sees too), for the remount unit.
func v1Controllers() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range ents {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if e.Name() == "unified" || !fileExists(filepath.Join(p, "cgroup.procs")) {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startInOwnCgroups makes a cgroup for the container next to this process's
// own in every hierarchy, moves this process there, starts cmd (which
// inherits them) and moves this process back.
func (h *Host) startInOwnCgroups(cmd *exec.Cmd) error {
	hs, err := ownHierarchies()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("tpctl-hosttest-%s-%d", h.opts.Name, os.Getpid())
	for _, hi := range hs {
		dir := filepath.Join(hi.mount, hi.path, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("make cgroup %s: %w", dir, err)
		}
		h.cgroups = append(h.cgroups, dir)
		if err := h.saveState(); err != nil {
			return err
		}
		// A new v1 cpuset is empty (ENOSPC on joining) until it gets its
		// parent's CPUs and memory nodes.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("set %s of %s: %w", f, dir, err)
				}
			}
		}
	}
	self := []byte(strconv.Itoa(os.Getpid()))
	// Hosts of other processes are serialised by the host lock; the hosts
	// of one group boot at once in this process, one move at a time.
	cgroupMove.Lock()
	defer cgroupMove.Unlock()
	var moved []hierarchy
	back := func() error {
		var errs []error
		for _, hi := range moved {
			if err := os.WriteFile(filepath.Join(hi.mount, hi.path, "cgroup.procs"), self, 0o644); err != nil {
				errs = append(errs, fmt.Errorf("move back to cgroup %s%s: %w", hi.mount, hi.path, err))
			}
		}
		return errors.Join(errs...)
	}
	for i, hi := range hs {
		if err := os.WriteFile(filepath.Join(h.cgroups[i], "cgroup.procs"), self, 0o644); err != nil {
			return errors.Join(fmt.Errorf("move into cgroup %s: %w", h.cgroups[i], err), back())
		}
		moved = append(moved, hi)
	}
	startErr := cmd.Start()
	if err := back(); err != nil {
		if startErr == nil {
			_ = cmd.Process.Kill()
		}
		return err
	}
	if startErr != nil {
		return fmt.Errorf("start systemd-nspawn: %w", startErr)
	}
	return nil
}

// removeCgroups kills what is left in the container's cgroups and removes
// them, deepest first.
func (h *Host) removeCgroups() error {
	var errs []error
	for _, top := range h.cgroups {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range dirs {
			killCgroup(d)
		}
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 50; try++ { // a dying process holds its cgroup for a moment
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// killCgroup sends SIGKILL to every process in one cgroup directory.
func killCgroup(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}
