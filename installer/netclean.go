package installer

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// k3sInterfaces are the links K3s's CNI and kube-proxy create.
func k3sInterfaces(name string) bool {
	switch name {
	case "cni0", "flannel.1", "flannel-v6.1", "flannel-wg", "flannel-wg-v6", "kube-ipvs0", "kube-bridge", "kube-dummy-if":
		return true
	}
	return strings.HasPrefix(name, "cilium_")
}

// managedChain: chains K3s, kube-proxy, flannel, the CNI plugins and Cilium
// create.
func managedChain(c string) bool {
	for _, p := range []string{"KUBE-", "CNI-", "FLANNEL-", "FLANNEL_", "CILIUM_"} {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

// splitRule splits an iptables-save rule into arguments; double-quoted
// arguments (comments) keep their spaces.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	quoted, any := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && quoted && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			any = true
		case c == '"':
			quoted = !quoted
			any = true
		case (c == ' ' || c == '\t') && !quoted:
			if any {
				args = append(args, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteByte(c)
			any = true
		}
	}
	if any {
		args = append(args, cur.String())
	}
	return args
}

// FilterRuleset removes from iptables-save output the managed chains and
// every rule in them or jumping to them, keeping everything else byte for
// byte. It reports whether anything was removed.
func FilterRuleset(save string) (string, bool) {
	var out strings.Builder
	changed := false
	for _, line := range strings.SplitAfter(save, "\n") {
		trimmed := strings.TrimSpace(line)
		drop := false
		switch {
		case strings.HasPrefix(trimmed, ":"):
			name, _, _ := strings.Cut(trimmed[1:], " ")
			drop = managedChain(name)
		case strings.HasPrefix(trimmed, "-A ") || strings.HasPrefix(trimmed, "-I "):
			args := splitRule(trimmed)
			if len(args) > 1 && managedChain(args[1]) {
				drop = true
			}
			for i := 2; i+1 < len(args) && !drop; i++ {
				if slices.Contains([]string{"-j", "-g", "--jump", "--goto"}, args[i]) && managedChain(args[i+1]) {
					drop = true
				}
			}
		}
		if drop {
			changed = true
			continue
		}
		out.WriteString(line)
	}
	return out.String(), changed
}

// chainCleanup is what removing the managed chains from one table takes:
// deleting the rules of other chains that jump to them, then flushing and
// deleting each of them. Every command names one rule or chain, so rules
// another program adds meanwhile are never touched (a save/restore of the
// whole rule set would drop them).
type chainCleanup struct {
	Table string
	// Jumps are rules of unmanaged chains ("CHAIN args...", as after -A).
	Jumps  [][]string
	Chains []string
}

// planChainCleanup reads iptables-save output.
func planChainCleanup(save string) []chainCleanup {
	var out []chainCleanup
	var cur *chainCleanup
	for _, line := range strings.Split(save, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "*"):
			out = append(out, chainCleanup{Table: t[1:]})
			cur = &out[len(out)-1]
		case cur == nil:
		case strings.HasPrefix(t, ":"):
			if name, _, _ := strings.Cut(t[1:], " "); managedChain(name) {
				cur.Chains = append(cur.Chains, name)
			}
		case strings.HasPrefix(t, "-A "):
			args := splitRule(t)
			if len(args) < 2 || managedChain(args[1]) {
				continue
			}
			for i := 2; i+1 < len(args); i++ {
				if slices.Contains([]string{"-j", "-g", "--jump", "--goto"}, args[i]) && managedChain(args[i+1]) {
					cur.Jumps = append(cur.Jumps, args[1:])
					break
				}
			}
		}
	}
	return slices.DeleteFunc(out, func(c chainCleanup) bool { return len(c.Jumps) == 0 && len(c.Chains) == 0 })
}

// commands are the iptables argument lists of the cleanup, in order.
func (c chainCleanup) commands() [][]string {
	var out [][]string
	for _, j := range c.Jumps {
		out = append(out, append([]string{"-w", "-t", c.Table, "-D"}, j...))
	}
	for _, ch := range c.Chains {
		out = append(out, []string{"-w", "-t", c.Table, "-F", ch})
	}
	for _, ch := range c.Chains {
		out = append(out, []string{"-w", "-t", c.Table, "-X", ch})
	}
	return out
}

