package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/upgrade"
)

// rollbackPlan is what `tpctl upgrade --rollback` restores: the recorded
// upgrade reversed (from is what runs now, to what is restored).
type rollbackPlan struct {
	// StartedAt and Phase name the recorded upgrade.
	StartedAt time.Time `json:"startedAt"`
	Phase     string    `json:"phase"`
	// Components: tpctl and K3s, then each Helm release.
	Components []rollbackRow `json:"components"`
	// Files are the host files put back (restore) or removed (remove: the
	// upgrade added them).
	Files []rollbackFile `json:"files"`
}

type rollbackRow struct {
	Component string `json:"component"`
	From      string `json:"from"`
	To        string `json:"to"`
}

type rollbackFile struct {
	Path   string `json:"path"`
	Action string `json:"action"`
	// From is the kept copy a restored file comes from.
	From string `json:"from,omitempty"`
}

// rollbackPlanOf reverses the recorded upgrade; cur holds the releases as
// they are now, present whether each kept file is on the host (nil: not
// known). A file that was absent before the upgrade and is absent now has
// nothing to remove and is not listed. It is nil when there is nothing to
// roll back.
func rollbackPlanOf(rec *installer.UpgradeRecord, cur map[string]upgrade.Release, present map[string]bool) *rollbackPlan {
	if rec == nil || rec.Phase == installer.UpgradeRolledBack {
		return nil
	}
	p := &rollbackPlan{StartedAt: rec.StartedAt.UTC(), Phase: rec.Phase, Files: []rollbackFile{}, Components: []rollbackRow{
		{Component: "tpctl", From: orUnknown(rec.ToTpctl), To: orUnknown(rec.FromTpctl)},
		{Component: "K3s", From: orUnknown(rec.ToK3s), To: orUnknown(rec.FromK3s.Version)},
	}}
	for _, r := range rec.Releases {
		now := "unknown"
		if c, ok := cur[r.Name]; ok {
			now = fmt.Sprintf("revision %d (chart %s)", c.Revision, orUnknown(c.Chart))
		}
		p.Components = append(p.Components, rollbackRow{Component: "release " + r.Namespace + "/" + r.Name, From: now,
			To: fmt.Sprintf("revision %d (chart %s)", r.Revision, orUnknown(r.Chart))})
	}
	for _, k := range rec.Kept {
		if k.Absent {
			if here, known := present[k.Path]; known && !here {
				continue
			}
			p.Files = append(p.Files, rollbackFile{Path: k.Path, Action: "remove"})
		} else {
			p.Files = append(p.Files, rollbackFile{Path: k.Path, Action: "restore", From: k.Saved})
		}
	}
	return p
}

// writeRollbackPlan prints what rolling back the recorded upgrade restores:
// the versions (now → restored), the Helm releases' revisions and the kept
// files.
func writeRollbackPlan(w io.Writer, p *rollbackPlan) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "Rolling back the upgrade started %s (phase %s):\n", p.StartedAt.Format(time.RFC3339), p.Phase)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tNOW\tRESTORED")
	for _, r := range p.Components {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Component, r.From, r.To)
	}
	tw.Flush()
	for _, f := range p.Files {
		if f.Action == "remove" {
			fmt.Fprintf(w, "  remove %s (the upgrade added it)\n", f.Path)
		} else {
			fmt.Fprintf(w, "  restore %s from %s\n", f.Path, f.From)
		}
	}
}

// newUpgradeReport starts `tpctl upgrade -o json`'s report: the upgrade's
// plan, or with --rollback what the rollback restores.
func newUpgradeReport(to upgrade.Target, plan upgrade.Plan, in upgrade.Installed, rollback bool) upgradeReport {
	if rollback {
		return upgradeReport{Target: to, Rollback: rollbackPlanOf(in.State.Upgrade, in.Releases, in.Present)}
	}
	return upgradeReport{Target: to, Plan: &plan}
}
