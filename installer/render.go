package installer

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/pipeline"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
)

// Facts are what preflight found about the host that changes what install
// writes.
type Facts struct {
	// CgroupV1: the host runs the cgroup v1 hierarchy. Kubelets of
	// Kubernetes ≥ 1.35 refuse it unless told fail-cgroupv1=false.
	CgroupV1 bool `json:"cgroupV1"`
	// NoCapSysResource: CAP_SYS_RESOURCE is missing from the bounding set
	// (LXC, some VMs). runc then cannot give the pod sandbox its negative
	// oom_score_adj and every pod hangs in ContainerCreating unless
	// containerd's CRI plugin sets restrict_oom_score_adj.
	NoCapSysResource bool `json:"noCapSysResource"`
	// KubeletArgs are kubelet arguments the host needs (such as
	// resolv-conf=<file> when /etc/resolv.conf only names loopback
	// resolvers). The user's own kubeletArgs win on the same name.
	KubeletArgs []string `json:"kubeletArgs,omitempty"`
	// HostListeners are the ports ("tcp/22=sshd") other programs serve on the
	// host's addresses: the operator never gives one out as a frontend
	// (with servicelb it would take that program's traffic).
	HostListeners []string `json:"hostListeners,omitempty"`
}

// FactsFrom takes the facts install acts on from a preflight report.
func FactsFrom(pf preflight.Facts) Facts {
	return Facts{
		CgroupV1:         pf.CgroupVersion == 1,
		NoCapSysResource: pf.RestrictOOMScoreAdj,
		KubeletArgs:      slices.Clone(pf.KubeletArgs),
		HostListeners:    hostListeners(pf.HostListeners),
	}
}

// hostListeners renders preflight's listeners as the operator's --reserve
// takes them, "tcp/22=sshd" (pipeline.FormatHostListeners: program names
// cleaned, at most pipeline.MaxHostListeners, the lowest ports).
func hostListeners(ls []preflight.HostListener) []string {
	var hl []pipeline.HostListener
	for _, l := range ls {
		p, err := pipeline.ParseProtocol(l.Protocol)
		if err != nil {
			continue
		}
		hl = append(hl, pipeline.HostListener{Port: pipeline.Port{Protocol: p, Number: int32(l.Port)}, Program: l.Program})
	}
	if s := pipeline.FormatHostListeners(hl); s != "" {
		return strings.Split(s, ",")
	}
	return nil
}

// Host paths install writes, relative to the root directory.
const (
	K3sBinaryPath  = "/usr/local/bin/k3s"
	K3sConfigPath  = "/etc/rancher/k3s/config.yaml"
	KubeconfigPath = "/etc/rancher/k3s/k3s.yaml"
	UnitName       = "k3s.service"
	UnitPath       = "/etc/systemd/system/k3s.service"
	EnvFilePath    = "/etc/systemd/system/k3s.service.env"
	StateDir       = "/var/lib/tpctl"
	// HelmCacheDir holds the Helm client's API discovery cache; it lives in
	// the state directory so uninstall removes it with the rest.
	HelmCacheDir    = StateDir + "/kube-cache"
	StatePath       = "/var/lib/tpctl/state.json"
	LockPath        = "/var/lib/tpctl/install.lock"
	LogPath         = "/var/log/tpctl/install.log"
	containerdDirIn = "agent/etc/containerd" // below the data dir
)

// ImagesDir is where K3s imports air-gap image archives from at start.
func ImagesDir(c Config) string { return filepath.Join(c.DataDir, "agent", "images") }

// ContainerdDir holds K3s's generated containerd config and its template.
func ContainerdDir(c Config) string { return filepath.Join(c.DataDir, containerdDirIn) }

const writtenBy = "# Written by tpctl install; `tpctl uninstall` removes it. Edit the install\n# configuration and re-run `tpctl install` instead of editing this file.\n"

// k3sServerConfig holds exactly the K3s `server` keys tpctl writes.
type k3sServerConfig struct {
	NodeName             string   `json:"node-name"`
	NodeIP               string   `json:"node-ip,omitempty"`
	DataDir              string   `json:"data-dir"`
	ClusterCIDR          string   `json:"cluster-cidr"`
	ServiceCIDR          string   `json:"service-cidr"`
	ClusterDNS           string   `json:"cluster-dns"`
	ServiceNodePortRange string   `json:"service-node-port-range"`
	TLSSAN               []string `json:"tls-san,omitempty"`
	Disable              []string `json:"disable,omitempty"`
	FlannelBackend       string   `json:"flannel-backend,omitempty"`
	DisableNetworkPolicy bool     `json:"disable-network-policy,omitempty"`
	KubeletArg           []string `json:"kubelet-arg,omitempty"`
	WriteKubeconfigMode  string   `json:"write-kubeconfig-mode"`
}

// K3sConfigKeys lists every key RenderK3sConfig can write, for tools (and
// the test launcher) that must accept exactly these.
func K3sConfigKeys() []string {
	return []string{"cluster-cidr", "cluster-dns", "data-dir", "disable", "disable-network-policy", "flannel-backend",
		"kubelet-arg", "node-ip", "node-name", "service-cidr", "service-node-port-range", "tls-san", "write-kubeconfig-mode"}
}

