// Package installer turns a bare host into a K3s node run by systemd: it
// validates the install configuration, renders K3s's files, and runs a plan
// of idempotent steps (each knows whether it is already done) under a lock,
// recording progress and every file it creates in a state file so that a run
// resumes after a crash and uninstall removes exactly what install made.
package installer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// CNI choices.
const (
	CNIFlannel = "flannel"
	CNICilium  = "cilium"
)

// Config is the install configuration: a YAML file (--config) overlaid by
// flags. Field names are the YAML keys; errors name them.
type Config struct {
	NodeName      string `json:"nodeName,omitempty"`
	NodeIP        string `json:"nodeIP,omitempty"`
	DataDir       string `json:"dataDir,omitempty"`
	ClusterCIDR   string `json:"clusterCIDR,omitempty"`
	ServiceCIDR   string `json:"serviceCIDR,omitempty"`
	ClusterDNS    string `json:"clusterDNS,omitempty"`
	NodePortRange string `json:"nodePortRange,omitempty"`
	// CNI is flannel (K3s's own, the default) or cilium (K3s runs without
	// flannel and network policy; Cilium is installed separately).
	CNI string `json:"cni,omitempty"`
	// Disable lists packaged K3s components not to deploy.
	Disable    []string `json:"disable,omitempty"`
	TLSSANs    []string `json:"tlsSANs,omitempty"`
	HTTPProxy  string   `json:"httpProxy,omitempty"`
	HTTPSProxy string   `json:"httpsProxy,omitempty"`
	NoProxy    []string `json:"noProxy,omitempty"`
	// KubeletArgs are passed as K3s kubelet-arg entries ("name=value").
	KubeletArgs []string `json:"kubeletArgs,omitempty"`
	// AirGap: the host pulls no images; the air-gap image archive must be
	// staged (from the payload or --k3s-images).
	AirGap bool `json:"airGap,omitempty"`
	// WriteKubeconfigMode is the octal mode of /etc/rancher/k3s/k3s.yaml.
	WriteKubeconfigMode string `json:"writeKubeconfigMode,omitempty"`
	// Registries are K3s's private registry settings, in the shape of its
	// registries.yaml (see registries.go).
	Registries *Registries `json:"registries,omitempty"`
}

// Defaults, as K3s's own where K3s has one.
const (
	DefaultDataDir        = "/var/lib/rancher/k3s"
	DefaultClusterCIDR    = "10.42.0.0/16"
	DefaultServiceCIDR    = "10.43.0.0/16"
	DefaultNodePortRange  = "30000-32767"
	DefaultKubeconfigMode = "0600"
)

// Components returns the packaged components K3s can be told not to deploy
// (its --disable values).
func Components() []string {
	return []string{"coredns", "local-storage", "metrics-server", "runtimes", "servicelb", "traefik"}
}

// ParseConfig decodes a YAML install configuration strictly: unknown and
// duplicate keys are errors. It does not fill defaults or validate.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, nil
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return Config{}, fmt.Errorf("parse install configuration: %w", err)
	}
	// encoding/json matches field names without regard to case; the
	// configuration's keys are exact.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(js, &keys); err != nil {
		return Config{}, fmt.Errorf("parse install configuration: the document must be a mapping of keys to values")
	}
	known := configKeys()
	var unknown []string
	for k := range keys {
		if !slices.Contains(known, k) {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return Config{}, fmt.Errorf("parse install configuration: unknown field %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	if err := checkRegistryKeys(keys["registries"]); err != nil {
		return Config{}, fmt.Errorf("parse install configuration: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("parse install configuration: %w", err)
	}
	// No list has a default: an empty list and an absent one are the same.
	for _, l := range []*[]string{&c.Disable, &c.TLSSANs, &c.NoProxy, &c.KubeletArgs} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if c.Registries.empty() {
		c.Registries = nil
	}
	return c, nil
}

// configKeys lists Config's YAML keys, from its field tags.
func configKeys() []string {
	t := reflect.TypeFor[Config]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys = append(keys, name)
	}
	return keys
}

// Complete fills every field left empty with its default. hostname gives
// the node name when none is set.
func (c Config) Complete(hostname func() (string, error)) (Config, error) {
	if c.NodeName == "" {
		h, err := hostname()
		if err != nil {
			return c, fmt.Errorf("nodeName: not set and the hostname cannot be read: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.DataDir, DefaultDataDir)
	def(&c.ClusterCIDR, DefaultClusterCIDR)
	def(&c.ServiceCIDR, DefaultServiceCIDR)
	def(&c.NodePortRange, DefaultNodePortRange)
	def(&c.CNI, CNIFlannel)
	def(&c.WriteKubeconfigMode, DefaultKubeconfigMode)
	if c.ClusterDNS == "" {
		// K3s's default: the tenth address of the service range.
		if p, err := netip.ParsePrefix(c.ServiceCIDR); err == nil {
			if a, ok := nthAddr(p.Masked(), 10); ok {
				c.ClusterDNS = a.String()
			}
		}
	}
	return c, nil
}

// FieldError is one invalid field.
type FieldError struct {
	Field   string
	Value   string
	Message string
}

func (e FieldError) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Message
	}
	return fmt.Sprintf("%s: %q %s", e.Field, e.Value, e.Message)
}

// ValidationError lists every invalid field of a configuration.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return "invalid install configuration:\n  " + strings.Join(msgs, "\n  ")
}

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	kubeletArg   = regexp.MustCompile(`^[a-z0-9][-a-z0-9]*(=.*)?$`)
)

