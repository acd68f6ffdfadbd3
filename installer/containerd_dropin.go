package installer

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The containerd drop-in. K3s's base containerd templates import a
// directory next to the generated config (k3s-io/k3s pkg/agent/templates,
// since the change that added `imports` to ContainerdConfigTemplate and
// ContainerdConfigTemplateV3, PR 13680; K3s 1.36 renders
//
//	imports = ["<data-dir>/agent/etc/containerd/config-v3.toml.d/*.toml"]
//
// into its version 3 config). containerd 2 loads each imported file after
// the main one and merges it in (cmd/containerd/server/config: LoadConfig →
// mergeConfig → mergo.Merge WithOverride). Plugins is a map[string]any, and
// mergo merges nested maps key by key: a drop-in that sets one key of the
// CRI runtime table adds that key and keeps every other key K3s generated
// (containerd's comment "values are replaced entirely" no longer describes
// what mergo does; `containerd config dump` shows the merged table).
//
// So on a host without CAP_SYS_RESOURCE tpctl writes one drop-in that sets
// restrict_oom_score_adj before K3s first starts: nothing depends on the
// config a K3s generated, K3s is not restarted for it at install, and an
// upgrade restarts K3s once (for the new binary), the drop-in staying valid
// for every K3s whose base template imports the directory.
//
// A user template (config-v3.toml.tmpl) cannot do the same without K3s's
// output: K3s parses it with text/template, adds its own template as
// "base" (templates.ParseTemplateFromConfig) and executes it with
// templates.ContainerdConfig. A template that includes {{ template "base" . }}
// can only append tables, and the base already declares
// [plugins.'io.containerd.cri.v1.runtime'] (TOML forbids declaring it again:
// "toml: table ... already exists", k3s-io/docs issue 566); K3s sets the key
// there only when .IsRunningInUserNS, a field the template reads but cannot
// change. Its functions (templateFuncs on Linux: deschemify, toJson,
// filepathjoin) and text/template's own cannot take a rendered template
// as a value to edit: the output of {{ template "base" . }} goes straight
// to the result.
// The only templates that set the key are full copies of a base template,
// which go stale with K3s: hence the derivation from the generated config
// (DeriveContainerdTemplate), kept for a K3s whose generated config does
// not import the drop-in directory.
const (
	// ContainerdDropInDir is the version 3 drop-in directory, below
	// ContainerdDir.
	ContainerdDropInDir = "config-v3.toml.d"
	containerdDropIn    = "50-tpctl-restrict-oom-score-adj.toml"
)

// ContainerdDropInPath is tpctl's containerd drop-in.
func ContainerdDropInPath(c Config) string {
	return filepath.Join(ContainerdDir(c), ContainerdDropInDir, containerdDropIn)
}

// RenderContainerdDropIn renders the drop-in that sets
// restrict_oom_score_adj in containerd 2's CRI runtime table.
func RenderContainerdDropIn() []byte {
	return []byte(`# Written by tpctl install: this host lacks CAP_SYS_RESOURCE, so runc cannot
# give pod sandboxes their negative oom_score_adj unless containerd's CRI
# plugin restricts it. K3s's generated config.toml imports this directory;
# containerd merges this key into the CRI runtime table K3s generated.
# ` + "`tpctl uninstall`" + ` removes it.
version = 3

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
`)
}

var tomlImports = regexp.MustCompile(`(?m)^imports\s*=\s*\[([^\]]*)\]`)

// ImportsDropIn reports whether a generated containerd config imports the
// drop-in directory dir (an absolute path as K3s renders it: dir/*.toml).
func ImportsDropIn(generated []byte, dir string) bool {
	m := tomlImports.FindSubmatch(generated)
	if m == nil {
		return false
	}
	want := filepath.Join(dir, "*.toml")
	for _, item := range strings.Split(string(m[1]), ",") {
		item = strings.Trim(strings.TrimSpace(item), `"'`)
		if item != "" && filepath.Clean(item) == want {
			return true
		}
	}
	return false
}

// containerdDropInStep writes the drop-in on hosts that lack
// CAP_SYS_RESOURCE, before K3s starts (a change restarts a running K3s,
// through the start step). It writes nothing on other hosts.
type containerdDropInStep struct{ fileStep }

func newContainerdDropInStep(env *Env) *containerdDropInStep {
	return &containerdDropInStep{fileStep{env: env, name: "containerd drop-in", path: ContainerdDropInPath(env.Config), perm: 0o600,
		render: func() ([]byte, error) { return RenderContainerdDropIn(), nil }}}
}

func (s *containerdDropInStep) Describe() string {
	return "when CAP_SYS_RESOURCE is missing: write a containerd drop-in setting restrict_oom_score_adj = true, which K3s's generated config imports"
}

func (s *containerdDropInStep) Done(ctx context.Context) (bool, error) {
	if !s.env.Facts.NoCapSysResource {
		return true, nil
	}
	return s.fileStep.Done(ctx)
}

func (s *containerdDropInStep) Run(ctx context.Context, ev Events) error {
	if !s.env.Facts.NoCapSysResource {
		return nil
	}
	return s.fileStep.Run(ctx, ev)
}

// Files explains the drop-in for the dry run.
func (s *containerdDropInStep) Files() []FilePreview {
	if !s.env.Facts.NoCapSysResource {
		return []FilePreview{{Path: s.path, Note: "not written: this host has CAP_SYS_RESOURCE"}}
	}
	fp := s.fileStep.Files()
	fp[0].Note = "imported by the containerd config K3s generates; K3s starts with it, no restart"
	return fp
}

// dropInActive reports whether the drop-in is in place and the generated
// config imports its directory.
func (s *containerdStep) dropInActive(gen []byte) bool {
	if !ImportsDropIn(gen, filepath.Join(ContainerdDir(s.env.Config), ContainerdDropInDir)) {
		return false
	}
	b, err := os.ReadFile(s.env.FS.Path(ContainerdDropInPath(s.env.Config)))
	return err == nil && string(b) == string(RenderContainerdDropIn())
}