// RenderK3sConfig renders /etc/rancher/k3s/config.yaml.
func RenderK3sConfig(c Config, f Facts) ([]byte, error) {
	k := k3sServerConfig{
		NodeName:             c.NodeName,
		NodeIP:               c.NodeIP,
		DataDir:              c.DataDir,
		ClusterCIDR:          c.ClusterCIDR,
		ServiceCIDR:          c.ServiceCIDR,
		ClusterDNS:           c.ClusterDNS,
		ServiceNodePortRange: c.NodePortRange,
		TLSSAN:               c.TLSSANs,
		Disable:              c.Disable,
		KubeletArg:           slices.Clone(c.KubeletArgs),
		WriteKubeconfigMode:  c.WriteKubeconfigMode,
	}
	if c.CNI == CNICilium {
		k.FlannelBackend = "none"
		k.DisableNetworkPolicy = true
	}
	for _, a := range f.KubeletArgs {
		if name, _, _ := strings.Cut(a, "="); !hasKubeletArg(k.KubeletArg, name) {
			k.KubeletArg = append(k.KubeletArg, a)
		}
	}
	if f.CgroupV1 && !hasKubeletArg(k.KubeletArg, "fail-cgroupv1") {
		k.KubeletArg = append(k.KubeletArg, "fail-cgroupv1=false")
	}
	body, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", K3sConfigPath, err)
	}
	return append([]byte(writtenBy), body...), nil
}

func hasKubeletArg(args []string, name string) bool {
	for _, a := range args {
		if n, _, _ := strings.Cut(a, "="); n == name {
			return true
		}
	}
	return false
}

// NoProxyList is the NO_PROXY K3s gets: the user's entries, then loopback
// and the cluster's own ranges and domains, without repeats, in that order.
func NoProxyList(c Config) []string {
	return preflight.NoProxyList(c.NoProxy, c.ClusterCIDR, c.ServiceCIDR)
}

// RenderEnv renders the unit's environment file (0600: proxy URLs may hold
// credentials). Without a proxy it holds only its header.
func RenderEnv(c Config) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(writtenBy)
	for _, kv := range preflight.ProxyEnvLines(c.HTTPProxy, c.HTTPSProxy, NoProxyList(c)) {
		if strings.ContainsAny(kv[1], " \t\r\n\"'\\") {
			return nil, fmt.Errorf("render %s: %s holds a space, quote or backslash", EnvFilePath, kv[0])
		}
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return b.Bytes(), nil
}

