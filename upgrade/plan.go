// Package upgrade moves an installed host to the versions carried by this
// tpctl binary (K3s, the operator and core-instance charts, the operator
// image and the CRDs), and back.
//
// Like kubeadm's `upgrade plan` / `upgrade apply`, it first computes a plan
// from what the host runs and what this binary carries, and refuses what is
// unsafe (a K3s downgrade, a skipped Kubernetes minor, a state written by a
// newer tpctl, a node that is not Ready). Apply then records its intent in
// the install state before changing anything, keeps the previous K3s
// binary and configuration aside, takes a snapshot, and reruns the install
// plan with the recorded configuration, which stages the new K3s and
// images, restarts k3s.service once (KillMode=process: pipeline pods keep
// running; twice where the containerd template must be derived again for
// the new K3s) and upgrades the releases. A failure or timeout rolls back.
package upgrade

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/version"
)

// Release is a Helm release as the cluster stores it.
type Release struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Revision   int    `json:"revision"`
	Status     string `json:"status"`
	Chart      string `json:"chart"` // chart version
	AppVersion string `json:"appVersion,omitempty"`
	// Values are the values the release was installed with.
	Values map[string]any `json:"-"`
}

// Installed is what the host runs: its install state and what the cluster
// says.
type Installed struct {
	// StateFound: an install state file exists. StateVersion is the schema
	// version it declares; StateErr is why it cannot be used (nil when it
	// can).
	StateFound   bool
	StateVersion int
	StateErr     error
	State        installer.State
	// NodeErr is why the node could not be read; NodeReady/NodeReason
	// what it says otherwise.
	NodeErr    error
	NodeReady  bool
	NodeReason string
	// Releases by name (installer.OperatorRelease, installer.InstanceRelease);
	// a release that is not installed is absent.
	Releases map[string]Release
	// OperatorImage is the image of the operator Deployment ("" when
	// absent).
	OperatorImage string
	// Present says, for each file the recorded upgrade kept, whether it is
	// on the host now (nil when no upgrade is recorded).
	Present map[string]bool
}

// Target is what this tpctl carries.
type Target struct {
	Tpctl string `json:"tpctl"`
	K3s   string `json:"k3s"`
	// K3sSource says where the new K3s comes from (payload, file).
	K3sSource     string `json:"k3sSource,omitempty"`
	Chart         string `json:"chart"`
	OperatorImage string `json:"operatorImage"`
}

// Change kinds of a plan row.
const (
	ChangeUpgrade   = "upgrade"
	ChangeNone      = "unchanged"
	ChangeDowngrade = "downgrade"
	ChangeUnknown   = "unknown"
	ChangeSkip      = "not installed"
)

// Row is one component's from → to.
type Row struct {
	Component string `json:"component"`
	From      string `json:"from"`
	To        string `json:"to"`
	Change    string `json:"change"`
}

// Refusal codes.
const (
	RefuseNoInstall    = "no-install"
	RefuseNewerState   = "newer-state"
	RefuseBadState     = "bad-state"
	RefuseIncomplete   = "install-incomplete"
	RefuseK3sDowngrade = "k3s-downgrade"
	RefuseSkipMinor    = "skip-minor"
	RefuseK3sUnknown   = "k3s-version-unknown"
	RefuseDowngrade    = "tpctl-downgrade"
	RefuseNodeNotReady = "node-not-ready"
	RefuseSecrets      = "redacted-credentials"
	RefuseAgent        = "agent-host"
	RefuseServerMember = "server-member"
)

// Refusal is one reason not to upgrade.
type Refusal struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Plan is what an upgrade would do.
type Plan struct {
	Rows     []Row     `json:"components"`
	Refusals []Refusal `json:"refusals,omitempty"`
	// Changes: at least one component changes.
	Changes bool `json:"changes"`
	// Charts: the releases are installed and are upgraded with the node.
	Charts bool `json:"charts"`
	// Resume is the phase of an upgrade that was interrupted ("" when
	// none): applying it finishes that upgrade or its rollback.
	Resume string `json:"resume,omitempty"`
	// Rollback describes what `upgrade --rollback` would restore ("" when
	// there is nothing to roll back).
	Rollback string `json:"rollback,omitempty"`
}

// Refused reports whether the plan must not be applied.
func (p Plan) Refused() bool { return len(p.Refusals) > 0 }

// NothingToDo: the host runs this tpctl's versions already.
func (p Plan) NothingToDo() bool { return !p.Refused() && !p.Changes && p.Resume == "" }

