package installer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tpctl/tpctl/internal/mountinfo"
)

// HostOps are the few system calls uninstall makes; tests replace them.
type HostOps struct {
	// ProcDir is the proc file system to read ("/proc").
	ProcDir string
	// Kill sends SIGKILL to a process.
	Kill func(pid int) error
	// Unmount detaches a mount point.
	Unmount func(path string) error
	// Links lists network interface names.
	Links func() ([]string, error)
	// Exec runs a program with an argument list (never a shell), feeding
	// stdin when not nil, and returns its standard output.
	Exec func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
	// LookPath finds a program.
	LookPath func(name string) (string, error)
	// Self is this process's PID, never killed.
	Self int
}

// DefaultHostOps acts on the real machine.
func DefaultHostOps() HostOps {
	return HostOps{
		ProcDir: "/proc",
		Kill:    func(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) },
		Unmount: func(p string) error { return unix.Unmount(p, unix.MNT_DETACH) },
		Links: func() ([]string, error) {
			ifs, err := net.Interfaces()
			if err != nil {
				return nil, fmt.Errorf("list network interfaces: %w", err)
			}
			names := make([]string, len(ifs))
			for i, f := range ifs {
				names[i] = f.Name
			}
			return names, nil
		},
		Exec:     execProgram,
		LookPath: exec.LookPath,
		Self:     os.Getpid(),
	}
}

func execProgram(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// proc is one process as read from /proc.
type proc struct {
	PID, PPID int
	Exe       string
	Cgroups   []string
}

func readProcs(procDir string) ([]proc, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", procDir, err)
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(procDir, e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone
		}
		p := proc{PID: pid, PPID: parseStatPPID(stat)}
		p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
		if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
				// hierarchy-ID:controllers:path
				if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
					p.Cgroups = append(p.Cgroups, parts[2])
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// parseStatPPID reads the parent PID from /proc/<pid>/stat; the command
// name in parentheses may itself hold spaces and parentheses.
func parseStatPPID(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// leftovers returns the processes K3s left behind: those run from below its
// data dir (containerd, its shims), those still in k3s.service's cgroup
// (KillMode=process leaves them there), and all their descendants (pods).
func leftovers(procs []proc, dataDir string, self int) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	marked := map[int]bool{}
	var mark func(int)
	mark = func(pid int) {
		if marked[pid] || pid <= 1 || pid == self {
			return
		}
		marked[pid] = true
		for _, c := range children[pid] {
			mark(c)
		}
	}
	for _, p := range procs {
		if p.Exe != "" && inside(p.Exe, dataDir) {
			mark(p.PID)
			continue
		}
		for _, cg := range p.Cgroups {
			if strings.HasSuffix(cg, "/"+UnitName) || strings.Contains(cg, "/"+UnitName+"/") {
				mark(p.PID)
				break
			}
		}
	}
	out := make([]int, 0, len(marked))
	for pid := range marked {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// mountPoints returns the mount points listed in a mountinfo file.
func mountPoints(info []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(info))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		out = append(out, mountinfo.Unescape(f[4]))
	}
	return out
}

// mountsUnder lists the mount points that start with any of prefixes,
// deepest first. A prefix ending in "/" matches strictly below a directory;
// "/run/netns/cni-" matches K3s's network namespaces only.
func mountsUnder(points []string, prefixes []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range points {
		for _, d := range prefixes {
			if strings.HasPrefix(p, d) && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ci, cj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if ci != cj {
			return ci > cj
		}
		return out[i] > out[j]
	})
	return out
}

func (o HostOps) mountPoints() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(o.ProcDir, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return mountPoints(b), nil
}

// removeRecorded removes one recorded path; it refuses while anything is
// mounted at or below it, so a bind mount never leads into host data.
func removeRecorded(path string, kind string, mounts []string) error {
	for _, m := range mounts {
		if inside(m, path) {
			return fmt.Errorf("remove %s: %s is still mounted", path, m)
		}
	}
	var err error
	switch kind {
	case KindFile, KindSymlink:
		err = os.Remove(path)
	default:
		err = os.RemoveAll(path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