// RedactEnv hides proxy passwords in a rendered environment file.
func RedactEnv(env []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(env), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			nl := strings.HasSuffix(v, "\n")
			v = redactURL(strings.TrimSuffix(v, "\n"))
			line = k + "=" + v
			if nl {
				line += "\n"
			}
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

// UnitOptions are the options of the K3s unit, shaped like K3s's own.
func UnitOptions() []*unit.UnitOption {
	o := systemd.Opt
	return []*unit.UnitOption{
		o("Unit", "Description", "Lightweight Kubernetes (K3s), installed by tpctl"),
		o("Unit", "Documentation", "https://docs.k3s.io"),
		o("Unit", "Wants", "network-online.target"),
		o("Unit", "After", "network-online.target"),
		o("Service", "Type", "notify"),
		o("Service", "EnvironmentFile", "-"+EnvFilePath),
		o("Service", "KillMode", "process"),
		o("Service", "Delegate", "yes"),
		o("Service", "LimitNOFILE", "1048576"),
		o("Service", "LimitNPROC", "infinity"),
		o("Service", "LimitCORE", "infinity"),
		o("Service", "TasksMax", "infinity"),
		o("Service", "TimeoutStartSec", "0"),
		o("Service", "Restart", "always"),
		o("Service", "RestartSec", "5s"),
		o("Service", "ExecStartPre", "-/sbin/modprobe br_netfilter"),
		o("Service", "ExecStartPre", "-/sbin/modprobe overlay"),
		o("Service", "ExecStart", K3sBinaryPath+" server"),
		o("Install", "WantedBy", "multi-user.target"),
	}
}

// RenderUnit renders /etc/systemd/system/k3s.service.
func RenderUnit() ([]byte, error) { return systemd.Render(UnitOptions()) }

// Containerd templates. K3s renders its containerd config from a Go
// template; a config-v3.toml.tmpl (containerd 2 layout) or config.toml.tmpl
// (version 2 layout) next to the generated config.toml replaces its built-in
// one. A template that includes K3s's base ({{ template "base" . }}) can only
// add new TOML tables: the base already declares the CRI runtime table, and
// TOML forbids declaring a table twice, so containerd would refuse the whole
// file. To change a key of that table, tpctl derives the template from the
// config.toml K3s generated on its first start, with the key set.
const (
	ContainerdConfigFile = "config.toml"
	templateV3           = "config-v3.toml.tmpl"
	templateV2           = "config.toml.tmpl"
	templateMarker       = "# tpctl: restrict_oom_score_adj"
)

var (
	tomlVersion = regexp.MustCompile(`(?m)^version\s*=\s*(\d+)\s*$`)
	tomlTable   = regexp.MustCompile(`^\s*\[([^\[\]]+)\]\s*(#.*)?$`)
	oomKey      = regexp.MustCompile(`^\s*restrict_oom_score_adj\s*=`)
)

// criTables names the table that holds restrict_oom_score_adj, by config
// version, in both TOML quotings.
func criTables(version string) []string {
	if version == "3" {
		return []string{`plugins.'io.containerd.cri.v1.runtime'`, `plugins."io.containerd.cri.v1.runtime"`}
	}
	return []string{`plugins."io.containerd.grpc.v1.cri"`, `plugins.'io.containerd.grpc.v1.cri'`}
}

// ContainerdTemplateName returns the template file name K3s reads for a
// generated config of the given version ("2" or "3").
func ContainerdTemplateName(version string) string {
	if version == "3" {
		return templateV3
	}
	return templateV2
}

// templateK3s records, in a derived template, the sha256 of the K3s binary
// whose generated config it was derived from: a frozen copy of one K3s
// version's config goes stale when K3s changes, so a template recording
// another binary is derived again.
var templateK3s = regexp.MustCompile(`(?m)^# tpctl: k3s sha256 ([0-9a-f]{64})\b`)

// TemplateK3sSHA256 returns the K3s binary sha256 a derived template (or a
// config K3s rendered from it) records, or "".
func TemplateK3sSHA256(b []byte) string {
	if m := templateK3s.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// DeriveContainerdTemplate turns K3s's generated containerd config into a
// template that renders the same config with restrict_oom_score_adj = true
// in the CRI runtime table. It returns the template's file name. The
// template records no K3s binary (see DeriveContainerdTemplateFor).
func DeriveContainerdTemplate(generated []byte) (string, []byte, error) {
	return DeriveContainerdTemplateFor(generated, "")
}

// DeriveContainerdTemplateFor is DeriveContainerdTemplate recording
// k3sSHA256, the sha256 of the K3s binary that generated the config.
func DeriveContainerdTemplateFor(generated []byte, k3sSHA256 string) (string, []byte, error) {
	m := tomlVersion.FindSubmatch(generated)
	if m == nil {
		return "", nil, fmt.Errorf("derive containerd template: the generated %s has no version line", ContainerdConfigFile)
	}
	version := string(m[1])
	if version != "2" && version != "3" {
		return "", nil, fmt.Errorf("derive containerd template: containerd config version %s is not supported", version)
	}
	want := criTables(version)
	lines := strings.SplitAfter(string(generated), "\n")
	if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
		lines[n-1] += "\n"
	}
	// Find the CRI runtime table and, inside it, an existing key.
	header, key := -1, -1
	in := false
	for i, line := range lines {
		if t := tomlTable.FindStringSubmatch(line); t != nil {
			in = slices.Contains(want, strings.TrimSpace(t[1]))
			if in && header < 0 {
				header = i
			}
			continue
		}
		if in && key < 0 && oomKey.MatchString(line) {
			key = i
		}
	}
	const set = "  restrict_oom_score_adj = true\n"
	var out strings.Builder
	out.WriteString(templateMarker + " = true, derived by tpctl install from K3s's generated " + ContainerdConfigFile + "\n")
	out.WriteString("# because this host lacks CAP_SYS_RESOURCE. `tpctl uninstall` removes it.\n")
	if k3sSHA256 != "" {
		fmt.Fprintf(&out, "# tpctl: k3s sha256 %s (derived again when the K3s binary changes)\n", k3sSHA256)
	}
	for i, line := range lines {
		if i == key {
			line = set
		}
		out.WriteString(line)
		if i == header && key < 0 {
			out.WriteString(set)
		}
	}
	if header < 0 {
		fmt.Fprintf(&out, "\n[%s]\n%s", want[0], set)
	}
	// The file is a Go template: keep literal braces literal.
	tmpl := strings.ReplaceAll(out.String(), "{{", `{{"{{"}}`)
	return ContainerdTemplateName(version), []byte(tmpl), nil
}

// ContainerdTemplateApplied reports whether a generated config already has
// restrict_oom_score_adj = true in its CRI runtime table.
func ContainerdTemplateApplied(generated []byte) bool {
	m := tomlVersion.FindSubmatch(generated)
	if m == nil {
		return false
	}
	want := criTables(string(m[1]))
	in := false
	for _, line := range strings.Split(string(generated), "\n") {
		if t := tomlTable.FindStringSubmatch(line); t != nil {
			in = slices.Contains(want, strings.TrimSpace(t[1]))
			continue
		}
		if in && oomKey.MatchString(line) {
			_, v, _ := strings.Cut(line, "=")
			return strings.TrimSpace(strings.SplitN(v, "#", 2)[0]) == "true"
		}
	}
	return false
}
