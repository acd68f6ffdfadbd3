package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/upgrade"
)

func TestChartsOfReadsTheCoreRelease(t *testing.T) {
	in := upgrade.Installed{Releases: map[string]upgrade.Release{installer.InstanceRelease: {Values: map[string]any{
		"name":             "edge",
		"pipelineDefaults": map[string]any{"image": "mirror/fb:4", "args": []any{"-c", "/f.conf"}},
	}}}}
	ch := chartsOf(in)
	if ch.InstanceName != "edge" || ch.PipelineImage != "mirror/fb:4" || !slices.Equal(ch.PipelineArgs, []string{"-c", "/f.conf"}) {
		t.Fatalf("charts = %+v", ch)
	}
	if ch := chartsOf(upgrade.Installed{}); ch.InstanceName != "" || ch.PipelineImage != "" {
		t.Fatalf("charts without a release = %+v", ch)
	}
}

func TestWriteUpgradePlan(t *testing.T) {
	var b bytes.Buffer
	writeUpgradePlan(&b, upgrade.Plan{Resume: installer.UpgradeApplying, Rows: []upgrade.Row{{Component: "K3s", From: "v1.35.2+k3s1", To: "v1.36.3+k3s1", Change: upgrade.ChangeUpgrade}}})
	out := b.String()
	for _, want := range []string{"COMPONENT", "K3s", "v1.35.2+k3s1", "v1.36.3+k3s1", "upgrade", "phase applying"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

// Both the automatic rollback and --rollback take their Options from
// upgradeOptions: they roll Helm releases back through the host's
// kubeconfig, reporting progress in table output only.
func TestUpgradeOptionsRollBackHelmReleases(t *testing.T) {
	var b bytes.Buffer
	o := upgradeOptions(upgrade.Installed{}, upgrade.Plan{}, upgrade.Target{}, installer.Sources{}, nil, time.Minute, cli.Table, &b)
	if o.Releases == nil {
		t.Fatal("no Helm client: a rollback cannot undo a release upgrade")
	}
	hr, ok := o.Releases.(installer.HelmReleases)
	if !ok {
		t.Fatalf("Releases is %T", o.Releases)
	}
	if hr.Kubeconfig != installer.KubeconfigPath || hr.CacheDir != filepath.Join("/", installer.HelmCacheDir) || hr.NoWait {
		t.Fatalf("Helm releases %+v", hr)
	}
	hr.Progress("rolling back release tp-operator")
	if !strings.Contains(b.String(), "rolling back release tp-operator\n") {
		t.Fatalf("progress not shown: %q", b.String())
	}
	b.Reset()
	o = upgradeOptions(upgrade.Installed{}, upgrade.Plan{}, upgrade.Target{}, installer.Sources{}, nil, time.Minute, cli.JSON, &b)
	o.Releases.(installer.HelmReleases).Progress("rolling back release tp-operator")
	if b.Len() != 0 {
		t.Fatalf("progress in JSON output: %q", b.String())
	}
}

// --rollback prints what the rollback restores, not the forward plan
// (after an upgrade every row of it is "unchanged").
func TestUpgradeRollbackPrintsWhatItRestores(t *testing.T) {
	rec := &installer.UpgradeRecord{
		Phase: installer.UpgradeDone, FromTpctl: "v0.1.0", ToTpctl: "v0.2.0",
		FromK3s: installer.K3sRecord{Version: "v1.35.2+k3s1"}, ToK3s: "v1.36.3+k3s1",
		Kept: []installer.KeptFile{
			{Path: installer.K3sBinaryPath, Saved: upgrade.KeptDir + "/k3s", SHA256: strings.Repeat("a", 64), Mode: 0o755},
			{Path: installer.RegistriesPath, Saved: upgrade.KeptDir + "/registries.yaml", Absent: true},
		},
		Releases: []installer.ReleaseRevision{{Namespace: installer.OperatorNamespace, Name: installer.OperatorRelease, Revision: 1, Chart: "0.1.0"}},
	}
	in := upgrade.Installed{State: installer.State{Upgrade: rec}, Releases: map[string]upgrade.Release{
		installer.OperatorRelease: {Namespace: installer.OperatorNamespace, Name: installer.OperatorRelease, Revision: 2, Chart: "0.2.0"},
	}}
	plan := upgrade.Plan{Rollback: "K3s v1.35.2+k3s1", Rows: []upgrade.Row{{Component: "K3s", From: "v1.36.3+k3s1", To: "v1.36.3+k3s1", Change: upgrade.ChangeNone}}}
	var b bytes.Buffer
	writePlan(&b, true, in, plan)
	out := b.String()
	if strings.Contains(out, "unchanged") || strings.Contains(out, "CHANGE") {
		t.Errorf("rollback output shows the forward plan:\n%s", out)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"tpctl v0.2.0 v0.1.0", "K3s v1.36.3+k3s1 v1.35.2+k3s1",
		"revision 2 (chart 0.2.0) revision 1 (chart 0.1.0)",
		"restore " + installer.K3sBinaryPath + " from " + upgrade.KeptDir + "/k3s",
		"remove " + installer.RegistriesPath + " (the upgrade added it)",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("rollback output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	writePlan(&b, false, in, plan)
	if !strings.Contains(b.String(), "CHANGE") {
		t.Errorf("upgrade output lacks the plan:\n%s", b.String())
	}
}
