package launcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Mirrors K3s: pkg/configfilearg/parser.go and defaultparser.go
// (config.yaml, then config.yaml.d/*.yaml|yml in name order, key+ appends).

// DefaultConfigFile is where K3s reads its server configuration.
const DefaultConfigFile = "/etc/rancher/k3s/config.yaml"

// KubeconfigPath is where K3s writes the admin kubeconfig.
const KubeconfigPath = "/etc/rancher/k3s/k3s.yaml"

// Config is the K3s `server` configuration this launcher understands:
// exactly the keys tpctl writes (Keys, kept equal to
// installer.K3sConfigKeys by a test), from the config file, its drop-ins and
// the command line, merged as K3s merges them.
type Config struct {
	NodeName             string
	NodeIP               string
	DataDir              string
	ClusterCIDR          netip.Prefix
	ServiceCIDR          netip.Prefix
	ClusterDNS           netip.Addr
	ServiceNodePortRange string
	TLSSANs              []string
	Disable              []string
	FlannelBackend       string
	DisableNetworkPolicy bool
	KubeletArgs          []string
	WriteKubeconfigMode  os.FileMode
	// ClusterInit (cluster-init) makes the datastore embedded etcd: a new
	// cluster, or the SQLite datastore of earlier starts migrated into
	// one (etcd.go).
	ClusterInit bool
	// JoinURL (server) and JoinToken (token, token-file) join the
	// embedded-etcd cluster of that server as another server.
	JoinURL   *url.URL
	JoinToken Token
}

// Keys are the K3s server keys (config.yaml keys and flag names) this
// launcher accepts: those tpctl writes, and no other.
func Keys() []string {
	return []string{"cluster-cidr", "cluster-dns", "data-dir", "disable", "disable-network-policy", "flannel-backend",
		"kubelet-arg", "node-ip", "node-name", "service-cidr", "service-node-port-range", "tls-san", "write-kubeconfig-mode"}
}

// listKeys are the keys that take several values (a YAML list, or repeated
// flags; K3s also splits a single string on commas for these).
func listKeys() []string { return []string{"disable", "kubelet-arg", "tls-san"} }

// boolKeys are flags without a value.
func boolKeys() []string { return []string{"disable-network-policy", "cluster-init"} }

// ServerJoinKeys are the K3s server keys of a high-availability server
// (kept equal to installer.ServerJoinConfigKeys by a test): cluster-init on
// the first server, server and token (or token-file) on the others.
func ServerJoinKeys() []string { return []string{"cluster-init", "server", "token", "token-file"} }

// components are K3s's packaged components (--disable values).
func components() []string {
	return []string{"coredns", "local-storage", "metrics-server", "runtimes", "servicelb", "traefik"}
}

// keySpec is the keys one command accepts: `server` (Keys) or `agent`
// (AgentKeys).
type keySpec struct {
	cmd                 string
	known, lists, bools []string
}

func serverSpec() keySpec {
	return keySpec{cmd: "server", known: append(Keys(), ServerJoinKeys()...), lists: listKeys(), bools: boolKeys()}
}

// Args is a parsed `server` command line: the config file to read and the
// keys given as flags.
type Args struct {
	ConfigFile string
	Values     map[string][]string
}

// ParseArgs parses the arguments after `server`. Every flag must be one of
// installer.K3sConfigKeys() or --config/-c; anything else is an error naming
// it.
func ParseArgs(args []string) (Args, error) { return parseArgs(serverSpec(), args) }

