package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// HostSnapshot is the host state a Node may touch: tests compare one taken
// before a Node with one taken after its teardown.
type HostSnapshot struct {
	Links     []string          // network interfaces
	Addrs     []string          // "dev addr/prefix" from `ip -o addr`
	IPTables  []string          // "family table rule-or-chain" lines of iptables-save
	NFTTables []string          // "family name"
	Mounts    []string          // mount points
	Sysctls   map[string]string // managed sysctls
	Paths     []string          // managed paths that exist, and pinned network namespaces
	Cgroups   []string          // kubepods cgroups that exist
	Processes []string          // "pid cmdline" of processes naming a marker or in kubepods
}

// TakeHostSnapshot records the host state. Processes are those whose command
// line contains one of markers (e.g. a Node's Dir) or that run in a kubepods
// cgroup.
func TakeHostSnapshot(ctx context.Context, markers ...string) (HostSnapshot, error) {
	s := HostSnapshot{Links: linkNames(), Sysctls: readSysctls()}
	out, err := run(ctx, "ip", "-o", "addr")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			s.Addrs = append(s.Addrs, f[1]+" "+f[3])
		}
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := run(ctx, fam+"-save", "-t", table)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "-A ") {
					s.IPTables = append(s.IPTables, fam+" "+table+" "+line)
				} else if strings.HasPrefix(line, ":") {
					name, _, _ := strings.Cut(line[1:], " ")
					s.IPTables = append(s.IPTables, fam+" "+table+" chain "+name)
				}
			}
		}
	}
	if s.NFTTables, err = nftTables(ctx); err != nil {
		return s, err
	}
	if s.Mounts, err = mountPoints(); err != nil {
		return s, err
	}
	for _, p := range managedPaths() {
		if pathExists(p) {
			s.Paths = append(s.Paths, p)
		}
	}
	s.Paths = append(s.Paths, netnsEntries()...)
	for _, root := range cgroupRoots() {
		if p := filepath.Join(root, "kubepods"); pathExists(p) {
			s.Cgroups = append(s.Cgroups, p)
		}
	}
	seen := map[int]bool{}
	var pids []int
	for _, m := range markers {
		for _, p := range pidsWithArg(m) {
			if !seen[p] {
				seen[p] = true
				pids = append(pids, p)
			}
		}
	}
	for _, p := range kubepodsPIDs() {
		if !seen[p] {
			seen[p] = true
			pids = append(pids, p)
		}
	}
	sort.Ints(pids)
	for _, p := range pids {
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
		s.Processes = append(s.Processes, fmt.Sprintf("%d %s", p, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")))
	}
	for _, l := range [][]string{s.Addrs, s.IPTables, s.Mounts} {
		sort.Strings(l)
	}
	return s, nil
}

// Diff lists what differs between s (before) and after, one line per change
// ("+" appeared, "-" disappeared, "~" changed). Empty means identical.
func (s HostSnapshot) Diff(after HostSnapshot) []string {
	var d []string
	list := func(what string, a, b []string) {
		ca, cb := counts(a), counts(b)
		for _, k := range sortedKeys(ca, cb) {
			switch {
			case cb[k] > ca[k]:
				d = append(d, fmt.Sprintf("+ %s: %s", what, k))
			case ca[k] > cb[k]:
				d = append(d, fmt.Sprintf("- %s: %s", what, k))
			}
		}
	}
	list("interface", s.Links, after.Links)
	list("address", s.Addrs, after.Addrs)
	list("iptables", s.IPTables, after.IPTables)
	list("nft table", s.NFTTables, after.NFTTables)
	list("mount", s.Mounts, after.Mounts)
	list("path", s.Paths, after.Paths)
	list("cgroup", s.Cgroups, after.Cgroups)
	list("process", s.Processes, after.Processes)
	keys := map[string]bool{}
	for k := range s.Sysctls {
		keys[k] = true
	}
	for k := range after.Sysctls {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if s.Sysctls[k] != after.Sysctls[k] {
			d = append(d, fmt.Sprintf("~ sysctl %s: %q → %q", k, s.Sysctls[k], after.Sysctls[k]))
		}
	}
	return d
}

func counts(l []string) map[string]int {
	m := map[string]int{}
	for _, x := range l {
		m[x]++
	}
	return m
}

func sortedKeys(a, b map[string]int) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
