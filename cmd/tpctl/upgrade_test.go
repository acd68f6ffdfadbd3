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