func parseArgs(spec keySpec, args []string) (Args, error) {
	a := Args{ConfigFile: DefaultConfigFile, Values: map[string][]string{}}
	known := spec.known
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
			return Args{}, fmt.Errorf("%s: unexpected argument %q (this launcher takes flags only)", spec.cmd, arg)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if name == "config" || name == "c" {
			if !hasValue {
				if i+1 >= len(args) {
					return Args{}, fmt.Errorf("%s: flag --%s needs a value", spec.cmd, name)
				}
				i++
				value = args[i]
			}
			a.ConfigFile = value
			continue
		}
		if !slices.Contains(known, name) {
			return Args{}, fmt.Errorf("%s: flag --%s is not one tpctl writes (this launcher accepts only: %s)", spec.cmd, name, strings.Join(known, ", "))
		}
		if slices.Contains(spec.bools, name) {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return Args{}, fmt.Errorf("%s: flag --%s needs a value", spec.cmd, name)
			}
			i++
			value = args[i]
		}
		if slices.Contains(spec.lists, name) {
			a.Values[name] = append(a.Values[name], value)
		} else {
			a.Values[name] = []string{value}
		}
	}
	return a, nil
}

// ParseConfigFile decodes one K3s config file: a mapping of known keys to
// a string, number, bool or (for list keys) a list of strings. Unknown keys
// are errors naming them. A key may end in "+" (K3s's append form, for
// drop-ins); ParseConfigFile merges it into the plain key as Load would.
func ParseConfigFile(raw []byte) (map[string][]string, error) {
	doc, err := parseConfigDoc(serverSpec(), raw)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	merge(serverSpec(), out, doc)
	return out, nil
}

// entry is one key of one config file.
type entry struct {
	key    string
	values []string
	append bool // written as key+
}

// parseConfigDoc decodes one config file into its entries, plain keys
// before their "+" forms.
func parseConfigDoc(spec keySpec, raw []byte) ([]entry, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, errors.New("parse config: the document must be a mapping of keys to values")
	}
	known := spec.known
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys) // "disable" sorts before "disable+"
	var out []entry
	for _, raw := range keys {
		k, add := strings.CutSuffix(raw, "+")
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("config key %q is not one tpctl writes (this launcher accepts only: %s)", raw, strings.Join(known, ", "))
		}
		e := entry{key: k, append: add}
		var list []any
		var one any
		if err := json.Unmarshal(doc[raw], &list); err == nil {
			if !slices.Contains(spec.lists, k) {
				return nil, fmt.Errorf("config key %q takes one value, not a list", raw)
			}
			for _, v := range list {
				s, err := scalar(v)
				if err != nil {
					return nil, fmt.Errorf("config key %q: %w", raw, err)
				}
				e.values = append(e.values, s)
			}
			out = append(out, e)
			continue
		}
		if err := json.Unmarshal(doc[raw], &one); err != nil {
			return nil, fmt.Errorf("config key %q: %w", raw, err)
		}
		s, err := scalar(one)
		if err != nil {
			return nil, fmt.Errorf("config key %q: %w", raw, err)
		}
		e.values = []string{s}
		out = append(out, e)
	}
	return out, nil
}

// merge applies one file's entries over the values so far, as K3s's
// config reader does: a plain key replaces, "key+" appends to a list key
// (for a single-value key the last value wins either way).
func merge(spec keySpec, vals map[string][]string, doc []entry) {
	for _, e := range doc {
		if e.append && slices.Contains(spec.lists, e.key) {
			vals[e.key] = append(slices.Clone(vals[e.key]), e.values...)
			continue
		}
		vals[e.key] = slices.Clone(e.values)
	}
}

// DropInFiles are the drop-ins K3s reads after a config file: the
// *.yaml and *.yml files (any case) of <file>.d, in name order.
func DropInFiles(configFile string, readDir func(string) ([]os.DirEntry, error)) ([]string, error) {
	dir := configFile + ".d"
	ents, err := readDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("value %v is not a string, number or bool", v)
	}
}