func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 || !dns1123Label.MatchString(l) {
			return false
		}
	}
	return true
}

// Validate checks the completed configuration as a whole and returns a
// *ValidationError naming every bad field, or nil.
func (c Config) Validate() error {
	var errs []FieldError
	bad := func(field, value, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Value: value, Message: fmt.Sprintf(format, args...)})
	}
	if !isDNSSubdomain(c.NodeName) {
		bad("nodeName", c.NodeName, "is not a valid node name (lower-case letters, digits, '-' and '.', at most 253 characters)")
	}
	if c.NodeIP != "" {
		a, err := netip.ParseAddr(c.NodeIP)
		switch {
		case err != nil || a.Zone() != "":
			bad("nodeIP", c.NodeIP, "is not an IP address")
		case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
			bad("nodeIP", c.NodeIP, "cannot be a node address (unspecified, loopback or multicast): pods reach the API server through it")
		}
	}
	if msg := DataDirProblem(c.DataDir); msg != "" {
		bad("dataDir", c.DataDir, "%s", msg)
	}
	cluster, cerr := parseCIDR(c.ClusterCIDR)
	if cerr != "" {
		bad("clusterCIDR", c.ClusterCIDR, "%s", cerr)
	} else if max := maxPodPrefix(cluster); cluster.Bits() > max {
		bad("clusterCIDR", c.ClusterCIDR, "is too small: each node takes a /%d of it", max)
	}
	service, serr := parseCIDR(c.ServiceCIDR)
	if serr != "" {
		bad("serviceCIDR", c.ServiceCIDR, "%s", serr)
	} else if min := minServicePrefix(service); service.Bits() < min {
		bad("serviceCIDR", c.ServiceCIDR, "is too large: the API server takes at most a /%d", min)
	}
	if cerr == "" && serr == "" && cluster.Overlaps(service) {
		bad("serviceCIDR", c.ServiceCIDR, "overlaps clusterCIDR %s", c.ClusterCIDR)
	}
	if dns, err := netip.ParseAddr(c.ClusterDNS); err != nil || dns.Zone() != "" {
		bad("clusterDNS", c.ClusterDNS, "is not an IP address")
	} else if serr == "" {
		first, _ := nthAddr(service, 1)
		switch {
		case !service.Contains(dns):
			bad("clusterDNS", c.ClusterDNS, "is outside serviceCIDR %s", c.ServiceCIDR)
		case dns == service.Addr():
			bad("clusterDNS", c.ClusterDNS, "is the network address of serviceCIDR")
		case dns == first:
			bad("clusterDNS", c.ClusterDNS, "is the first service address, which the kubernetes Service takes")
		}
	}
	if lo, hi, err := ParsePortRange(c.NodePortRange); err != nil {
		bad("nodePortRange", c.NodePortRange, "%s", err.Error())
	} else if hi-lo < 1 {
		bad("nodePortRange", c.NodePortRange, "must span more than one port")
	}
	if c.CNI != CNIFlannel && c.CNI != CNICilium {
		bad("cni", c.CNI, "must be flannel or cilium")
	}
	seen := map[string]bool{}
	for i, d := range c.Disable {
		f := fmt.Sprintf("disable[%d]", i)
		switch {
		case !slices.Contains(Components(), d):
			bad(f, d, "is not a K3s component (one of: %s)", strings.Join(Components(), ", "))
		case seen[d]:
			bad(f, d, "is listed twice")
		}
		seen[d] = true
	}
	for i, s := range c.TLSSANs {
		name := strings.TrimPrefix(s, "*.")
		if _, err := netip.ParseAddr(s); err != nil && !isDNSSubdomain(name) {
			bad(fmt.Sprintf("tlsSANs[%d]", i), s, "is neither an IP address nor a DNS name")
		}
	}
	for _, p := range []struct{ field, v string }{{"httpProxy", c.HTTPProxy}, {"httpsProxy", c.HTTPSProxy}} {
		if p.v == "" {
			continue
		}
		if msg := checkProxyURL(p.v); msg != "" {
			bad(p.field, redactURL(p.v), "%s", msg)
		}
	}
	for i, n := range c.NoProxy {
		if n == "" || strings.ContainsAny(n, ", \t\n\"'") {
			bad(fmt.Sprintf("noProxy[%d]", i), n, "must be one host, domain, address or CIDR without spaces, commas or quotes")
		}
	}
	for i, a := range c.KubeletArgs {
		if !kubeletArg.MatchString(a) || strings.ContainsAny(a, "\n\r") {
			bad(fmt.Sprintf("kubeletArgs[%d]", i), a, `must be "name=value" (or "name") without leading dashes`)
		}
	}
	if _, err := ParseFileMode(c.WriteKubeconfigMode); err != nil {
		bad("writeKubeconfigMode", c.WriteKubeconfigMode, "%s", err.Error())
	}
	validateRegistries(c.Registries, bad)
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

