package hosttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tpctl/tpctl/test/cluster"
)

// Close shuts the container down (an orderly poweroff, then SIGKILL after
// a minute), removes its cgroups, undoes on the host what the container did
// to the shared network (new interfaces named like K3s's, KUBE-*/CNI-*/
// FLANNEL-* chains, new addresses, kube-proxy's nft tables, changed
// sysctls), removes the root directory and checks the host against the
// snapshot taken before boot: any difference is returned as an error.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var errs []error
		add := func(err error) {
			if err != nil {
				errs = append(errs, err)
			}
		}
		add(h.stop())
		if h.console != nil {
			_ = h.console.Close()
		}
		add(h.removeCgroups())
		add(h.waitVethGone())
		if h.bridge == nil {
			// A host in its own network namespace changed nothing here.
			add(h.restoreNetwork(ctx))
		}
		if h.dir != "" {
			add(h.removeDir())
		}
		if len(errs) == 0 && h.stateFile != "" {
			add(removeStale(h.stateFile))
		}
		if h.ownBridge {
			add(h.bridge.Close())
		}
		if len(errs) == 0 && h.before.Sysctls != nil {
			after, err := cluster.TakeHostSnapshot(ctx)
			add(err)
			d := h.before.Diff(after)
			if h.routes != nil {
				routes, err := MachineRoutes(ctx)
				add(err)
				d = append(d, DiffLines("route", h.routes, routes)...)
			}
			if len(d) > 0 {
				add(fmt.Errorf("the host differs after teardown:\n  %s", strings.Join(d, "\n  ")))
			}
		}
		add(h.releaseLock())
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

// stop powers the container off: SIGTERM makes systemd-nspawn ask the
// container's systemd for an orderly shutdown.
func (h *Host) stop() error {
	if !h.running() {
		return nil
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
		return nil
	case <-time.After(time.Minute):
	}
	h.logf("hosttest: %s did not shut down within a minute; killing it", h.opts.Name)
	if h.pid1 > 0 {
		_ = unix.Kill(h.pid1, unix.SIGKILL)
	}
	_ = unix.Kill(-h.cmd.Process.Pid, unix.SIGKILL)
	select {
	case <-h.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("systemd-nspawn did not exit after SIGKILL")
	}
}

// removeDir removes the root directory once nothing is mounted below it.
// os.RemoveAll does not follow symlinks: the root's var/run (an absolute
// link to /run) is unlinked, never followed into the host's /run.
func (h *Host) removeDir() error {
	mps, err := hostMounts()
	if err != nil {
		return err
	}
	var below []string
	for _, mp := range mps {
		if mp == h.dir || strings.HasPrefix(mp, h.dir+"/") {
			below = append(below, mp)
		}
	}
	sort.Slice(below, func(i, j int) bool { return len(below[i]) > len(below[j]) })
	for _, mp := range below {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if err := os.RemoveAll(h.dir); err != nil {
		return fmt.Errorf("remove %s: %w", h.dir, err)
	}
	return nil
}

func hostMounts() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out, nil
}

