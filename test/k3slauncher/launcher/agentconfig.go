package launcher

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// AgentKeys are the `k3s agent` keys (config.yaml keys and flag names,
// K3s: pkg/cli/cmds/agent.go) this launcher accepts: the ones a joining
// node is configured with, and no other.
func AgentKeys() []string {
	return []string{"data-dir", "kubelet-arg", "node-ip", "node-label", "node-name", "node-taint", "server", "token", "token-file"}
}

func agentSpec() keySpec {
	return keySpec{cmd: "agent", known: AgentKeys(), lists: []string{"kubelet-arg", "node-label", "node-taint"}}
}

// agentEnv are the environment variables K3s's agent flags read when the
// flag is not given (urfave/cli EnvVar: K3S_URL, K3S_TOKEN, …; the K3s
// install script writes them into k3s-agent.service.env).
func agentEnv() map[string]string {
	return map[string]string{"server": "K3S_URL", "token": "K3S_TOKEN", "token-file": "K3S_TOKEN_FILE", "node-name": "K3S_NODE_NAME"}
}

// AgentOptions is a validated `agent` configuration.
type AgentOptions struct {
	Server      *url.URL
	Token       Token
	NodeName    string
	NodeIP      string
	NodeLabels  []string
	NodeTaints  []string
	DataDir     string
	KubeletArgs []string
}

// ParseAgentArgs parses the arguments after `agent` (flags only; any key
// not in AgentKeys is an error naming it).
func ParseAgentArgs(args []string) (Args, error) { return parseArgs(agentSpec(), args) }

// LoadAgent reads the config file and drop-ins as in server mode, applies
// the flags, then the environment for keys still unset, and validates.
func LoadAgent(a Args, readFile func(string) ([]byte, error), readDir func(string) ([]os.DirEntry, error), getenv func(string) string) (AgentOptions, error) {
	vals, err := loadValues(agentSpec(), a, readFile, readDir)
	if err != nil {
		return AgentOptions{}, err
	}
	for k, env := range agentEnv() {
		if len(vals[k]) == 0 {
			if v := getenv(env); v != "" {
				vals[k] = []string{v}
			}
		}
	}
	return BuildAgent(vals, readFile)
}

// BuildAgent validates agent key values, with K3s's defaults.
func BuildAgent(vals map[string][]string, readFile func(string) ([]byte, error)) (AgentOptions, error) {
	get := func(k, def string) string {
		if v := vals[k]; len(v) > 0 && v[len(v)-1] != "" {
			return v[len(v)-1]
		}
		return def
	}
	list := func(k string) []string {
		var out []string
		for _, v := range vals[k] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	o := AgentOptions{
		NodeName:    get("node-name", ""),
		NodeIP:      get("node-ip", ""),
		DataDir:     get("data-dir", "/var/lib/rancher/k3s"),
		NodeLabels:  list("node-label"),
		NodeTaints:  list("node-taint"),
		KubeletArgs: list("kubelet-arg"),
	}
	server := get("server", "")
	if server == "" {
		bad("server: --server (K3S_URL) is required to run an agent")
	} else if u, err := url.Parse(server); err != nil || u.Scheme != "https" || u.Host == "" {
		// K3s: "only https:// URLs are supported".
		bad("server: only https:// URLs are supported, invalid: %q", server)
	} else {
		u.Path = strings.TrimRight(u.Path, "/")
		if u.Port() == "" {
			u.Host += ":443"
		}
		o.Server = u
	}
	tok := get("token", "")
	if tf := get("token-file", ""); tok == "" && tf != "" {
		b, err := readFile(tf)
		if err != nil {
			bad("token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		bad("token: --token, --token-file (K3S_TOKEN) is required to run an agent")
	} else if t, err := ParseToken(tok); err != nil {
		bad("token: %w", err)
	} else {
		o.Token = t
	}
	if o.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			bad("node-name: not set and the host name cannot be read: %w", err)
		}
		o.NodeName = strings.ToLower(h)
	}
	if o.NodeIP != "" {
		if a, err := netip.ParseAddr(o.NodeIP); err != nil || !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
			bad("node-ip: %q is not a usable IPv4 node address", o.NodeIP)
		}
	}
	if !filepath.IsAbs(o.DataDir) || filepath.Clean(o.DataDir) != o.DataDir || o.DataDir == "/" {
		bad("data-dir: %q must be a clean absolute path other than /", o.DataDir)
	}
	for _, l := range o.NodeLabels {
		if k, _, _ := strings.Cut(l, "="); k == "" || strings.ContainsAny(l, " \n") {
			bad("node-label: %q is not key=value", l)
		}
	}
	for _, tt := range o.NodeTaints {
		if k, _, _ := strings.Cut(tt, "="); k == "" || !strings.Contains(tt, ":") || strings.ContainsAny(tt, " \n") {
			bad("node-taint: %q is not key[=value]:Effect", tt)
		}
	}
	for _, a := range o.KubeletArgs {
		name, _, _ := strings.Cut(a, "=")
		if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(a, "\n\r") {
			bad("kubelet-arg: %q is not name=value", a)
		}
	}
	if len(errs) > 0 {
		return AgentOptions{}, errors.Join(errs...)
	}
	return o, nil
}
