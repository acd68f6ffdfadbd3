package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/upgrade"
)

// `tpctl upgrade --rollback -o json` reports what the rollback restores
// (the recorded upgrade reversed), not the forward plan.
func TestUpgradeRollbackJSONIsTheRollbackPlan(t *testing.T) {
	rec := &installer.UpgradeRecord{
		Phase: installer.UpgradeDone, StartedAt: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		FromTpctl: "v0.1.0", ToTpctl: "v0.2.0",
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
	// After an upgrade the forward plan has every component unchanged.
	plan := upgrade.Plan{Rollback: "K3s v1.35.2+k3s1", Rows: []upgrade.Row{{Component: "K3s", From: "v1.36.3+k3s1", To: "v1.36.3+k3s1", Change: upgrade.ChangeNone}}}
	var b bytes.Buffer
	if err := cli.Encode(&b, cli.JSON, newUpgradeReport(upgrade.Target{Tpctl: "v0.2.0"}, plan, in, true)); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plan     json.RawMessage `json:"plan"`
		Rollback *struct {
			Phase      string `json:"phase"`
			Components []struct{ Component, From, To string }
			Files      []struct{ Path, Action, From string }
		} `json:"rollback"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	if got.Plan != nil || got.Rollback == nil {
		t.Fatalf("the rollback's report carries the forward plan, or no rollback plan:\n%s", b.String())
	}
	r := got.Rollback
	want := []struct{ Component, From, To string }{
		{"tpctl", "v0.2.0", "v0.1.0"},
		{"K3s", "v1.36.3+k3s1", "v1.35.2+k3s1"},
		{"release " + installer.OperatorNamespace + "/" + installer.OperatorRelease, "revision 2 (chart 0.2.0)", "revision 1 (chart 0.1.0)"},
	}
	if r.Phase != installer.UpgradeDone || len(r.Components) != len(want) {
		t.Fatalf("rollback plan:\n%s", b.String())
	}
	for i, w := range want {
		if r.Components[i] != w {
			t.Errorf("component %d = %+v, want %+v", i, r.Components[i], w)
		}
	}
	files := []struct{ Path, Action, From string }{
		{installer.K3sBinaryPath, "restore", upgrade.KeptDir + "/k3s"},
		{installer.RegistriesPath, "remove", ""},
	}
	if len(r.Files) != len(files) || r.Files[0] != files[0] || r.Files[1] != files[1] {
		t.Errorf("files = %+v, want %+v", r.Files, files)
	}

	// Without --rollback the report is the upgrade's plan.
	b.Reset()
	if err := cli.Encode(&b, cli.JSON, newUpgradeReport(upgrade.Target{}, plan, in, false)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"components"`) || strings.Contains(b.String(), `"rollback": {`) {
		t.Errorf("upgrade report:\n%s", b.String())
	}
}

// A file the upgrade recorded as absent before it is listed for removal
// only when it is on the host now: a containerd template the upgrade never
// wrote is not "removed".
func TestRollbackPlanListsOnlyAddedFilesThatExist(t *testing.T) {
	rec := &installer.UpgradeRecord{Phase: installer.UpgradeDone, Kept: []installer.KeptFile{
		{Path: installer.RegistriesPath, Saved: upgrade.KeptDir + "/registries.yaml", Absent: true},
		{Path: "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl", Saved: upgrade.KeptDir + "/config-v3.toml.tmpl", Absent: true},
	}}
	p := rollbackPlanOf(rec, nil, map[string]bool{installer.RegistriesPath: true, rec.Kept[1].Path: false})
	if len(p.Files) != 1 || p.Files[0].Path != installer.RegistriesPath || p.Files[0].Action != "remove" {
		t.Fatalf("files: %+v", p.Files)
	}
	var b bytes.Buffer
	writeRollbackPlan(&b, p)
	if strings.Contains(b.String(), "config-v3.toml.tmpl") {
		t.Fatalf("the plan removes a file that is not there:\n%s", b.String())
	}
}
