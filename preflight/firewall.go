package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/tpctl/tpctl/preflight/ports"
)

// hostPorts returns the distinct port specs of rows bound to all interfaces:
// those a firewall must let in.
func hostPorts(rows []ports.Row) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if r.Binding != ports.BindHost {
			continue
		}
		if s := r.Spec(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ufwEnabled reads ENABLED= from /etc/ufw/ufw.conf.
func ufwEnabled(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && k == "ENABLED" {
			return strings.Trim(strings.TrimSpace(v), `"'`) == "yes"
		}
	}
	return false
}

// iptablesCompatTable reports tables that iptables (nft or legacy) creates
// for any user, kube-proxy and K3s included.
func iptablesCompatTable(t string) bool {
	fam, name, _ := strings.Cut(t, " ")
	if fam != "ip" && fam != "ip6" && fam != "" {
		return false
	}
	switch name {
	case "filter", "nat", "mangle", "raw", "security":
		return true
	}
	return false
}

// kubeTable reports nftables tables made by Kubernetes networking.
func kubeTable(t string) bool {
	_, name, _ := strings.Cut(t, " ")
	for _, p := range []string{"kube-proxy", "kube-", "KUBE-", "cilium", "flannel", "k3s"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// firewallCheck is "Firewall": it warns when ufw, firewalld, nftables or
// iptables rules are active and lists the ports the selected catalog rows
// need open on all interfaces.
func firewallCheck(rows []ports.Row, cidrs []netip.Prefix) Check {
	return checkFunc{name: "Firewall", run: func(_ context.Context, h *Host, r Result) Result {
		ii, _ := h.installInfo()
		ours := ii != nil && ii.ByTpctl
		var active, unread []string
		ufw, firewalld := false, false
		if b, err := h.ReadFile("/etc/ufw/ufw.conf"); err == nil && ufwEnabled(b) {
			ufw = true
			active = append(active, "ufw (ENABLED=yes in /etc/ufw/ufw.conf)")
		}
		if p := h.running("firewalld"); len(p) > 0 {
			firewalld = true
			active = append(active, fmt.Sprintf("firewalld (pid %d)", p[0].PID))
		} else if h.Exists("/etc/systemd/system/multi-user.target.wants/firewalld.service") {
			firewalld = true
			active = append(active, "firewalld (enabled, starts at boot)")
		}
		var tables []string
		if nft, err := h.NFTables(); err != nil {
			unread = append(unread, fmt.Sprintf("nftables: %s", err))
		} else {
			for _, t := range nft {
				if !kubeTable(t) && !(ours && iptablesCompatTable(t)) {
					tables = append(tables, t)
				}
			}
		}
		if !ours {
			if b, err := h.ReadFile("/proc/net/ip_tables_names"); err == nil {
				for _, t := range strings.Fields(string(b)) {
					tables = append(tables, "iptables-legacy "+t)
				}
			}
		}
		if len(tables) > 0 {
			sort.Strings(tables)
			active = append(active, "tables "+strings.Join(tables, ", "))
		}
		open := hostPorts(rows)
		if len(active) == 0 {
			if len(unread) > 0 {
				return r.warn("no ufw or firewalld found, but the packet filter rules cannot be read ("+strings.Join(unread, "; ")+")",
					"check by hand (nft list ruleset, iptables -S) that these ports are open: "+strings.Join(open, ", "))
			}
			return r.pass("no active firewall (ufw, firewalld, nftables, iptables)")
		}
		msg := fmt.Sprintf("firewall active: %s; open %s and allow traffic from %s", strings.Join(active, "; "),
			strings.Join(open, ", "), joinPrefixes(cidrs))
		var steps []string
		if ufw {
			for _, p := range open {
				steps = append(steps, "ufw allow "+strings.Replace(p, "-", ":", 1))
			}
			for _, c := range cidrs {
				steps = append(steps, "ufw allow from "+c.String())
			}
		}
		if firewalld {
			for _, p := range open {
				steps = append(steps, "firewall-cmd --permanent --add-port="+p)
			}
			for _, c := range cidrs {
				steps = append(steps, "firewall-cmd --permanent --zone=trusted --add-source="+c.String())
			}
			steps = append(steps, "firewall-cmd --reload")
		}
		if !ufw && !firewalld {
			steps = append(steps, "add accept rules for these ports and for traffic from "+joinPrefixes(cidrs)+" to the active ruleset")
		}
		return r.warn(msg, strings.Join(steps, "; "))
	}}
}
