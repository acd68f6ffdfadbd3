package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func privilegedUserCheck() Check {
	return checkFunc{name: "IsPrivilegedUser", run: func(_ context.Context, h *Host, r Result) Result {
		if uid := h.UID(); uid != 0 {
			return r.fail(fmt.Sprintf("running as user id %d: installing K3s needs root", uid),
				"run tpctl as root (sudo tpctl …)")
		}
		return r.pass("running as root")
	}}
}

func osCheck() Check {
	return checkFunc{name: "OS", run: func(_ context.Context, h *Host, r Result) Result {
		if h.GOOS != "linux" {
			return r.fail(fmt.Sprintf("operating system %s: K3s runs on Linux only", h.GOOS), "run tpctl on a Linux host")
		}
		return r.pass("linux")
	}}
}

func archCheck() Check {
	return checkFunc{name: "Arch", run: func(_ context.Context, h *Host, r Result) Result {
		switch h.GOARCH {
		case "amd64", "arm64":
			return r.pass(h.GOARCH)
		}
		return r.fail(fmt.Sprintf("architecture %s: tpctl ships K3s for amd64 and arm64 only", h.GOARCH),
			"use an amd64 or arm64 host")
	}}
}

// initSystem returns the name of PID 1 (/proc/1/comm).
func (h *Host) initSystem() (string, error) { return h.readTrim("/proc/1/comm") }

func systemdCheck() Check {
	return checkFunc{name: "Systemd", run: func(_ context.Context, h *Host, r Result) Result {
		comm, err := h.initSystem()
		if err != nil {
			return r.warn(fmt.Sprintf("cannot tell the init system: %s", err),
				"make sure systemd is PID 1 (ps -p 1 -o comm=)")
		}
		if comm != "systemd" {
			return r.fail(fmt.Sprintf("PID 1 is %q, not systemd: tpctl installs K3s as a systemd service", comm),
				"run tpctl on a host booted with systemd (in a container: a systemd-based image started with its init, e.g. systemd-nspawn -b)")
		}
		return r.pass("systemd is PID 1")
	}}
}

// validHostname reports whether s is a lowercase RFC 1123 DNS subdomain,
// which Kubernetes requires of node names.
func validHostname(s string) (bool, string) {
	if s == "" {
		return false, "it is empty"
	}
	if len(s) > 253 {
		return false, "it is longer than 253 characters"
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false, "it has an empty label"
		}
		if len(label) > 63 {
			return false, fmt.Sprintf("label %q is longer than 63 characters", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			case c == '-' && i != 0 && i != len(label)-1:
			case c >= 'A' && c <= 'Z':
				return false, "it has upper-case letters"
			default:
				return false, fmt.Sprintf("label %q must be lower-case letters, digits and inner '-'", label)
			}
		}
	}
	return true, ""
}

func hostnameCheck() Check {
	return checkFunc{name: "Hostname", run: func(_ context.Context, h *Host, r Result) Result {
		name, err := h.readTrim("/proc/sys/kernel/hostname")
		if err != nil {
			return r.warn(fmt.Sprintf("cannot read the host name: %s", err), "check the host name by hand (hostname)")
		}
		if ok, why := validHostname(name); !ok {
			return r.fail(fmt.Sprintf("host name %q is not a valid node name: %s (RFC 1123, lower case)", name, why),
				fmt.Sprintf("set a valid host name (hostnamectl set-hostname %s)", suggestHostname(name)))
		}
		if name == "localhost" {
			return r.warn("host name is \"localhost\": the node and its certificates will carry that name",
				"give the host a unique name (hostnamectl set-hostname NAME)")
		}
		return r.pass(fmt.Sprintf("node name %q", name))
	}}
}

// suggestHostname lowercases s and replaces invalid characters by '-'.
func suggestHostname(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-.")
	if out == "" {
		return "node1"
	}
	return out
}

// proxyVars are the variables K3s's install script carries from the shell
// into the service's environment file (it matches ^(NO|HTTP|HTTPS)_PROXY
// without regard to case), in the order K3s (Go's net/http) reads them:
// the upper-case name wins over the lower-case one.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}

