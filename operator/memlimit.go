package operator

import (
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// MemoryLimitShare is the share of the container's memory limit that the
// operator gives the Go runtime as its soft memory limit (see
// CgroupMemoryLimit): the garbage collector works harder as the heap nears
// it instead of letting the container be killed for memory. The rest is
// for what the runtime does not count, such as the binary's pages.
const MemoryLimitShare = 0.8

// GCPercent is the operator's garbage collection target (GOGC) unless the
// environment sets one: the heap may grow to 1.5 times what is live
// between collections instead of the Go default of twice. The operator's
// heap is mostly its cache of many small objects, so this trades a little
// CPU (it is idle most of the time) for a third less memory at its peak.
const GCPercent = 50

// CgroupMemoryLimit reads the memory limit of the cgroup the process runs
// in from fsys (the root file system: os.DirFS("/")), as a container sees
// it with its own cgroup namespace: cgroup v2's memory.max, else cgroup
// v1's memory.limit_in_bytes. It reports false when there is none (no
// file, "max", or v1's "unlimited" value).
func CgroupMemoryLimit(fsys fs.FS) (int64, bool) {
	for _, name := range []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 says "unlimited" with a page-rounded math.MaxInt64.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
