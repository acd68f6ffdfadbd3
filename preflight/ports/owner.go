package ports

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ownerCache remembers what the scan of <ProcDir>/<pid>/fd found, so that
// all Conflicts calls together walk the process list at most once.
type ownerCache struct {
	started bool
	// pending lists the pid directories not scanned yet, in kernel order.
	pending []string
	// want is the set of socket inodes in the table (only those are recorded).
	want map[uint64]bool
	// pidOf maps a socket inode to the first process found holding it.
	pidOf map[uint64]int
	// procs caches comm and exe per pid.
	procs map[int]procInfo
}

type procInfo struct{ comm, exe string }

// resolveOwners fills PID, Process and Exe of socks. Inodes already found are
// answered from the cache; for the others the scan of the process list
// resumes where it last stopped and stops again as soon as all of them are
// found, so a run that asks about every row still reads each process's fd
// directory at most once, and a run without conflicts reads none. Owners that
// cannot be seen (another PID namespace, a process that exited, no
// permission) stay unknown.
func (t *SocketTable) resolveOwners(socks []Socket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.owners
	missing := map[uint64]bool{}
	for _, s := range socks {
		if s.PID != 0 || s.Inode == 0 {
			continue
		}
		if _, ok := c.pidOf[s.Inode]; !ok {
			missing[s.Inode] = true
		}
	}
	if len(missing) > 0 && t.ProcDir != "" {
		t.scan(missing)
	}
	for i := range socks {
		s := &socks[i]
		if s.PID != 0 {
			continue
		}
		pid, ok := c.pidOf[s.Inode]
		if !ok || s.Inode == 0 {
			continue
		}
		info := t.proc(pid)
		s.PID, s.Process, s.Exe = pid, info.comm, info.exe
	}
}

// scan walks pending process directories until every inode in missing was
// seen or the list is exhausted. Called with t.mu held.
func (t *SocketTable) scan(missing map[uint64]bool) {
	c := &t.owners
	if !c.started {
		c.started = true
		c.pidOf = map[uint64]int{}
		c.procs = map[int]procInfo{}
		c.want = make(map[uint64]bool, len(t.Sockets))
		for _, s := range t.Sockets {
			if s.Inode != 0 {
				c.want[s.Inode] = true
			}
		}
		c.pending = listPIDs(t.ProcDir)
	}
	buf := make([]byte, 64)
	for len(c.pending) > 0 && len(missing) > 0 {
		name := c.pending[0]
		c.pending = c.pending[1:]
		pid, _ := strconv.Atoi(name) // listPIDs keeps only decimal names
		fdDir := filepath.Join(t.ProcDir, name, "fd")
		d, err := os.Open(fdDir)
		if err != nil {
			continue // exited, or not ours to read
		}
		fds, _ := d.Readdirnames(-1)
		d.Close()
		for _, fd := range fds {
			n, err := unix.Readlink(fdDir+"/"+fd, buf)
			if err != nil {
				continue
			}
			inode, ok := socketInode(buf[:n])
			if !ok || !c.want[inode] {
				continue
			}
			if _, seen := c.pidOf[inode]; !seen {
				c.pidOf[inode] = pid
			}
			delete(missing, inode)
		}
	}
	// Inodes the whole scan did not find have no visible owner: remember that
	// too, so they are not looked for again.
	if len(c.pending) == 0 {
		for inode := range missing {
			c.pidOf[inode] = 0
		}
	}
}

// proc returns (and caches) the comm and exe of pid; 0 yields nothing.
func (t *SocketTable) proc(pid int) procInfo {
	if pid == 0 {
		return procInfo{}
	}
	c := &t.owners
	if info, ok := c.procs[pid]; ok {
		return info
	}
	dir := filepath.Join(t.ProcDir, strconv.Itoa(pid))
	var info procInfo
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		info.comm = string(bytes.TrimRight(b, "\n"))
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		// A binary replaced on disk (an upgrade) while it runs reads
		// "<path> (deleted)"; the path is what names the program.
		info.exe = strings.TrimSuffix(exe, " (deleted)")
	}
	c.procs[pid] = info
	return info
}

// listPIDs returns the numeric entries of procDir in ascending pid order
// (the order /proc lists them in; sorted so that any tree behaves the same).
func listPIDs(procDir string) []string {
	d, err := os.Open(procDir)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := names[:0]
	for _, n := range names {
		if isDigits(n) {
			pids = append(pids, n)
		}
	}
	slices.SortFunc(pids, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	return pids
}

// socketInode reads "socket:[12345]".
func socketInode(link []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 64)
	return n, err == nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