// iptablesTools are the (save, iptables) program pairs to clean: the nft
// and legacy back ends where both exist, the plain names otherwise.
func (o HostOps) iptablesTools() [][2]string {
	var out [][2]string
	for _, fam := range []string{"iptables", "ip6tables"} {
		found := false
		for _, be := range []string{"-nft", "-legacy"} {
			save, cmd := fam+be+"-save", fam+be
			if _, err := o.LookPath(save); err == nil {
				if _, err := o.LookPath(cmd); err == nil {
					out = append(out, [2]string{save, cmd})
					found = true
				}
			}
		}
		if !found {
			if _, err := o.LookPath(fam + "-save"); err == nil {
				if _, err := o.LookPath(fam); err == nil {
					out = append(out, [2]string{fam + "-save", fam})
				}
			}
		}
	}
	return out
}

// nftTables lists nftables tables that kube-proxy's nftables mode creates.
func (o HostOps) nftTables(ctx context.Context) ([][2]string, error) {
	if _, err := o.LookPath("nft"); err != nil {
		return nil, nil
	}
	out, err := o.Exec(ctx, nil, "nft", "list", "tables")
	if err != nil {
		return nil, err
	}
	var tables [][2]string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" && f[2] == "kube-proxy" {
			tables = append(tables, [2]string{f[1], f[2]})
		}
	}
	return tables, nil
}

// firewallStep removes the iptables chains and rules, and the nftables
// tables, that K3s and kube-proxy created.
type firewallStep struct {
	env *Env
	ops HostOps
}

func (s *firewallStep) Name() string { return "remove firewall rules" }

func (s *firewallStep) Describe() string {
	return "delete the KUBE-*, CNI-*, FLANNEL-* and CILIUM_* iptables chains one by one (first the rules that jump to them, then each chain), and kube-proxy's nftables tables"
}

func (s *firewallStep) Done(ctx context.Context) (bool, error) {
	for _, t := range s.ops.iptablesTools() {
		save, err := s.ops.Exec(ctx, nil, t[0])
		if err != nil {
			return false, err
		}
		if len(planChainCleanup(string(save))) > 0 {
			return false, nil
		}
	}
	tables, err := s.ops.nftTables(ctx)
	return err == nil && len(tables) == 0, err
}

func (s *firewallStep) Run(ctx context.Context, ev Events) error {
	rules, chains := 0, 0
	for _, t := range s.ops.iptablesTools() {
		save, err := s.ops.Exec(ctx, nil, t[0])
		if err != nil {
			return err
		}
		for _, c := range planChainCleanup(string(save)) {
			for _, args := range c.commands() {
				if _, err := s.ops.Exec(ctx, nil, t[1], args...); err != nil {
					return err
				}
			}
			rules += len(c.Jumps)
			chains += len(c.Chains)
		}
	}
	tables, err := s.ops.nftTables(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := s.ops.Exec(ctx, nil, "nft", "delete", "table", t[0], t[1]); err != nil {
			return err
		}
	}
	summarize(ev, "%d chains and %d jump rules deleted, %d nftables tables deleted", chains, rules, len(tables))
	return nil
}

// linksStep deletes the network interfaces K3s's CNI created.
type linksStep struct {
	env *Env
	ops HostOps
}

func (s *linksStep) Name() string { return "delete network interfaces" }

func (s *linksStep) Describe() string {
	return "delete cni0, flannel.1, flannel-v6.1, kube-ipvs0, cilium_* and the other links K3s's network created"
}

func (s *linksStep) find() ([]string, error) {
	names, err := s.ops.Links()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if k3sInterfaces(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *linksStep) Done(context.Context) (bool, error) {
	l, err := s.find()
	return err == nil && len(l) == 0, err
}

func (s *linksStep) Run(ctx context.Context, ev Events) error {
	l, err := s.find()
	if err != nil {
		return err
	}
	for _, n := range l {
		if _, err := s.ops.Exec(ctx, nil, "ip", "link", "delete", n); err != nil {
			// Deleting one end of a veth pair (cilium_host) takes the
			// other (cilium_net) with it.
			if now, lerr := s.find(); lerr == nil && !slices.Contains(now, n) {
				continue
			}
			return fmt.Errorf("delete interface %s: %w", n, err)
		}
	}
	summarize(ev, "deleted %s", strings.Join(l, ", "))
	return nil
}
