package hosttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Snapshot is what an install may change inside a Host, as lists of lines
// that compare as sets: tests take one before and one after and Diff them.
type Snapshot struct {
	Files  []string // "path kind mode [size sha]" under SnapshotRoots
	Units  []string // unit files and their enablement: "name state"
	Loaded []string // loaded units but mounts: "name load active"
	Mounts []string // mount points of the container's mount namespace
	Links  []string // network interfaces (shared with the host)
	Addrs  []string // "dev addr/prefix"
	Rules  []string // "tool table chain NAME" and "tool table -A …" lines
}

// SnapshotRoots are the directories whose trees Snapshot lists.
func SnapshotRoots() []string {
	return []string{"/etc", "/usr/local", "/opt", "/root", "/srv", "/var/lib", "/var/log", "/run"}
}

// snapshotNoise are paths that change by themselves on a booted host
// (journal, systemd's runtime state, login records).
func snapshotNoise(p string) bool {
	for _, pre := range []string{
		"/var/log/journal", "/run/log", "/run/systemd", "/run/user", "/run/credentials",
		"/var/lib/systemd", "/run/udev", "/run/dbus", "/var/lib/dbus", "/run/mount",
	} {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	switch p {
	case "/run/utmp", "/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog":
		return true
	}
	return false
}

// Snapshot records the container's files, units, mounts, interfaces,
// addresses and firewall rules.
func (h *Host) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	var err error
	if s.Files, err = h.files(); err != nil {
		return s, err
	}
	out, err := h.Exec(ctx, "systemctl", "list-unit-files", "--no-legend", "--no-pager")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			s.Units = append(s.Units, f[0]+" "+f[1])
		}
	}
	out, err = h.Exec(ctx, "systemctl", "list-units", "--all", "--no-legend", "--no-pager", "--plain",
		"--type=service,socket,scope,slice,timer,path")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			s.Loaded = append(s.Loaded, f[0]+" "+f[1]+" "+f[2])
		}
	}
	mi, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.pid1), "mountinfo"))
	if err != nil {
		return s, fmt.Errorf("read the container's mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			s.Mounts = append(s.Mounts, f[4])
		}
	}
	out, err = h.Exec(ctx, "ip", "-o", "link")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			s.Links = append(s.Links, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	out, err = h.Exec(ctx, "ip", "-o", "addr")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			s.Addrs = append(s.Addrs, f[1]+" "+f[3])
		}
	}
	for _, tool := range []string{"iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		out, err := h.Exec(ctx, tool)
		if err != nil {
			continue // that back end is not there
		}
		table := ""
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				// A built-in chain with policy ACCEPT is what an absent
				// table means too (iptables-nft makes tables on first
				// use): only own chains and other policies count.
				f := strings.Fields(line[1:])
				if len(f) >= 2 && builtinChain(f[0]) && f[1] == "ACCEPT" {
					continue
				}
				s.Rules = append(s.Rules, tool+" "+table+" chain "+strings.Join(f[:min(2, len(f))], " "))
			case strings.HasPrefix(line, "-A "):
				s.Rules = append(s.Rules, tool+" "+table+" "+line)
			}
		}
	}
	for _, l := range [][]string{s.Files, s.Units, s.Loaded, s.Mounts, s.Links, s.Addrs, s.Rules} {
		sort.Strings(l)
	}
	return s, nil
}

func builtinChain(name string) bool {
	switch name {
	case "INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING":
		return true
	}
	return false
}

// files lists SnapshotRoots inside the running container (through its
// init's root, so /run is the container's tmpfs, not the directory below
// it on disk). Files under /etc carry a digest of their content.
func (h *Host) files() ([]string, error) {
	base := filepath.Join("/proc", strconv.Itoa(h.pid1), "root")
	var out []string
	for _, root := range SnapshotRoots() {
		err := filepath.WalkDir(filepath.Join(base, root), func(p string, d fs.DirEntry, err error) error {
			rel := strings.TrimPrefix(p, base)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return fmt.Errorf("walk %s: %w", rel, err)
			}
			if snapshotNoise(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return fmt.Errorf("stat %s: %w", rel, err)
			}
			line := fmt.Sprintf("%s %s", rel, info.Mode())
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				line += " -> " + target
			case info.Mode().IsRegular():
				line += " " + strconv.FormatInt(info.Size(), 10)
				if strings.HasPrefix(rel, "/etc/") && info.Size() < 1<<20 {
					if data, err := os.ReadFile(p); err == nil {
						sum := sha256.Sum256(data)
						line += " " + hex.EncodeToString(sum[:8])
					}
				}
			}
			out = append(out, line)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Diff lists what differs between s (before) and after, one line per
// change ("+" appeared, "-" disappeared). Empty means identical.
func (s Snapshot) Diff(after Snapshot) []string {
	var d []string
	list := func(what string, a, b []string) {
		ca, cb := map[string]int{}, map[string]int{}
		keys := map[string]bool{}
		for _, x := range a {
			ca[x]++
			keys[x] = true
		}
		for _, x := range b {
			cb[x]++
			keys[x] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			switch {
			case cb[k] > ca[k]:
				d = append(d, fmt.Sprintf("+ %s: %s", what, k))
			case ca[k] > cb[k]:
				d = append(d, fmt.Sprintf("- %s: %s", what, k))
			}
		}
	}
	list("file", s.Files, after.Files)
	list("unit file", s.Units, after.Units)
	list("unit", s.Loaded, after.Loaded)
	list("mount", s.Mounts, after.Mounts)
	list("interface", s.Links, after.Links)
	list("address", s.Addrs, after.Addrs)
	list("rule", s.Rules, after.Rules)
	return d
}

// Residue counts a diff's lines by kind (file, unit, mount, …).
func Residue(diff []string) map[string]int {
	out := map[string]int{}
	for _, l := range diff {
		if len(l) < 3 {
			continue
		}
		kind, _, _ := strings.Cut(l[2:], ":")
		out[kind]++
	}
	return out
}
