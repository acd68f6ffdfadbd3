package operator

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DropBinaryPages gives back the resident pages of the program's own
// read-only mappings (its code and read-only data) and returns how many
// bytes of address space it advised. A Go binary's start-up (package
// initialisation, the API type registrations of client-go) touches many
// megabytes of it that the operator never reads again; the kernel keeps
// them mapped, counted in the process's resident set, until memory runs
// short. madvise(MADV_DONTNEED) unmaps them: they stay in the page cache,
// reclaimable, and the pages the operator still runs are mapped again on
// their next use (a minor fault). Writable mappings are left alone: there
// it would discard data.
func DropBinaryPages() int64 {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := readOnlyMappingOf(sc.Text(), exe)
		if !ok {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_DONTNEED); errno == 0 {
			total += int64(end - start)
		}
	}
	return total
}

// readOnlyMappingOf parses one line of /proc/self/maps ("start-end perms
// offset dev inode path") and reports the range of a mapping of file exe
// that is neither writable nor shared.
func readOnlyMappingOf(line, exe string) (start, end uintptr, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 {
		return 0, 0, false
	}
	perms, path := fields[1], strings.Join(fields[5:], " ")
	if path != exe || len(perms) != 4 || perms[1] != '-' || perms[3] != 'p' {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
