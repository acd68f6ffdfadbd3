package installer

import (
	"context"
	"fmt"
	"slices"

	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/preflight/ports"
)

// serverOnlyComponents are the components of the k3s port table that run
// only on a server: an agent runs the kubelet, kube-proxy, containerd,
// flannel and its local load balancer to the server (6444), none of these.
func serverOnlyComponents() []string {
	return []string{"k3s server (kube-apiserver)", "etcd (embedded)", "kube-controller-manager", "cloud-controller-manager", "kube-scheduler"}
}

// ServerOnlyPortChecks names the preflight results ("Port-6443-TCP", …) of
// the k3s table's server-only rows.
func ServerOnlyPortChecks() ([]string, error) {
	tables, err := ports.Builtin()
	if err != nil {
		return nil, err
	}
	k3s, err := ports.Pick(tables, []string{ports.TableK3s})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range k3s[0].Rows {
		if slices.Contains(serverOnlyComponents(), r.Component) {
			out = append(out, "Port-"+r.Key())
		}
	}
	return out, nil
}

// AgentPreflight is DefaultPreflight for a host that joins as an agent:
// the same host checks, and of the catalog rows only those an agent opens
// (the server-only rows are left out of the report).
func AgentPreflight(root string, ignore preflight.IgnoreSet, lookupEnv func(string) (string, bool)) PreflightFunc {
	all := DefaultPreflight(root, ignore, lookupEnv)
	return func(ctx context.Context, c Config, more ...string) (preflight.Report, error) {
		rep, err := all(ctx, c, more...)
		if err != nil {
			return rep, err
		}
		drop, err := ServerOnlyPortChecks()
		if err != nil {
			return preflight.Report{}, fmt.Errorf("port catalog: %w", err)
		}
		return withoutResults(rep, drop), nil
	}
}

// withoutResults drops the named results and counts the summary again.
func withoutResults(rep preflight.Report, names []string) preflight.Report {
	kept := rep.Results[:0:0]
	var sum preflight.Summary
	for _, r := range rep.Results {
		if slices.Contains(names, r.Name) {
			continue
		}
		kept = append(kept, r)
		switch r.Severity {
		case preflight.Pass:
			sum.Pass++
		case preflight.Warn:
			sum.Warn++
		case preflight.Fail:
			sum.Fail++
		}
		if r.Ignored {
			sum.Ignored++
		}
	}
	rep.Results, rep.Summary = kept, sum
	return rep
}