// k3sLink: interfaces a K3s node (or its CNI) creates on the shared network.
func k3sLink(name string) bool {
	for _, p := range []string{"cni", "flannel", "veth", "kube-", "cilium_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ownChain: iptables chains of Kubernetes, CNI plugins and flannel.
func ownChain(name string) bool {
	for _, p := range []string{"KUBE-", "CNI-", "FLANNEL-", "FLANNEL_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// restoreNetwork undoes the node's changes to the host's network namespace
// that are still there: it acts only on what differs from the snapshot taken
// before boot.
func (h *Host) restoreNetwork(ctx context.Context) error {
	if h.before.Sysctls == nil {
		return nil
	}
	now, err := cluster.TakeHostSnapshot(ctx)
	if err != nil {
		return err
	}
	var errs []error
	had := map[string]bool{}
	for _, l := range h.before.Links {
		had[l] = true
	}
	for _, l := range now.Links {
		if !had[l] && k3sLink(l) {
			if _, err := run(ctx, nil, "ip", "link", "del", l); err != nil && hasLink(l) {
				errs = append(errs, err)
			}
		}
	}
	hadAddr := map[string]bool{}
	for _, a := range h.before.Addrs {
		hadAddr[a] = true
	}
	for _, a := range now.Addrs {
		if dev, cidr, ok := strings.Cut(a, " "); ok && !hadAddr[a] && dev == "lo" {
			if _, err := run(ctx, nil, "ip", "addr", "del", cidr, "dev", dev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		errs = append(errs, cleanChains(ctx, fam, h.before.IPTables))
	}
	hadTable := map[string]bool{}
	for _, t := range h.before.NFTTables {
		hadTable[t] = true
	}
	for _, t := range now.NFTTables {
		family, name, _ := strings.Cut(t, " ")
		if hadTable[t] {
			continue
		}
		// kube-proxy's own table, and tables iptables-nft made on first
		// use once the chain cleanup left them without rules.
		if name != "kube-proxy" {
			if n, err := nftRules(ctx, family, name); err != nil || n > 0 {
				errs = append(errs, err)
				continue
			}
		}
		if _, err := run(ctx, nil, "nft", "delete", "table", family, name); err != nil {
			errs = append(errs, err)
		}
	}
	// ip_forward first: writing it resets the per-interface forwarding flags.
	names := make([]string, 0, len(h.before.Sysctls))
	for k := range h.before.Sysctls {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "net/ipv4/ip_forward") != (names[j] == "net/ipv4/ip_forward") {
			return names[i] == "net/ipv4/ip_forward"
		}
		return names[i] < names[j]
	})
	for _, k := range names {
		want := h.before.Sysctls[k]
		if now.Sysctls[k] == want {
			continue
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(want+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, want, err))
		}
	}
	return errors.Join(errs...)
}

// nftRules counts the rules of one nftables table.
func nftRules(ctx context.Context, family, table string) (int, error) {
	out, err := run(ctx, nil, "nft", "-j", "list", "table", family, table)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return 0, fmt.Errorf("parse nft -j output: %w", err)
	}
	n := 0
	for _, obj := range doc.Nftables {
		if _, ok := obj["rule"]; ok {
			n++
		}
	}
	return n, nil
}

func hasLink(name string) bool {
	_, err := os.Lstat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// cleanChains deletes, in one iptables-restore --noflush transaction per
// table, the own chains that were not there before and the rules jumping to
// them.
func cleanChains(ctx context.Context, family string, before []string) error {
	if _, err := exec.LookPath(family + "-save"); err != nil {
		return nil //nolint:nilerr // no iptables on this host: nothing to clean
	}
	had := map[string]bool{}
	for _, l := range before {
		had[l] = true
	}
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := run(ctx, nil, family+"-save", "-t", table)
		if err != nil {
			continue
		}
		var chains, deletes []string
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(line, ":"):
				name, _, _ := strings.Cut(line[1:], " ")
				if ownChain(name) && !had[family+" "+table+" chain "+name] {
					chains = append(chains, name)
				}
			case strings.HasPrefix(line, "-A "):
				if had[family+" "+table+" "+line] {
					continue
				}
				f := strings.Fields(line)
				if len(f) > 1 && ownChain(f[1]) {
					continue // goes with its chain
				}
				for i := 2; i+1 < len(f); i++ {
					if (f[i] == "-j" || f[i] == "-g") && ownChain(f[i+1]) {
						deletes = append(deletes, "-D "+line[len("-A "):])
						break
					}
				}
			}
		}
		if len(chains) == 0 && len(deletes) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString("*" + table + "\n")
		for _, d := range deletes {
			b.WriteString(d + "\n")
		}
		for _, c := range chains {
			b.WriteString("-F " + c + "\n")
		}
		for _, c := range chains {
			b.WriteString("-X " + c + "\n")
		}
		b.WriteString("COMMIT\n")
		cmd := exec.CommandContext(ctx, family+"-restore", "--noflush")
		cmd.Stdin = strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("clean %s table %s: %w: %s", family, table, err, tail(string(out), 1000)))
		}
	}
	return errors.Join(errs...)
}
