package upgrade

import (
	"errors"
	"strings"
	"testing"

	"github.com/tpctl/tpctl/installer"
)

func installed(k3s, chart string) Installed {
	return Installed{
		StateFound: true, StateVersion: installer.StateVersion,
		State: installer.State{
			Version: installer.StateVersion, Completed: true,
			Config: installer.Config{NodeName: "edge1"},
			K3s:    installer.K3sRecord{Version: k3s, Source: "payload"},
		},
		NodeReady: true, NodeReason: "Ready",
		Releases: map[string]Release{
			installer.OperatorRelease: {Namespace: installer.OperatorNamespace, Name: installer.OperatorRelease, Revision: 1, Status: "deployed", Chart: chart, AppVersion: chart},
			installer.InstanceRelease: {Namespace: installer.InstanceNamespace, Name: installer.InstanceRelease, Revision: 1, Status: "deployed", Chart: chart},
		},
		OperatorImage: "tpctl/operator:" + chart,
	}
}

func target(k3s, chart string) Target {
	return Target{Tpctl: "v" + chart, K3s: k3s, Chart: chart, OperatorImage: "tpctl/operator:" + chart}
}

func codes(p Plan) []string {
	var out []string
	for _, r := range p.Refusals {
		out = append(out, r.Code)
	}
	return out
}

func row(t *testing.T, p Plan, comp string) Row {
	t.Helper()
	for _, r := range p.Rows {
		if r.Component == comp {
			return r
		}
	}
	t.Fatalf("no row %q in %+v", comp, p.Rows)
	return Row{}
}

func TestComputeUpgrade(t *testing.T) {
	p := Compute(installed("v1.35.2+k3s1", "0.1.0"), target("v1.36.3+k3s1", "0.2.0"))
	if p.Refused() || !p.Changes || p.NothingToDo() || !p.Charts {
		t.Fatalf("plan = %+v, want an upgrade", p)
	}
	for comp, want := range map[string]Row{
		// The operator's appVersion (0.1.0) is shown as tpctl names its
		// versions.
		"tpctl":             {From: "v0.1.0", To: "v0.2.0", Change: ChangeUpgrade},
		"K3s":               {From: "v1.35.2+k3s1", To: "v1.36.3+k3s1", Change: ChangeUpgrade},
		"chart tp-operator": {From: "0.1.0", To: "0.2.0", Change: ChangeUpgrade},
		"chart core":        {From: "0.1.0", To: "0.2.0", Change: ChangeUpgrade},
		"CRDs":              {From: "0.1.0", To: "0.2.0", Change: ChangeUpgrade},
		"operator image":    {From: "tpctl/operator:0.1.0", To: "tpctl/operator:0.2.0", Change: ChangeUpgrade},
	} {
		got := row(t, p, comp)
		want.Component = comp
		if got != want {
			t.Errorf("row %s = %+v, want %+v", comp, got, want)
		}
	}
}

// The tpctl row names both versions in the target's style, whichever style
// the state or the release used (a pre-release such as the e2e build's
// included).
func TestComputeTpctlRowOneStyle(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"0.0.0-e2e", "v0.0.1-e2e", "v0.0.0-e2e"},
		{"v0.1.0", "v0.2.0", "v0.1.0"},
		{"v0.1.0", "0.2.0", "0.1.0"},
		{"not-a-version", "v0.2.0", "not-a-version"},
	} {
		in := installed("v1.35.2+k3s1", "0.1.0")
		in.State.TpctlVersion = c.from
		if got := row(t, Compute(in, Target{Tpctl: c.to, K3s: "v1.35.2+k3s1", Chart: "0.1.0", OperatorImage: "tpctl/operator:0.1.0"}), "tpctl"); got.From != c.want || got.To != c.to {
			t.Errorf("tpctl %s → %s: row %s → %s, want %s → %s", c.from, c.to, got.From, got.To, c.want, c.to)
		}
	}
}

func TestComputeNothingToUpgrade(t *testing.T) {
	in := installed("v1.36.3+k3s1", "0.2.0")
	in.State.TpctlVersion = "v0.2.0"
	p := Compute(in, target("v1.36.3+k3s1", "0.2.0"))
	if !p.NothingToDo() {
		t.Fatalf("plan = %+v, want nothing to do", p)
	}
	// A node that is not Ready does not matter when nothing changes.
	in.NodeReady, in.NodeReason = false, "KubeletNotReady"
	if p := Compute(in, target("v1.36.3+k3s1", "0.2.0")); !p.NothingToDo() {
		t.Fatalf("plan = %+v, want nothing to do", p)
	}
}