func (p *Plan) refuse(code, format string, args ...any) {
	p.Refusals = append(p.Refusals, Refusal{Code: code, Reason: fmt.Sprintf(format, args...)})
}

// Compute compares what the host runs with what this tpctl carries. It
// only reads its arguments.
func Compute(in Installed, to Target) Plan {
	var p Plan
	switch {
	case !in.StateFound:
		p.refuse(RefuseNoInstall, "no install on this host: %s does not exist (`tpctl install` installs)", installer.StatePath)
		return p
	case in.StateVersion > installer.StateVersion:
		p.refuse(RefuseNewerState, "the install state %s was written by a newer tpctl (state version %d; this tpctl %s reads version %d): upgrade with that tpctl or a newer one",
			installer.StatePath, in.StateVersion, to.Tpctl, installer.StateVersion)
		return p
	case in.StateErr != nil:
		p.refuse(RefuseBadState, "%v", in.StateErr)
		return p
	}
	st := in.State
	if installer.AgentState(st) {
		server := "its server"
		if st.Join != nil && st.Join.Server != "" {
			server = st.Join.Server
		}
		p.refuse(RefuseAgent, "this host is a K3s agent joined to %s (k3s-agent.service): tpctl upgrade upgrades a server host only; upgrading agents is not supported yet", server)
		return p
	}
	if st.Role == installer.RoleServer {
		server := "the cluster"
		if st.Join != nil && st.Join.Server != "" {
			server = st.Join.Server
		}
		p.refuse(RefuseServerMember, "this host is a control-plane member joined to %s with `tpctl join --role server`: upgrading server members (one at a time, keeping etcd's quorum) is not supported yet", server)
		return p
	}
	if u := st.Upgrade; u != nil {
		switch u.Phase {
		case installer.UpgradeDone:
			p.Rollback = fmt.Sprintf("K3s %s and the releases as they were before the upgrade from tpctl %s", orUnknown(u.FromK3s.Version), orUnknown(u.FromTpctl))
		case installer.UpgradeRolledBack:
		default:
			p.Resume = u.Phase
		}
	}
	if !st.Completed && p.Resume == "" {
		p.refuse(RefuseIncomplete, "the install did not finish: run `tpctl install` with its configuration to finish it, then upgrade")
	}

	// tpctl itself.
	fromTpctl := st.TpctlVersion
	if fromTpctl == "" {
		if r, ok := in.Releases[installer.OperatorRelease]; ok && r.AppVersion != "" {
			fromTpctl = r.AppVersion
		}
	}
	fromTpctl = styledLike(fromTpctl, to.Tpctl)
	p.Rows = append(p.Rows, Row{Component: "tpctl", From: orUnknown(fromTpctl), To: to.Tpctl, Change: semChange(fromTpctl, to.Tpctl)})
	if a, err := version.Parse(st.TpctlVersion); err == nil {
		if b, err := version.Parse(to.Tpctl); err == nil && a.Compare(b) > 0 {
			p.refuse(RefuseDowngrade, "this host was upgraded by tpctl %s, newer than this tpctl %s: use that tpctl or a newer one", st.TpctlVersion, to.Tpctl)
		}
	}

	// K3s.
	k3sRow := Row{Component: "K3s", From: orUnknown(st.K3s.Version), To: orUnknown(to.K3s)}
	from, ferr := version.ParseK3s(st.K3s.Version)
	target, terr := version.ParseK3s(to.K3s)
	switch {
	case ferr != nil:
		k3sRow.Change = ChangeUnknown
		p.refuse(RefuseK3sUnknown, "the install state does not say which K3s the node runs (%q): tpctl does not guess the version it upgrades from", st.K3s.Version)
	case terr != nil:
		k3sRow.Change = ChangeUnknown
		p.refuse(RefuseK3sUnknown, "this tpctl carries no K3s of a known version (%q): a release build carries one, or pass --k3s-binary", to.K3s)
	default:
		switch c := target.Compare(from); {
		case c < 0:
			k3sRow.Change = ChangeDowngrade
			p.refuse(RefuseK3sDowngrade, "K3s %s → %s is a downgrade: K3s does not support going back to an older Kubernetes on the same datastore (use `tpctl upgrade --rollback` right after an upgrade)", st.K3s.Version, to.K3s)
		case c == 0:
			k3sRow.Change = ChangeNone
		default:
			k3sRow.Change = ChangeUpgrade
			if version.SkipsMinor(from, target) {
				p.refuse(RefuseSkipMinor, "K3s %s → %s skips a Kubernetes minor version: Kubernetes upgrades one minor at a time (v1.%d → v1.%d); upgrade with a tpctl that carries K3s v1.%d first",
					st.K3s.Version, to.K3s, from.Minor(), target.Minor(), from.Minor()+1)
			}
		}
	}
	p.Rows = append(p.Rows, k3sRow)

	// Charts, CRDs (shipped in the operator chart) and the operator image.
	op, hasOp := in.Releases[installer.OperatorRelease]
	core, hasCore := in.Releases[installer.InstanceRelease]
	p.Charts = hasOp
	chartRow := func(name string, r Release, has bool) Row {
		if !has {
			return Row{Component: "chart " + name, From: "-", To: "-", Change: ChangeSkip}
		}
		return Row{Component: "chart " + name, From: r.Chart, To: to.Chart, Change: semChange(r.Chart, to.Chart)}
	}
	p.Rows = append(p.Rows, chartRow(installer.OperatorRelease, op, hasOp), chartRow(installer.InstanceRelease, core, hasCore))
	if hasOp {
		crd := chartRow(installer.OperatorRelease, op, hasOp)
		crd.Component = "CRDs"
		p.Rows = append(p.Rows, crd)
		p.Rows = append(p.Rows, Row{Component: "operator image", From: orUnknown(in.OperatorImage), To: to.OperatorImage, Change: strChange(in.OperatorImage, to.OperatorImage)})
		if a, err := version.Parse(op.Chart); err == nil {
			if b, err := version.Parse(to.Chart); err == nil && a.Compare(b) > 0 {
				p.refuse(RefuseDowngrade, "the operator chart %s is newer than this tpctl's %s: use a tpctl of that version or newer", op.Chart, to.Chart)
			}
		}
	} else {
		p.Rows = append(p.Rows,
			Row{Component: "CRDs", From: "-", To: "-", Change: ChangeSkip},
			Row{Component: "operator image", From: "-", To: "-", Change: ChangeSkip})
	}

	for _, r := range p.Rows[1:] { // tpctl's own version does not make an upgrade
		if r.Change != ChangeNone && r.Change != ChangeSkip {
			p.Changes = true
		}
	}

	if p.Changes && p.Resume == "" {
		switch {
		case in.NodeErr != nil:
			p.refuse(RefuseNodeNotReady, "node %s cannot be read: %v; the upgrade starts only from a Ready node", st.Config.NodeName, in.NodeErr)
		case !in.NodeReady:
			p.refuse(RefuseNodeNotReady, "node %s is not Ready (%s): the upgrade starts only from a Ready node (`tpctl status` says why)", st.Config.NodeName, in.NodeReason)
		}
		if redacted(st.Config) {
			p.refuse(RefuseSecrets, "the recorded configuration carries credentials (proxy password or registry credentials) that the state keeps only redacted: run `tpctl install --config FILE` with this tpctl instead")
		}
	}
	return p
}

