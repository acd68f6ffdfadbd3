package upgrade

import (
	"context"
	"strings"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/operatorimage"
	"github.com/tpctl/tpctl/internal/version"
)

// TargetOf names what this tpctl (of version tpctl) carries: the payload's K3s
// (or the --k3s-binary in src, asked with k3sVersion), the charts and the
// operator image of its version (the payload's when it carries them).
func TargetOf(ctx context.Context, b *bundle.Bundle, tpctl string, src installer.Sources, k3sVersion func(ctx context.Context, binary string) (string, error)) Target {
	t := Target{Tpctl: tpctl, Chart: charts.SemVer(tpctl), OperatorImage: operatorimage.Ref(tpctl)}
	if b == nil {
		b = &bundle.Bundle{}
	}
	switch a, ok := b.Find(bundle.KindK3sBinary, ""); {
	case src.K3sBinary != "":
		t.K3sSource = "file " + src.K3sBinary
		if k3sVersion != nil {
			if out, err := k3sVersion(ctx, src.K3sBinary); err == nil {
				if _, err := version.ParseK3s(out); err == nil {
					t.K3s = k3sWord(out)
				}
			}
		}
	case ok:
		t.K3s, t.K3sSource = a.Version, "payload"
	}
	if a, ok := b.Find(bundle.KindChart, charts.Operator); ok && a.Version != "" {
		t.Chart = a.Version
	}
	if a, ok := b.Find(bundle.KindOperatorImage, ""); ok && a.Version != "" {
		t.OperatorImage = operatorimage.Repository + ":" + a.Version
	}
	return t
}

// k3sWord picks the version out of `k3s --version` output.
func k3sWord(out string) string {
	f := strings.Fields(out)
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			return f[i+1]
		}
	}
	if len(f) > 0 {
		return f[0]
	}
	return ""
}