func TestComputeRefusals(t *testing.T) {
	cases := []struct {
		name   string
		in     func() Installed
		to     Target
		code   string
		reason string
	}{
		{"no install", func() Installed { return Installed{} }, target("v1.36.3+k3s1", "0.2.0"), RefuseNoInstall, "no install"},
		{"newer state schema", func() Installed {
			return Installed{StateFound: true, StateVersion: installer.StateVersion + 1, StateErr: errors.New("version 2 is not supported")}
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseNewerState, "newer tpctl"},
		{"unreadable state", func() Installed {
			return Installed{StateFound: true, StateVersion: installer.StateVersion, StateErr: errors.New("not a state file")}
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseBadState, "not a state file"},
		{"k3s downgrade", func() Installed { return installed("v1.36.3+k3s2", "0.1.0") }, target("v1.36.3+k3s1", "0.2.0"), RefuseK3sDowngrade, "downgrade"},
		{"k3s minor downgrade", func() Installed { return installed("v1.36.3+k3s1", "0.1.0") }, target("v1.35.9+k3s1", "0.2.0"), RefuseK3sDowngrade, "downgrade"},
		{"skip a minor", func() Installed { return installed("v1.34.1+k3s1", "0.1.0") }, target("v1.36.3+k3s1", "0.2.0"), RefuseSkipMinor, "one minor at a time (v1.34 → v1.36)"},
		{"major change", func() Installed { return installed("v1.36.1+k3s1", "0.1.0") }, target("v2.0.0+k3s1", "0.2.0"), RefuseSkipMinor, "skips"},
		{"unknown installed k3s", func() Installed { return installed("", "0.1.0") }, target("v1.36.3+k3s1", "0.2.0"), RefuseK3sUnknown, "does not say"},
		{"no k3s in this tpctl", func() Installed { return installed("v1.36.3+k3s1", "0.1.0") }, target("", "0.2.0"), RefuseK3sUnknown, "carries no K3s"},
		{"node not ready", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.NodeReady, in.NodeReason = false, "KubeletNotReady"
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseNodeNotReady, "node edge1 is not Ready (KubeletNotReady)"},
		{"node unreadable", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.NodeErr = errors.New("connection refused")
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseNodeNotReady, "connection refused"},
		{"newer tpctl upgraded the host", func() Installed {
			in := installed("v1.36.3+k3s1", "0.3.0")
			in.State.TpctlVersion = "v0.3.0"
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseDowngrade, "newer than this tpctl"},
		{"chart downgrade", func() Installed { return installed("v1.36.3+k3s1", "0.3.0") }, target("v1.36.3+k3s1", "0.2.0"), RefuseDowngrade, "operator chart 0.3.0 is newer"},
		{"agent host", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.State.Role, in.State.Join = installer.RoleAgent, &installer.JoinRecord{Server: "https://192.0.2.10:6443"}
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseAgent, "K3s agent joined to https://192.0.2.10:6443"},
		{"joined server member", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.State.Role, in.State.Join = installer.RoleServer, &installer.JoinRecord{Server: "https://192.0.2.10:6443"}
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseServerMember, "control-plane member joined to https://192.0.2.10:6443"},
		{"install not finished", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.State.Completed = false
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseIncomplete, "did not finish"},
		{"proxy password", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.State.Config.HTTPProxy = "http://u:xxxxx@proxy:3128"
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseSecrets, "credentials"},
		{"registry password", func() Installed {
			in := installed("v1.35.2+k3s1", "0.1.0")
			in.State.Config.Registries = &installer.Registries{Configs: map[string]installer.RegistryConfig{"r.example": {Auth: &installer.RegistryAuth{Username: "u", Password: "xxxxx"}}}}
			return in
		}, target("v1.36.3+k3s1", "0.2.0"), RefuseSecrets, "credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Compute(c.in(), c.to)
			if !p.Refused() {
				t.Fatalf("plan = %+v, want refused with %s", p, c.code)
			}
			found := false
			for _, r := range p.Refusals {
				if r.Code == c.code && strings.Contains(r.Reason, c.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("refusals = %+v, want %s naming %q", p.Refusals, c.code, c.reason)
			}
		})
	}
}

func TestComputeOneMinorIsAllowed(t *testing.T) {
	p := Compute(installed("v1.35.9+k3s2", "0.1.0"), target("v1.36.0+k3s1", "0.2.0"))
	if p.Refused() {
		t.Fatalf("refusals = %v, want none", codes(p))
	}
	p = Compute(installed("v1.36.1+k3s1", "0.1.0"), target("v1.36.1+k3s2", "0.2.0"))
	if p.Refused() || row(t, p, "K3s").Change != ChangeUpgrade {
		t.Fatalf("plan = %+v, want a K3s patch upgrade", p)
	}
}

func TestComputeResumeIgnoresNode(t *testing.T) {
	in := installed("v1.35.2+k3s1", "0.1.0")
	in.NodeReady = false
	in.State.Upgrade = &installer.UpgradeRecord{Phase: installer.UpgradeApplying}
	p := Compute(in, target("v1.36.3+k3s1", "0.2.0"))
	if p.Refused() || p.Resume != installer.UpgradeApplying {
		t.Fatalf("plan = %+v, want a resume without refusal", p)
	}
	in.State.Upgrade.Phase = installer.UpgradeDone
	in.State.K3s.Version = "v1.36.3+k3s1"
	in.NodeReady = true
	p = Compute(in, target("v1.36.3+k3s1", "0.1.0"))
	if p.Rollback == "" || p.Resume != "" {
		t.Fatalf("plan = %+v, want a rollback offer", p)
	}
}

func TestComputeSkipCharts(t *testing.T) {
	in := installed("v1.35.2+k3s1", "0.1.0")
	in.Releases = nil
	p := Compute(in, target("v1.36.3+k3s1", "0.2.0"))
	if p.Refused() || p.Charts || row(t, p, "chart core").Change != ChangeSkip {
		t.Fatalf("plan = %+v, want K3s only", p)
	}
}
