package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/tpctl/tpctl/installer"
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
