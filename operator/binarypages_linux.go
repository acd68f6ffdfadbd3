package operator

import (
	"bufio"
	"io"
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
	return dropReadOnlyPages(exe)
}

// dropReadOnlyPages advises away the resident pages of the private
// read-only mappings of file exe that hold no private copies. A read-only
// mapping can hold pages written before it was made read-only (a
// position-independent binary's relocated data, made read-only after the
// relocation): those are anonymous copies, and MADV_DONTNEED would swap
// them for the file's original bytes. /proc/self/smaps counts them per
// mapping (Anonymous:); a mapping with any is left alone.
func dropReadOnlyPages(exe string) int64 {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	ranges := cleanReadOnlyMappings(f, exe)
	_ = f.Close()
	var total int64
	for _, r := range ranges {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED); errno == 0 {
			total += int64(r[1] - r[0])
		}
	}
	return total
}

// cleanReadOnlyMappings reads smaps and returns the ranges of exe's private
// read-only mappings whose Anonymous: count is 0 kB. A mapping whose count
// is missing is left out.
func cleanReadOnlyMappings(smaps io.Reader, exe string) [][2]uintptr {
	var out [][2]uintptr
	var cur [2]uintptr
	in := false
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		if s, e, ok := readOnlyMappingOf(line, exe); ok {
			cur, in = [2]uintptr{s, e}, true
			continue
		}
		key, val, found := strings.Cut(line, ":")
		if !found || strings.Contains(key, " ") {
			// Another mapping's header (keys have no spaces).
			in = false
			continue
		}
		if in && key == "Anonymous" {
			if strings.TrimSpace(val) == "0 kB" {
				out = append(out, cur)
			}
			in = false
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return out
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
