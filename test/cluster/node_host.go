package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// captureHost records what teardown must restore, and refuses to start over
// the leftovers of another node.
func (n *Node) captureHost(ctx context.Context) error {
	b := hostState{
		sysctls: readSysctls(),
		paths:   map[string]bool{},
		mounts:  map[string]bool{},
		links:   map[string]bool{},
		nft:     map[string]bool{},
		netns:   map[string]bool{},
	}
	for _, p := range managedPaths() {
		b.paths[p] = pathExists(p)
	}
	mps, err := mountPoints()
	if err != nil {
		return err
	}
	for _, mp := range mps {
		b.mounts[mp] = true
	}
	for _, l := range linkNames() {
		b.links[l] = true
	}
	for _, e := range netnsEntries() {
		b.netns[e] = true
	}
	tables, err := nftTables(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		b.nft[t] = true
	}
	for _, root := range cgroupRoots() {
		if pathExists(filepath.Join(root, "kubepods")) {
			b.kubepods = true
		}
	}
	n.before = b
	if b.links[BridgeName] {
		return fmt.Errorf("bridge %s exists: another node harness runs or one was not torn down (remove it with `ip link del %s`)", BridgeName, BridgeName)
	}
	if b.kubepods {
		return errors.New("a kubepods cgroup exists: another kubelet runs on this host")
	}
	return nil
}

// setupHost adds the node address and the forwarding sysctls.
func (n *Node) setupHost(ctx context.Context) error {
	cidr := n.layout.nodeIP + "/32"
	if !hasAddr(ctx, "lo", cidr) {
		if _, err := run(ctx, "ip", "addr", "add", cidr, "dev", "lo"); err != nil {
			return fmt.Errorf("add node address: %w", err)
		}
		n.before.aliasAdded = true
	}
	if _, ok := n.before.sysctls["net/bridge/bridge-nf-call-iptables"]; !ok {
		if _, err := run(ctx, "modprobe", "br_netfilter"); err != nil {
			return fmt.Errorf("bridged traffic must pass iptables (net.bridge.bridge-nf-call-iptables): %w", err)
		}
		n.before.sysctls = mergeSysctls(n.before.sysctls, readSysctls())
	}
	for _, kv := range [][2]string{{"net/ipv4/ip_forward", "1"}, {"net/bridge/bridge-nf-call-iptables", "1"}} {
		if err := writeSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// mergeSysctls adds entries of b missing from a (sysctls that appeared after
// a module load; their values then were the defaults).
func mergeSysctls(a, b map[string]string) map[string]string {
	for k, v := range b {
		if _, ok := a[k]; !ok {
			a[k] = v
		}
	}
	return a
}

// Close tears the node down and puts the host back: processes (by PID, then
// whatever still runs in kubepods cgroups or names the harness directory),
// mounts, bridge and veths, KUBE-*/CNI-* chains and jumps, nft tables,
// the lo alias, sysctls, kubepods cgroups and the paths that did not exist
// before. It releases the host lock last.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		begin := time.Now()
		n.closeErr = n.teardown()
		n.timings.Teardown = time.Since(begin)
		if n.closeErr == nil && n.layout.dir != "" {
			n.closeErr = n.removeState()
		}
		if err := n.releaseLock(); err != nil {
			n.closeErr = errors.Join(n.closeErr, err)
		}
	})
	return n.closeErr
}

func (n *Node) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Node agents first, then pods, then the control plane and the datastore.
	n.procs.stop(5*time.Second, "kubelet", "kube-proxy", "coredns")
	killAll(kubepodsPIDs())
	n.procs.stop(5*time.Second, "kube-controller-manager", "kube-scheduler")
	n.procs.stop(10*time.Second, "kube-apiserver", "containerd")
	n.procs.stop(5 * time.Second)
	if n.layout.dir != "" {
		killAll(pidsWithArg(n.layout.dir)) // containerd shims
	}
	killAll(kubepodsPIDs())

	roots := mountRoots()
	if n.layout.dir != "" {
		roots = append(roots, n.layout.dir)
	}
	add(unmountNew(n.before.mounts, roots))
	for _, e := range netnsEntries() {
		if !n.before.netns[e] && strings.HasPrefix(filepath.Base(e), "cni-") {
			if err := os.Remove(e); err != nil && !errors.Is(err, os.ErrNotExist) {
				add(fmt.Errorf("remove pod network namespace %s: %w", e, err))
			}
		}
	}

	if !n.before.links[BridgeName] && pathExists(filepath.Join("/sys/class/net", BridgeName)) {
		_, err := run(ctx, "ip", "link", "del", BridgeName)
		add(err)
	}
	for _, l := range linkNames() {
		if !n.before.links[l] && strings.HasPrefix(l, "veth") {
			// A veth goes by itself when its pod's namespace or its peer
			// goes: one that vanished meanwhile is not an error.
			if _, err := run(ctx, "ip", "link", "del", l); err != nil && pathExists(filepath.Join("/sys/class/net", l)) {
				add(err)
			}
		}
	}
	add(iptablesCleanup(ctx, "iptables"))
	add(iptablesCleanup(ctx, "ip6tables"))
	add(nftCleanup(ctx, n.before.nft))

	if n.before.aliasAdded {
		if _, err := run(ctx, "ip", "addr", "del", n.layout.nodeIP+"/32", "dev", "lo"); err != nil && loHasAddr(ctx, n.layout.nodeIP) {
			add(err)
		}
	}
	add(n.restoreSysctls())
	if !n.before.kubepods {
		add(removeKubepodsCgroups())
	}

	// Remove directories only when nothing is mounted below them any more.
	mps, err := mountPoints()
	add(err)
	safeRemove := func(p string) {
		for _, mp := range mps {
			if under(mp, p) {
				add(fmt.Errorf("not removing %s: %s is still mounted", p, mp))
				return
			}
		}
		if err := os.RemoveAll(p); err != nil {
			add(fmt.Errorf("remove %s: %w", p, err))
		}
	}
	if n.layout.dir != "" {
		safeRemove(n.layout.dir)
	}
	for p, existed := range n.before.paths {
		if !existed && pathExists(p) {
			safeRemove(p)
		}
	}
	return errors.Join(errs...)
}