// EnvProxy is the proxy the environment of tpctl gives K3s when the install
// configuration sets none.
type EnvProxy struct {
	HTTP, HTTPS string
	NoProxy     []string
	// Vars lists the variables that are set (non-empty), in proxyVars order.
	Vars []string
}

// Set reports whether the environment names an HTTP or HTTPS proxy.
func (p EnvProxy) Set() bool { return p.HTTP != "" || p.HTTPS != "" }

// ProxyFromEnv reads HTTP_PROXY, HTTPS_PROXY and NO_PROXY (either case; the
// upper-case name wins, as in K3s itself). A proxy without a scheme is an
// http:// proxy, as Go's net/http reads it.
func ProxyFromEnv(lookup func(string) (string, bool)) EnvProxy {
	var p EnvProxy
	if lookup == nil {
		return p
	}
	get := func(name string) string {
		for _, k := range []string{name, strings.ToLower(name)} {
			if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	for _, k := range proxyVars {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			p.Vars = append(p.Vars, k)
		}
	}
	p.HTTP = schemedProxy(get("HTTP_PROXY"))
	p.HTTPS = schemedProxy(get("HTTPS_PROXY"))
	for _, e := range strings.Split(get("NO_PROXY"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			p.NoProxy = append(p.NoProxy, e)
		}
	}
	return p
}

// schemedProxy reads a proxy as net/http's httpproxy does: one without a
// scheme or host is tried as an http:// proxy.
func schemedProxy(v string) string {
	if v == "" {
		return ""
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
		return v
	}
	if _, err := url.Parse("http://" + v); err == nil {
		return "http://" + v
	}
	return v
}

// NoProxyList is the NO_PROXY tpctl install gives K3s: the user's entries,
// then loopback and the cluster's own ranges and domains, without repeats,
// in that order.
func NoProxyList(user []string, clusterCIDR, serviceCIDR string) []string {
	all := append(slices.Clone(user), "localhost", "127.0.0.1", "::1", clusterCIDR, serviceCIDR, ".svc", ".cluster.local")
	seen := map[string]bool{}
	out := make([]string, 0, len(all))
	for _, e := range all {
		key := strings.ToLower(e)
		if e == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	return out
}

// ProxyEnvLines are the proxy lines of K3s's environment file for these
// proxies (none without an HTTP or HTTPS proxy), passwords unredacted.
func ProxyEnvLines(httpProxy, httpsProxy string, noProxy []string) [][2]string {
	if httpProxy == "" && httpsProxy == "" {
		return nil
	}
	var out [][2]string
	for _, kv := range [][2]string{{"HTTP_PROXY", httpProxy}, {"HTTPS_PROXY", httpsProxy}, {"NO_PROXY", strings.Join(noProxy, ",")}} {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}

// RedactProxy hides the password of a proxy URL.
func RedactProxy(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// proxyCheck is "Proxy": what the proxy variables of this shell do to the
// install. configured: the install configuration sets a proxy of its own,
// and then the variables are not used.
func proxyCheck(clusterCIDR, serviceCIDR string, configured bool) Check {
	return checkFunc{name: "Proxy", run: func(_ context.Context, h *Host, r Result) Result {
		p := ProxyFromEnv(h.LookupEnv)
		var set []string
		for _, k := range p.Vars {
			v, _ := h.LookupEnv(k)
			set = append(set, k+"="+RedactProxy(strings.TrimSpace(v)))
		}
		switch {
		case len(set) == 0:
			return r.pass("no proxy variables set")
		case configured:
			return r.pass(fmt.Sprintf("%s; not used: the install configuration sets the proxy (httpProxy, httpsProxy, noProxy)", strings.Join(set, " ")))
		case !p.Set():
			return r.pass(fmt.Sprintf("%s; without HTTP_PROXY or HTTPS_PROXY tpctl install writes no proxy into K3s's environment file", strings.Join(set, " ")))
		}
		var lines []string
		for _, kv := range ProxyEnvLines(p.HTTP, p.HTTPS, NoProxyList(p.NoProxy, clusterCIDR, serviceCIDR)) {
			lines = append(lines, kv[0]+"="+RedactProxy(kv[1]))
		}
		return r.pass(fmt.Sprintf("%s; these are carried into K3s's environment file as %s (unless the install configuration sets a proxy)",
			strings.Join(set, " "), strings.Join(lines, " ")))
	}}
}

// capSysResource is the bit of CAP_SYS_RESOURCE in a capability mask.
const capSysResource = 24

// parseCapBnd reads the CapBnd mask from /proc/<pid>/status.
func parseCapBnd(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == "CapBnd" {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapBnd %q: %w", strings.TrimSpace(v), err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no CapBnd line: %w", errNotFound)
}

// capBoundingSet reads this process's capability bounding set once.
func (h *Host) capBoundingSet() (uint64, error) {
	return h.capBound.get(func() (uint64, error) {
		b, err := h.ReadFile("/proc/self/status")
		if err != nil {
			return 0, err
		}
		return parseCapBnd(b)
	})
}

// oomScoreAdjCheck is "OOMScoreAdj". Without CAP_SYS_RESOURCE in the
// bounding set (LXC containers, some VMs) runc cannot give a pod sandbox
// its negative oom_score_adj and every pod hangs in ContainerCreating,
// unless containerd runs with restrict_oom_score_adj = true.
func oomScoreAdjCheck() Check {
	return checkFunc{name: "OOMScoreAdj", run: func(_ context.Context, h *Host, r Result) Result {
		bnd, err := h.capBoundingSet()
		if err != nil {
			return r.warn(fmt.Sprintf("cannot read the capability bounding set: %s", err),
				"check CapBnd in /proc/self/status by hand for CAP_SYS_RESOURCE")
		}
		if bnd&(1<<capSysResource) != 0 {
			return r.pass("CAP_SYS_RESOURCE is in the bounding set: containers may lower oom_score_adj")
		}
		return r.warn("CAP_SYS_RESOURCE is missing from the bounding set (a restricted VM or container): runc cannot set a negative oom_score_adj, "+
			"so tpctl install sets restrict_oom_score_adj = true in K3s's containerd configuration; without it every pod would hang in ContainerCreating",
			"nothing to do for tpctl install; a K3s set up by other means needs restrict_oom_score_adj = true in its containerd config template")
	}}
}

func seLinuxCheck() Check {
	return checkFunc{name: "SELinux", run: func(_ context.Context, h *Host, r Result) Result {
		if !h.Exists("/sys/fs/selinux") {
			return r.pass("SELinux is not enabled")
		}
		v, err := h.readTrim("/sys/fs/selinux/enforce")
		if err != nil {
			return r.warn(fmt.Sprintf("SELinux is present but its mode cannot be read: %s", err), "check the mode by hand (getenforce)")
		}
		if v != "1" {
			return r.pass("SELinux is permissive")
		}
		return r.warn("SELinux is enforcing: K3s needs the k3s-selinux policy, or its containers are denied access to their files",
			"install the k3s-selinux policy package (and container-selinux), or switch to permissive (setenforce 0; SELINUX=permissive in /etc/selinux/config)")
	}}
}

func appArmorCheck() Check {
	return checkFunc{name: "AppArmor", run: func(_ context.Context, h *Host, r Result) Result {
		v, err := h.readTrim("/sys/module/apparmor/parameters/enabled")
		if isNotExist(err) {
			return r.pass("AppArmor is not enabled")
		}
		if err != nil {
			return r.warn(fmt.Sprintf("cannot tell whether AppArmor is enabled: %s", err), "check by hand (aa-status)")
		}
		if v != "Y" {
			return r.pass("AppArmor is not enabled")
		}
		for _, p := range []string{"/sbin/apparmor_parser", "/usr/sbin/apparmor_parser", "/usr/bin/apparmor_parser"} {
			if h.Exists(p) {
				return r.pass("AppArmor is enabled and " + p + " is present: containerd loads its default profile")
			}
		}
		return r.warn("AppArmor is enabled but apparmor_parser is missing: containerd cannot load its default profile and containers fail to start",
			"install the apparmor package (apt-get install apparmor), which provides apparmor_parser")
	}}
}
