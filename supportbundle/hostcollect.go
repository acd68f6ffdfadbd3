package supportbundle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tpctl/tpctl/installer"
)

// HostOptions configure the host-side collectors.
type HostOptions struct {
	Host Host
	// DataDir is K3s's data directory (from the install state, or K3s's
	// default).
	DataDir string
	// K3sBinary runs `k3s ctr` and `k3s crictl` (skipped when absent).
	K3sBinary string
	Since     time.Duration
	Now       func() time.Time
	Limits    Limits
	// JournalLines bounds `journalctl -n`.
	JournalLines int
	// Preflight and Status return the JSON of `tpctl preflight -o json`
	// and `tpctl status -o json`.
	Preflight func(ctx context.Context) ([]byte, error)
	Status    func(ctx context.Context) ([]byte, error)
}

// tokenFiles are K3s's secret files: never copied; their values are hidden
// wherever else they appear.
func tokenFiles(dataDir string) []string {
	return []string{
		path.Join(dataDir, "server/token"), path.Join(dataDir, "server/node-token"),
		path.Join(dataDir, "server/agent-token"), path.Join(dataDir, "server/cred/passwd"),
		path.Join(dataDir, "agent/client-kubelet.key"),
		"/etc/rancher/node/password",
	}
}

// SecretLiterals reads the K3s token and password files so the redactor
// can hide their values anywhere (a token echoed into a log, say). The
// files themselves never enter the bundle.
func SecretLiterals(h Host, dataDir string) []string {
	var out []string
	for _, p := range tokenFiles(dataDir) {
		b, _, err := h.ReadFile(p, 64<<10, false)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "-----") {
				continue
			}
			out = append(out, line)
			// K10<hash>::<user>:<password>, and passwd's "password,user,…".
			if i := strings.LastIndexByte(line, ':'); i >= 0 && strings.Contains(line, "::") {
				out = append(out, line[i+1:])
			}
			if i := strings.IndexByte(line, ','); i > 0 {
				out = append(out, line[:i])
			}
		}
	}
	return out
}