// restoreSysctls writes back every recorded value that changed, ip_forward
// first (writing it resets the per-interface forwarding flags).
func (n *Node) restoreSysctls() error {
	var errs []error
	for _, name := range managedSysctls() {
		want, ok := n.before.sysctls[name]
		if !ok {
			continue
		}
		if got, err := readSysctl(name); err == nil && got == want {
			continue
		}
		if err := writeSysctl(name, want); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// savedState is hostState on disk, next to the host lock, so that the next
// Node can finish the teardown of one whose test process was killed.
type savedState struct {
	Dir        string            `json:"dir"`
	NodeIP     string            `json:"nodeIP"`
	Sysctls    map[string]string `json:"sysctls"`
	Paths      map[string]bool   `json:"paths"`
	Mounts     map[string]bool   `json:"mounts"`
	Links      map[string]bool   `json:"links"`
	NFT        map[string]bool   `json:"nft"`
	Netns      map[string]bool   `json:"netns"`
	AliasAdded bool              `json:"aliasAdded"`
	Kubepods   bool              `json:"kubepods"`
}

func (n *Node) statePath() string {
	path := n.opts.LockPath
	if path == "" {
		path = DefaultLockPath
	}
	return path + ".state"
}

// saveState records what teardown needs (0600: it names host paths only).
func (n *Node) saveState() error {
	b := n.before
	data, err := json.Marshal(savedState{
		Dir: n.layout.dir, NodeIP: n.layout.nodeIP, Sysctls: b.sysctls, Paths: b.paths, Mounts: b.mounts,
		Links: b.links, NFT: b.nft, Netns: b.netns, AliasAdded: b.aliasAdded, Kubepods: b.kubepods,
	})
	if err != nil {
		return fmt.Errorf("encode node state: %w", err)
	}
	if err := os.WriteFile(n.statePath(), data, 0o600); err != nil {
		return fmt.Errorf("write node state: %w", err)
	}
	return nil
}

// recoverStale tears down what a previous Node left when its process died
// before Close (its state file is still there). Called with the lock held.
func (n *Node) recoverStale() error {
	data, err := os.ReadFile(n.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read node state: %w", err)
	}
	var s savedState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode node state %s: %w", n.statePath(), err)
	}
	n.logf("node: a previous node (%s) was not torn down; cleaning up after it", s.Dir)
	stale := &Node{procs: &group{}, logf: n.logf, layout: nodeLayout{dir: s.Dir, nodeIP: s.NodeIP}, before: hostState{
		sysctls: s.Sysctls, paths: s.Paths, mounts: s.Mounts, links: s.Links, nft: s.NFT, netns: s.Netns,
		aliasAdded: s.AliasAdded, kubepods: s.Kubepods,
	}}
	if err := stale.teardown(); err != nil {
		return fmt.Errorf("clean up after previous node %s: %w", s.Dir, err)
	}
	return n.removeState()
}

func (n *Node) removeState() error {
	if err := os.Remove(n.statePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove node state: %w", err)
	}
	return nil
}

// loHasAddr reports whether ip is assigned to lo (teardown is idempotent:
// an alias already gone is not an error).
func loHasAddr(ctx context.Context, ip string) bool {
	out, err := run(ctx, "ip", "-o", "addr", "show", "dev", "lo")
	if err != nil {
		return true // cannot tell: keep the error
	}
	for _, f := range strings.Fields(out) {
		if f == ip+"/32" {
			return true
		}
	}
	return false
}