// systemDirs are directories of the operating system and of the programs
// it shares: never a K3s data dir, whose K3s-owned parts uninstall removes.
var systemDirs = []string{
	"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
	"/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
	"/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/local",
	"/usr/local/bin", "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/sbin", "/usr/share", "/usr/src",
	"/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt",
	"/var/run", "/var/spool", "/var/tmp", "/var/lib/rancher", "/etc/rancher",
}

// DataDirProblem says why dir cannot be K3s's data dir, or "". It must be a
// clean absolute path, not a system directory, not inside the kernel's file
// systems, and apart from every other path tpctl and K3s write (it may not
// hold them, nor lie inside them).
func DataDirProblem(dir string) string {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return "must be a clean absolute path other than /"
	}
	if slices.Contains(systemDirs, dir) {
		return "is a system directory: choose a directory of its own, such as " + DefaultDataDir + " or /srv/k3s"
	}
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if inside(dir, d) {
			return "lies in the kernel's " + d + " file system"
		}
	}
	own := []string{"/etc/rancher/k3s", "/etc/rancher/node", filepath.Dir(UnitPath), StateDir, filepath.Dir(LogPath)}
	own = append(own, runtimePaths(Config{CNI: CNICilium})...)
	for _, p := range append(own, K3sBinaryPath) {
		if inside(p, dir) {
			return "holds " + p + ", which tpctl or K3s manage apart from the data dir"
		}
		if inside(dir, p) {
			return "lies inside " + p + ", which tpctl or K3s manage apart from the data dir"
		}
	}
	return ""
}

func parseCIDR(s string) (netip.Prefix, string) {
	if strings.Contains(s, ",") {
		return netip.Prefix{}, "holds more than one range: dual-stack clusters are not supported by tpctl"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, "is not a CIDR (such as 10.42.0.0/16)"
	}
	if p.Masked() != p {
		return p, fmt.Sprintf("has host bits set (did you mean %s?)", p.Masked())
	}
	return p, ""
}

// maxPodPrefix is the longest cluster CIDR prefix that still holds one
// node's pod range (K3s's node-cidr-mask-size: /24 for IPv4, /64 for IPv6).
func maxPodPrefix(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 24
	}
	return 64
}

// minServicePrefix is the shortest service CIDR prefix kube-apiserver
// accepts (at most 2^20 addresses for IPv4, /108 for IPv6).
func minServicePrefix(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 12
	}
	return 108
}

// nthAddr returns the n-th address after the prefix's network address.
func nthAddr(p netip.Prefix, n int) (netip.Addr, bool) {
	a := p.Addr()
	for range n {
		a = a.Next()
		if !a.IsValid() || !p.Contains(a) {
			return netip.Addr{}, false
		}
	}
	return a, true
}

// ParsePortRange parses "low-high".
func ParsePortRange(s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errors.New(`is not a range "low-high"`)
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New(`is not a range "low-high" of port numbers`)
	}
	if l < 1 || h > 65535 || l > h {
		return 0, 0, errors.New("must lie within 1-65535 with low ≤ high")
	}
	return l, h, nil
}

// ParseFileMode parses an octal permission such as "0600" or "644".
func ParseFileMode(s string) (uint32, error) {
	if s == "" || len(s) > 4 {
		return 0, errors.New(`is not an octal file mode such as "0600"`)
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, errors.New(`is not an octal file mode such as "0600"`)
	}
	if m > 0o777 {
		return 0, errors.New("must be at most 0777 (no setuid, setgid or sticky bits)")
	}
	if m&0o007 != 0 {
		return 0, errors.New("must not give other users access: the kubeconfig holds cluster-admin credentials")
	}
	if m&0o600 != 0o600 {
		return 0, errors.New("must let the owner read and write")
	}
	return uint32(m), nil
}

func checkProxyURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" {
		return "must be an http://, https:// or socks5:// URL"
	}
	if u.Hostname() == "" {
		return "names no proxy host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	if strings.ContainsAny(s, " \t\n\r\"'") {
		return "must not contain spaces or quotes"
	}
	return ""
}

// redactURL hides a password in a URL ("http://user:xxxxx@proxy:3128").
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// Redacted returns a copy fit for printing: proxy passwords and registry
// credentials hidden.
func (c Config) Redacted() Config {
	c.HTTPProxy = redactURL(c.HTTPProxy)
	c.HTTPSProxy = redactURL(c.HTTPSProxy)
	c.Registries = c.Registries.redacted()
	return c
}

// YAML encodes the configuration as a --config file.
func (c Config) YAML() ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode install configuration: %w", err)
	}
	return b, nil
}

// Disabled reports whether a packaged component is disabled.
func (c Config) Disabled(component string) bool { return slices.Contains(c.Disable, component) }
