package installer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// Cgroups are the process's cgroup paths in the hierarchies that say
	// which unit it belongs to: the unified (v2) one, and on cgroup v1
	// systemd's own (name=systemd) and the pids controller's.
	Cgroups []string
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
			p.Cgroups = unitCgroups(cg)
		}
		out = append(out, p)
	}
	return out, nil
}

// unitCgroups picks from /proc/<pid>/cgroup ("hierarchy-ID:controllers:path"
// lines) the paths of the hierarchies systemd places units in: the unified
// hierarchy ("0::/system.slice/k3s.service"), and on cgroup v1 the
// name=systemd and pids hierarchies. Other v1 controllers may be arranged
// by anyone and do not say which unit a process belongs to.
func unitCgroups(raw []byte) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		if (parts[0] == "0" && parts[1] == "") || slices.Contains(ctrls, "name=systemd") || slices.Contains(ctrls, "pids") {
			out = append(out, parts[2])
		}
	}
	return out
}

// unitCgroup is the cgroup systemd runs k3s.service in.
const unitCgroup = "/system.slice/" + UnitName

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

// leftovers returns the processes K3s left behind: those run from where K3s
// unpacks its own binaries (<dataDir>/data/: containerd, its shims), those
// still in k3s.service's cgroup (KillMode=process leaves the shims there),
// and all their descendants (pods). A program elsewhere in the data dir, or
// in any other unit's cgroup, is not K3s's and is never touched.
func leftovers(procs []proc, dataDir string, self int) []int {
	return leftoversOf(procs, dataDir, self, unitCgroup)
}

// leftoversOf is leftovers for the unit whose cgroup is cgroup
// (k3s-agent.service on a joined host).
func leftoversOf(procs []proc, dataDir string, self int, cgroup string) []int {
	binDir := filepath.Join(dataDir, "data")
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
		// The kernel appends " (deleted)" to the link of a replaced binary.
		if exe := strings.TrimSuffix(p.Exe, " (deleted)"); exe != "" && exe != binDir && inside(exe, binDir) {
			mark(p.PID)
			continue
		}
		for _, cg := range p.Cgroups {
			if inside(cg, cgroup) {
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