// redacted reports whether the recorded configuration lost secrets to
// redaction: re-applying it would write the redaction marks.
func redacted(c installer.Config) bool {
	if proxyPassword(c.HTTPProxy) || proxyPassword(c.HTTPSProxy) {
		return true
	}
	if c.Registries != nil {
		for _, rc := range c.Registries.Configs {
			if a := rc.Auth; a != nil && (a.Password != "" || a.Auth != "" || a.IdentityToken != "") {
				return true
			}
		}
	}
	return false
}

func proxyPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}

// styledLike writes version v with a leading "v" exactly when like has
// one: a chart's appVersion (0.1.0) and a tpctl build (v0.2.0) name
// versions in two styles, and the plan shows both in one. A v that is not
// a version is kept as it is.
func styledLike(v, like string) string {
	if _, err := version.Parse(v); err != nil {
		return v
	}
	bare := strings.TrimPrefix(v, "v")
	if strings.HasPrefix(like, "v") {
		return "v" + bare
	}
	return bare
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func strChange(from, to string) string {
	switch {
	case from == "" || to == "":
		return ChangeUnknown
	case from == to:
		return ChangeNone
	}
	return ChangeUpgrade
}

func semChange(from, to string) string {
	a, errA := version.Parse(from)
	b, errB := version.Parse(to)
	if errA != nil || errB != nil {
		return strChange(from, to)
	}
	switch c := b.Compare(a); {
	case c > 0:
		return ChangeUpgrade
	case c < 0:
		return ChangeDowngrade
	}
	return ChangeNone
}