// Load reads the config file named by a and its drop-ins (<file>.d/*.yaml,
// in name order; a missing file is fine, as in K3s), then applies the
// flags as K3s does: a flag replaces a single value and adds to a list
// (the file's values come first on K3s's command line), and validates the
// result.
func Load(a Args, readFile func(string) ([]byte, error), readDir func(string) ([]os.DirEntry, error)) (Config, error) {
	vals, err := loadValues(serverSpec(), a, readFile, readDir)
	if err != nil {
		return Config{}, err
	}
	// token-file is read here, so that Build stays free of I/O.
	if tf := vals["token-file"]; len(tf) > 0 && tf[len(tf)-1] != "" && (len(vals["token"]) == 0 || vals["token"][len(vals["token"])-1] == "") {
		b, err := readFile(tf[len(tf)-1])
		if err != nil {
			return Config{}, fmt.Errorf("token-file: %w", err)
		}
		vals["token"] = []string{strings.TrimSpace(string(b))}
	}
	return Build(vals)
}

// loadValues reads the config file and drop-ins and applies the flags.
func loadValues(spec keySpec, a Args, readFile func(string) ([]byte, error), readDir func(string) ([]os.DirEntry, error)) (map[string][]string, error) {
	dropIns, err := DropInFiles(a.ConfigFile, readDir)
	if err != nil {
		return nil, err
	}
	vals := map[string][]string{}
	for _, f := range append([]string{a.ConfigFile}, dropIns...) {
		raw, err := readFile(f)
		if errors.Is(err, os.ErrNotExist) && f == a.ConfigFile {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		doc, err := parseConfigDoc(spec, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		merge(spec, vals, doc)
	}
	for k, v := range a.Values {
		if slices.Contains(spec.lists, k) {
			vals[k] = append(vals[k], v...)
		} else {
			vals[k] = v
		}
	}
	return vals, nil
}

// Build turns key values into a validated Config with K3s's defaults.
func Build(vals map[string][]string) (Config, error) {
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
	c := Config{
		NodeName:             get("node-name", ""),
		NodeIP:               get("node-ip", ""),
		DataDir:              get("data-dir", "/var/lib/rancher/k3s"),
		ServiceNodePortRange: get("service-node-port-range", "30000-32767"),
		TLSSANs:              list("tls-san"),
		Disable:              list("disable"),
		FlannelBackend:       get("flannel-backend", "vxlan"),
		KubeletArgs:          list("kubelet-arg"),
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			bad("node-name: not set and the host name cannot be read: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if c.NodeIP != "" {
		if a, err := netip.ParseAddr(c.NodeIP); err != nil || !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
			bad("node-ip: %q is not a usable IPv4 node address", c.NodeIP)
		}
	}
	if !filepath.IsAbs(c.DataDir) || filepath.Clean(c.DataDir) != c.DataDir || c.DataDir == "/" {
		bad("data-dir: %q must be a clean absolute path other than /", c.DataDir)
	}
	var err error
	if c.ClusterCIDR, err = v4Prefix(get("cluster-cidr", "10.42.0.0/16"), 24); err != nil {
		bad("cluster-cidr: %w", err)
	}
	if c.ServiceCIDR, err = v4Prefix(get("service-cidr", "10.43.0.0/16"), 30); err != nil {
		bad("service-cidr: %w", err)
	}
	if s := get("cluster-dns", ""); s != "" {
		if c.ClusterDNS, err = netip.ParseAddr(s); err != nil {
			bad("cluster-dns: %q is not an IP address", s)
		}
	} else if c.ServiceCIDR.IsValid() {
		c.ClusterDNS = nth(c.ServiceCIDR, 10)
	}
	if c.ServiceCIDR.IsValid() && c.ClusterDNS.IsValid() && !c.ServiceCIDR.Contains(c.ClusterDNS) {
		bad("cluster-dns: %s is outside service-cidr %s", c.ClusterDNS, c.ServiceCIDR)
	}
	if !portRange(c.ServiceNodePortRange) {
		bad("service-node-port-range: %q is not a range low-high within 1-65535", c.ServiceNodePortRange)
	}
	for _, d := range c.Disable {
		if !slices.Contains(components(), d) {
			bad("disable: %q is not a K3s component (one of: %s)", d, strings.Join(components(), ", "))
		}
	}
	if c.FlannelBackend != "vxlan" && c.FlannelBackend != "none" {
		bad("flannel-backend: %q is not supported by this launcher (vxlan or none)", c.FlannelBackend)
	}
	switch v := get("disable-network-policy", "false"); v {
	case "true", "false":
		c.DisableNetworkPolicy = v == "true"
	default:
		bad("disable-network-policy: %q is not true or false", v)
	}
	for _, a := range c.KubeletArgs {
		name, _, _ := strings.Cut(a, "=")
		if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(a, "\n\r") {
			bad("kubelet-arg: %q is not name=value", a)
		}
	}
	for _, s := range c.TLSSANs {
		if strings.ContainsAny(s, " ,\n") || s == "" {
			bad("tls-san: %q is not a name or address", s)
		}
	}
	if m, err := strconv.ParseUint(get("write-kubeconfig-mode", "0600"), 8, 32); err != nil || m > 0o777 {
		bad("write-kubeconfig-mode: %q is not an octal file mode", get("write-kubeconfig-mode", ""))
	} else {
		c.WriteKubeconfigMode = os.FileMode(m)
	}
	switch v := get("cluster-init", "false"); v {
	case "true", "false":
		c.ClusterInit = v == "true"
	default:
		bad("cluster-init: %q is not true or false", v)
	}
	buildJoin(&c, get, bad)
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// buildJoin reads server, token and token-file as K3s's server does: a
// server URL needs a token (the server token, "K10<hash>::server:<pass>",
// or its passphrase alone); a token without a server URL is refused (this
// launcher takes the token of a new cluster from server/token only), and
// so is cluster-init together with server.
func buildJoin(c *Config, get func(k, def string) string, bad func(format string, args ...any)) {
	server, tok := get("server", ""), get("token", "")
	if tok == "" && get("token-file", "") != "" {
		bad("token-file: read by Load, not Build")
		return
	}
	switch {
	case server == "" && tok != "":
		bad("token: this launcher only takes a token to join a server (server is not set)")
		return
	case server == "":
		return
	case c.ClusterInit:
		bad("cluster-init: a server joining %s cannot initialise a cluster", server)
	case tok == "":
		bad("token: --token or --token-file is required to join a server")
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		bad("server: only https:// URLs are supported, invalid: %q", server)
		return
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if u.Port() == "" {
		u.Host += ":443"
	}
	c.JoinURL = u
	if tok == "" {
		return
	}
	t, err := ParseToken(tok)
	switch {
	case err != nil:
		bad("token: %w", err)
	case t.Bearer() != "":
		bad("token: a bootstrap token joins agents only; a server joins with the server token")
	default:
		if t.Username == "" {
			t.Username = "server"
		}
		if t.Username != "server" {
			bad("token: the %q token joins agents only; a server joins with the server token", t.Username)
		}
		c.JoinToken = t
	}
}

func portRange(s string) bool {
	lo, hi, ok := strings.Cut(s, "-")
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	return ok && err1 == nil && err2 == nil && l >= 1 && h <= 65535 && l < h
}

func v4Prefix(s string, longest int) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 network such as 10.42.0.0/16 (this launcher is single-stack IPv4)", s)
	}
	if p.Bits() > longest {
		return netip.Prefix{}, fmt.Errorf("%q is too small (at most /%d)", s, longest)
	}
	return p, nil
}

// nth is the n-th address after the prefix's network address.
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// PodCIDR is the node's pod range: the first /24 of the cluster CIDR, as
// the controller manager allocates it to the first node.
func (c Config) PodCIDR() netip.Prefix {
	return netip.PrefixFrom(c.ClusterCIDR.Addr(), 24)
}

// KubernetesServiceIP is the first service address (the kubernetes Service).
func (c Config) KubernetesServiceIP() netip.Addr { return nth(c.ServiceCIDR, 1) }

// Disabled reports whether a packaged component is disabled.
func (c Config) Disabled(component string) bool { return slices.Contains(c.Disable, component) }