// HostCollectors returns the host-side collectors, in bundle order.
func HostCollectors(o HostOptions) []Collector {
	h, lim := o.Host, o.Limits
	file := func(bundlePath, hostPath string, tail bool) File {
		b, trunc, err := h.ReadFile(hostPath, lim.MaxFileBytes, tail)
		return File{Path: bundlePath, Source: hostPath, Data: b, Truncated: trunc, Err: err, Tail: tail}
	}
	jsonOf := func(name string, fn func(context.Context) ([]byte, error)) func(ctx context.Context) ([]File, error) {
		return func(ctx context.Context) ([]File, error) {
			if fn == nil {
				return nil, fmt.Errorf("%s is not available", name)
			}
			b, err := fn(ctx)
			if err != nil && len(b) == 0 {
				return nil, err
			}
			f := File{Path: name + ".json", Err: err}
			if red, ok := NewRedactor().Structured(b, true); ok {
				f.Data = red
			} else {
				f.Err = fmt.Errorf("not JSON; not copied")
			}
			return []File{f}, nil
		}
	}
	runCtx := func(ctx context.Context, bundlePath string, argv ...string) File {
		out, trunc, err := h.Run(ctx, lim.MaxFileBytes, argv...)
		return File{Path: bundlePath, Source: strings.Join(argv, " "), Data: out, Truncated: trunc, Err: err}
	}
	since := o.Now().Add(-o.Since)
	k3s := o.K3sBinary
	return []Collector{
		{Name: "preflight", Part: PartHost, Source: "tpctl preflight -o json", Collect: jsonOf("preflight", o.Preflight)},
		{Name: "status", Part: PartHost, Source: "tpctl status -o json", Collect: jsonOf("status", o.Status)},
		{Name: "install-state", Part: PartHost, Source: installer.StatePath, Collect: func(context.Context) ([]File, error) {
			return []File{structured(file("tpctl/state.json", installer.StatePath, false), true)}, nil
		}},
		{Name: "install-log", Part: PartHost, Source: installer.LogPath, Collect: func(context.Context) ([]File, error) {
			return []File{file("tpctl/install.log", installer.LogPath, true)}, nil
		}},
		{Name: "k3s-unit", Part: PartHost, Source: installer.UnitPath + ", its drop-ins and environment file", Collect: func(context.Context) ([]File, error) {
			fs := []File{file("k3s/k3s.service", installer.UnitPath, false)}
			drops, _ := h.Glob(installer.UnitPath + ".d/*.conf")
			for _, d := range drops {
				fs = append(fs, file("k3s/k3s.service.d/"+path.Base(d), d, false))
			}
			env := file("k3s/k3s.service.env", installer.EnvFilePath, false)
			if env.Data != nil {
				env.Data = installer.RedactEnv(env.Data)
			}
			return append(fs, env), nil
		}},
		{Name: "k3s-journal", Part: PartHost, Source: "journalctl -u k3s.service --since", Collect: func(ctx context.Context) ([]File, error) {
			f := runCtx(ctx, "k3s/journal.log", "journalctl", "--no-pager", "--output=short-iso", "--unit=k3s.service",
				"--since=@"+strconv.FormatInt(since.Unix(), 10), "--lines="+strconv.Itoa(o.JournalLines))
			f.Tail = true
			return []File{f}, nil
		}},
		{Name: "k3s-config", Part: PartHost, Source: "/etc/rancher/k3s/config.yaml, config.yaml.d, registries.yaml (redacted)", Collect: func(context.Context) ([]File, error) {
			fs := []File{structured(file("k3s/config.yaml", installer.K3sConfigPath, false), false)}
			drops, _ := h.Glob("/etc/rancher/k3s/config.yaml.d/*.yaml")
			for _, d := range drops {
				fs = append(fs, structured(file("k3s/config.yaml.d/"+path.Base(d), d, false), false))
			}
			reg := structured(file("k3s/registries.yaml", "/etc/rancher/k3s/registries.yaml", false), false)
			if reg.Err != nil && strings.Contains(reg.Err.Error(), "no such file") {
				reg.Err, reg.Data = nil, []byte("# no /etc/rancher/k3s/registries.yaml on this host\n")
			}
			return append(fs, reg), nil
		}},
		{Name: "containerd", Part: PartHost, Source: k3s + " crictl / ctr, containerd config", Collect: func(ctx context.Context) ([]File, error) {
			cfg := file("containerd/config.toml", path.Join(o.DataDir, "agent/etc/containerd/config.toml"), false)
			if !h.Exists(k3s) {
				return []File{cfg, {Path: "containerd/crictl-ps.txt", Source: k3s + " crictl", Err: fmt.Errorf("no K3s binary at %s", k3s)}}, nil
			}
			return []File{cfg,
				runCtx(ctx, "containerd/ctr-version.txt", k3s, "ctr", "version"),
				runCtx(ctx, "containerd/crictl-pods.txt", k3s, "crictl", "pods"),
				runCtx(ctx, "containerd/crictl-ps.txt", k3s, "crictl", "ps", "-a"),
				runCtx(ctx, "containerd/crictl-images.txt", k3s, "crictl", "images"),
				runCtx(ctx, "containerd/ctr-images.txt", k3s, "ctr", "-n", "k8s.io", "images", "ls"),
			}, nil
		}},
		{Name: "network", Part: PartHost, Source: "ip link/addr/route/rule, /proc/net", Collect: func(ctx context.Context) ([]File, error) {
			fs := []File{
				runCtx(ctx, "network/ip-link.txt", "ip", "-d", "-s", "link", "show"),
				runCtx(ctx, "network/ip-addr.txt", "ip", "addr", "show"),
				runCtx(ctx, "network/ip-route.txt", "ip", "route", "show", "table", "all"),
				runCtx(ctx, "network/ip6-route.txt", "ip", "-6", "route", "show", "table", "all"),
				runCtx(ctx, "network/ip-rule.txt", "ip", "rule", "show"),
			}
			for _, p := range []string{"/proc/net/dev", "/proc/net/route", "/proc/net/if_inet6", "/etc/resolv.conf", "/etc/hosts"} {
				fs = append(fs, file("network/"+strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"), p, false))
			}
			return fs, nil
		}},
		{Name: "iptables", Part: PartHost, Source: "iptables-save, ip6tables-save (chain names and rule counts)", Collect: func(ctx context.Context) ([]File, error) {
			var fs []File
			for _, bin := range []string{"iptables-save", "ip6tables-save"} {
				argv := []string{findTool(h, bin, o.DataDir)}
				out, _, err := h.Run(ctx, 64<<20, argv...)
				f := File{Path: "network/" + strings.TrimSuffix(bin, "-save") + "-chains.json", Source: strings.Join(argv, " ") + " (summarised)", Err: err}
				if len(out) > 0 || err == nil {
					sum := SummariseIptables(out)
					f.Data, _ = json.MarshalIndent(sum, "", "  ")
					if err != nil && len(sum) > 0 {
						f.Err = nil
					}
				}
				fs = append(fs, f)
			}
			return fs, nil
		}},
		{Name: "disk", Part: PartHost, Source: "statfs of " + o.DataDir + ", /, /var", Collect: func(context.Context) ([]File, error) {
			var us []DiskUsage
			for _, p := range []string{o.DataDir, "/", "/var"} {
				u, err := h.Statfs(p)
				if err != nil {
					u.Error = err.Error()
				}
				us = append(us, u)
			}
			b, err := json.MarshalIndent(us, "", "  ")
			return []File{{Path: "host/disk.json", Data: b, Err: err}}, nil
		}},
		{Name: "memory", Part: PartHost, Source: "/proc/meminfo", Collect: func(context.Context) ([]File, error) {
			return []File{file("host/meminfo", "/proc/meminfo", false)}, nil
		}},
		{Name: "os", Part: PartHost, Source: "/etc/os-release, /proc/version, /proc/cmdline, /proc/uptime", Collect: func(context.Context) ([]File, error) {
			return []File{file("host/os-release", "/etc/os-release", false), file("host/proc-version", "/proc/version", false),
				file("host/proc-cmdline", "/proc/cmdline", false), file("host/uptime", "/proc/uptime", false)}, nil
		}},
	}
}

// structured redacts a YAML/JSON file by its keys; a file that does not
// parse is not copied (its secrets could not be told apart).
func structured(f File, asJSON bool) File {
	if f.Data == nil {
		return f
	}
	if f.Truncated {
		f.Data, f.Err = nil, fmt.Errorf("over the size cap; not copied (a cut document cannot be redacted by its keys)")
		return f
	}
	out, ok := NewRedactor().Structured(f.Data, asJSON)
	if !ok {
		f.Data, f.Err = nil, fmt.Errorf("does not parse as YAML/JSON; not copied (its secrets could not be told apart)")
		return f
	}
	f.Data = out
	return f
}

// findTool prefers the host's tool, then the one K3s unpacks in its data
// directory.
func findTool(h Host, name, dataDir string) string {
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", path.Join(dataDir, "data/current/bin/aux"), path.Join(dataDir, "data/current/bin")} {
		if p := path.Join(dir, name); h.Exists(p) {
			return p
		}
	}
	return name
}

// ChainSummary is one iptables chain: its policy (built-in chains) and
// how many rules it holds.
type ChainSummary struct {
	Policy string `json:"policy,omitempty"`
	Rules  int    `json:"rules"`
}

// SummariseIptables reduces iptables-save output to table → chain →
// policy and rule count: enough to see who installed what, without the
// rules' addresses and comments.
func SummariseIptables(out []byte) map[string]map[string]ChainSummary {
	res := map[string]map[string]ChainSummary{}
	var table map[string]ChainSummary
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = map[string]ChainSummary{}
			res[strings.TrimPrefix(line, "*")] = table
		case table == nil:
		case strings.HasPrefix(line, ":"):
			fields := strings.Fields(strings.TrimPrefix(line, ":"))
			if len(fields) > 0 {
				cs := table[fields[0]]
				if len(fields) > 1 && fields[1] != "-" {
					cs.Policy = fields[1]
				}
				table[fields[0]] = cs
			}
		case strings.HasPrefix(line, "-A "):
			fields := strings.Fields(line)
			if len(fields) > 1 {
				cs := table[fields[1]]
				cs.Rules++
				table[fields[1]] = cs
			}
		}
	}
	return res
}
