package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Private registries. K3s reads /etc/rancher/k3s/registries.yaml at start
// and turns it into containerd's registry configuration. The install
// configuration's `registries` key has exactly that file's shape (K3s's
// own types, github.com/rancher/wharfie/pkg/registries):
//
//	mirrors: {REGISTRY: {endpoint: [URL, ...], rewrite: {REGEXP: REPLACEMENT}}}
//	configs: {HOST: {auth: {username, password, auth, identity_token},
//	                 tls: {ca_file, cert_file, key_file, insecure_skip_verify}}}
//
// tpctl copies every file a tls section names into RegistryCertsDir and
// points the rendered file there: the install then does not depend on a
// file the user may move or delete later, a changed CA is a changed file
// that restarts K3s, and uninstall removes the copies with the rest.

// Paths of the registries file and of tpctl's copies of the files it names.
const (
	RegistriesPath   = "/etc/rancher/k3s/registries.yaml"
	RegistryCertsDir = "/etc/rancher/k3s/tpctl-registry-certs"
	// RegistryPasswordEnvPrefix + the host in upper case, every character
	// other than a letter or digit turned into "_", holds the password of
	// a --registry-auth host (TPCTL_REGISTRY_PASSWORD_REGISTRY_EXAMPLE_COM_5000).
	RegistryPasswordEnvPrefix = "TPCTL_REGISTRY_PASSWORD_"
	redactedSecret            = "xxxxx"
	// maxRegistryFile bounds a CA, certificate or key file.
	maxRegistryFile = 1 << 20
)

// Registries is K3s's registries.yaml.
type Registries struct {
	Mirrors map[string]RegistryMirror `json:"mirrors,omitempty"`
	Configs map[string]RegistryConfig `json:"configs,omitempty"`
}

// RegistryMirror lists the endpoints pulls of one registry go to, in order
// (the registry itself last, unless it is "*" or an endpoint).
type RegistryMirror struct {
	Endpoints []string          `json:"endpoint,omitempty"`
	Rewrites  map[string]string `json:"rewrite,omitempty"`
}

// RegistryConfig holds the credentials and TLS settings of one host.
type RegistryConfig struct {
	Auth *RegistryAuth `json:"auth,omitempty"`
	TLS  *RegistryTLS  `json:"tls,omitempty"`
}

// RegistryAuth are a host's credentials.
type RegistryAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identity_token,omitempty"`
}

// RegistryTLS is a host's TLS settings.
type RegistryTLS struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// empty reports whether r configures nothing.
func (r *Registries) empty() bool { return r == nil || (len(r.Mirrors) == 0 && len(r.Configs) == 0) }

// clone copies r deeply.
func (r *Registries) clone() *Registries {
	if r == nil {
		return nil
	}
	out := &Registries{}
	if r.Mirrors != nil {
		out.Mirrors = map[string]RegistryMirror{}
		for k, m := range r.Mirrors {
			out.Mirrors[k] = RegistryMirror{Endpoints: slices.Clone(m.Endpoints), Rewrites: maps.Clone(m.Rewrites)}
		}
	}
	if r.Configs != nil {
		out.Configs = map[string]RegistryConfig{}
		for k, c := range r.Configs {
			var n RegistryConfig
			if c.Auth != nil {
				a := *c.Auth
				n.Auth = &a
			}
			if c.TLS != nil {
				t := *c.TLS
				n.TLS = &t
			}
			out.Configs[k] = n
		}
	}
	return out
}

// redacted returns a copy with every credential replaced by xxxxx.
func (r *Registries) redacted() *Registries {
	out := r.clone()
	if out == nil {
		return nil
	}
	hide := func(s *string) {
		if *s != "" {
			*s = redactedSecret
		}
	}
	for _, c := range out.Configs {
		if c.Auth != nil {
			hide(&c.Auth.Password)
			hide(&c.Auth.Auth)
			hide(&c.Auth.IdentityToken)
		}
	}
	return out
}

// registryKeys are the keys of each level of the registries key: they are
// checked exactly (encoding/json would match them in any case).
var registryKeys = map[string][]string{
	"registries": {"mirrors", "configs"},
	"mirror":     {"endpoint", "rewrite"},
	"config":     {"auth", "tls"},
	"auth":       {"username", "password", "auth", "identity_token"},
	"tls":        {"ca_file", "cert_file", "key_file", "insecure_skip_verify"},
}

// checkRegistryKeys refuses unknown keys anywhere in the registries key.
func checkRegistryKeys(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	level := func(field, kind string, raw json.RawMessage) (map[string]json.RawMessage, error) {
		var m map[string]json.RawMessage
		if len(raw) == 0 || string(raw) == "null" {
			return nil, nil
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: must be a mapping", field)
		}
		if kind == "" {
			return m, nil
		}
		for k := range m {
			if !slices.Contains(registryKeys[kind], k) {
				return nil, fmt.Errorf("%s: unknown field %q (known: %s)", field, k, strings.Join(registryKeys[kind], ", "))
			}
		}
		return m, nil
	}
	top, err := level("registries", "registries", raw)
	if err != nil {
		return err
	}
	mirrors, err := level("registries.mirrors", "", top["mirrors"])
	if err != nil {
		return err
	}
	for host, m := range mirrors {
		if _, err := level("registries.mirrors."+host, "mirror", m); err != nil {
			return err
		}
	}
	configs, err := level("registries.configs", "", top["configs"])
	if err != nil {
		return err
	}
	for host, c := range configs {
		cm, err := level("registries.configs."+host, "config", c)
		if err != nil {
			return err
		}
		for _, sub := range []string{"auth", "tls"} {
			if _, err := level("registries.configs."+host+"."+sub, sub, cm[sub]); err != nil {
				return err
			}
		}
	}
	return nil
}

// registryHostProblem says why h is not a registry host ("name[:port]",
// "address[:port]", "[v6]:port", or "*" for every registry), or "".
func registryHostProblem(h string) string {
	const want = "is not a registry host: a lower-case name or address with an optional port (registry.example.com:5000), or *"
	if h == "*" {
		return ""
	}
	host, port := h, ""
	switch {
	case strings.HasPrefix(h, "["):
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil || (port == "" && !strings.HasSuffix(h, "]")) {
			if !strings.HasSuffix(h, "]") {
				return want
			}
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ""
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return want
		}
	case strings.Contains(h, ":"):
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil || port == "" {
			return want
		}
		fallthrough
	default:
		if _, err := netip.ParseAddr(host); err != nil && !isDNSSubdomain(host) {
			return want
		}
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			return want + " (write an IPv6 address in brackets)"
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "has an invalid port"
		}
	}
	return ""
}

// endpointProblem says why e is not a mirror endpoint, or "".
func endpointProblem(e string) string {
	u, err := url.Parse(e)
	switch {
	case err != nil || strings.ContainsAny(e, " \t\r\n\"'\\"):
		return "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http:// or https:// URL"
	case u.Host == "" || registryHostProblem(u.Host) != "" || u.Host == "*":
		return "names no valid registry host"
	case u.User != nil:
		return "must not hold credentials: give them under registries.configs.<host>.auth (or --registry-auth), which is kept out of every output"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// validateRegistries adds every problem of r to bad. It checks the shape
// only; checkRegistryFiles reads the files.
func validateRegistries(r *Registries, bad func(field, value, format string, args ...any)) {
	if r == nil {
		return
	}
	for _, host := range sortedKeys(r.Mirrors) {
		m := r.Mirrors[host]
		f := "registries.mirrors." + host
		if msg := registryHostProblem(host); msg != "" {
			bad("registries.mirrors", host, "%s", msg)
			continue
		}
		if len(m.Endpoints) == 0 && len(m.Rewrites) == 0 {
			bad(f, "", "names no endpoint")
		}
		for i, e := range m.Endpoints {
			if msg := endpointProblem(e); msg != "" {
				bad(fmt.Sprintf("%s.endpoint[%d]", f, i), redactURL(e), "%s", msg)
			}
		}
		for _, k := range sortedKeys(m.Rewrites) {
			if _, err := regexp.Compile(k); err != nil {
				bad(f+".rewrite", k, "is not a regular expression: %v", err)
			}
			if strings.ContainsAny(m.Rewrites[k], "\r\n") {
				bad(f+".rewrite", k, "has a replacement with a line break")
			}
		}
	}
	for _, host := range sortedKeys(r.Configs) {
		c := r.Configs[host]
		f := "registries.configs." + host
		if msg := registryHostProblem(host); msg != "" {
			bad("registries.configs", host, "%s", msg)
			continue
		}
		if c.Auth == nil && c.TLS == nil {
			bad(f, "", "sets neither auth nor tls")
		}
		if a := c.Auth; a != nil {
			switch {
			case a.Username != "" && a.Password == "":
				bad(f+".auth", "", "has a username and no password (give it with --registry-password-file %s=FILE or %s)", host, RegistryPasswordEnv(host))
			case a.Username == "" && a.Password != "":
				bad(f+".auth", "", "has a password and no username")
			case a.Username == "" && a.Auth == "" && a.IdentityToken == "":
				bad(f+".auth", "", "sets none of username and password, auth, identity_token")
			}
			if strings.ContainsAny(a.Username, "\r\n:") {
				bad(f+".auth.username", a.Username, "must not hold a colon or line break")
			}
			if strings.ContainsAny(a.Password+a.IdentityToken, "\r\n") {
				bad(f+".auth", "", "a password or identity_token holds a line break")
			}
			if a.Auth != "" {
				if d, err := base64.StdEncoding.DecodeString(a.Auth); err != nil || !bytes.Contains(d, []byte(":")) {
					bad(f+".auth.auth", "", "must be base64 of username:password")
				}
			}
		}
		if t := c.TLS; t != nil {
			for _, p := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
				switch {
				case p.path == "":
				case !filepath.IsAbs(p.path) || filepath.Clean(p.path) != p.path:
					bad(f+".tls."+p.key, p.path, "must be a clean absolute path")
				case inside(p.path, RegistryCertsDir):
					bad(f+".tls."+p.key, p.path, "lies in %s, where tpctl keeps its own copies: name the original file", RegistryCertsDir)
				}
			}
			if (t.CertFile == "") != (t.KeyFile == "") {
				bad(f+".tls", "", "cert_file and key_file go together")
			}
			if t.CAFile != "" && t.InsecureSkipVerify {
				bad(f+".tls", "", "insecure_skip_verify makes ca_file pointless: set one of them")
			}
		}
	}
}

// RegistryPasswordEnv names the environment variable that holds the
// password of a --registry-auth host.
func RegistryPasswordEnv(host string) string {
	if host == "*" {
		host = "default"
	}
	var b strings.Builder
	b.WriteString(RegistryPasswordEnvPrefix)
	for _, r := range strings.ToUpper(host) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// registryFlags are the convenience flags for private registries.
type registryFlags struct {
	mirrors, cas, auths, passwordFiles []string
}

// splitHostValue splits "HOST=VALUE" for a flag.
func splitHostValue(flag, s string) (string, string, error) {
	host, v, ok := strings.Cut(s, "=")
	if !ok || host == "" || v == "" {
		return "", "", fmt.Errorf("--%s %q: want HOST=VALUE", flag, s)
	}
	if msg := registryHostProblem(host); msg != "" {
		return "", "", fmt.Errorf("--%s: %q %s", flag, host, msg)
	}
	return host, v, nil
}

// apply overlays the flags on c.Registries. --registry-mirror replaces the
// endpoints of the registries it names (repeat it for more endpoints, in
// order); --registry-ca and --registry-auth set one host's CA file and
// user. The password of a --registry-auth host comes from
// --registry-password-file HOST=FILE, else from RegistryPasswordEnv(HOST);
// never from a flag value, which other users see in the process list.
func (f *registryFlags) apply(c *Config, readFile func(string) ([]byte, error), lookupEnv func(string) (string, bool)) error {
	if len(f.mirrors)+len(f.cas)+len(f.auths)+len(f.passwordFiles) == 0 {
		return nil
	}
	r := c.Registries.clone()
	if r == nil {
		r = &Registries{}
	}
	if r.Mirrors == nil {
		r.Mirrors = map[string]RegistryMirror{}
	}
	if r.Configs == nil {
		r.Configs = map[string]RegistryConfig{}
	}
	flagged := map[string]bool{}
	for _, s := range f.mirrors {
		reg, ep, err := splitHostValue("registry-mirror", s)
		if err != nil {
			return err
		}
		m := r.Mirrors[reg]
		if !flagged[reg] {
			m.Endpoints = nil
			flagged[reg] = true
		}
		m.Endpoints = append(m.Endpoints, ep)
		r.Mirrors[reg] = m
	}
	for _, s := range f.cas {
		host, file, err := splitHostValue("registry-ca", s)
		if err != nil {
			return err
		}
		cfg := r.Configs[host]
		if cfg.TLS == nil {
			cfg.TLS = &RegistryTLS{}
		}
		cfg.TLS.CAFile = file
		r.Configs[host] = cfg
	}
	pwFiles := map[string]string{}
	for _, s := range f.passwordFiles {
		host, file, err := splitHostValue("registry-password-file", s)
		if err != nil {
			return err
		}
		if _, dup := pwFiles[host]; dup {
			return fmt.Errorf("--registry-password-file: %s is given twice", host)
		}
		pwFiles[host] = file
	}
	users := map[string]string{}
	for _, s := range f.auths {
		host, user, err := splitHostValue("registry-auth", s)
		if err != nil {
			return err
		}
		if _, dup := users[host]; dup {
			return fmt.Errorf("--registry-auth: %s is given twice", host)
		}
		users[host] = user
	}
	for _, host := range sortedKeys(pwFiles) {
		if _, ok := users[host]; !ok {
			a := r.Configs[host].Auth
			if a == nil || a.Username == "" {
				return fmt.Errorf("--registry-password-file %s=…: no user for %s (give --registry-auth %s=USER)", host, host, host)
			}
		}
	}
	for _, host := range slices.Sorted(maps.Keys(mergeKeys(users, pwFiles))) {
		cfg := r.Configs[host]
		a := &RegistryAuth{}
		if cfg.Auth != nil {
			*a = *cfg.Auth
		}
		if u, ok := users[host]; ok {
			a.Username = u
		}
		var pw string
		if file, ok := pwFiles[host]; ok {
			b, err := readFile(file)
			if err != nil {
				return fmt.Errorf("--registry-password-file %s: %w", host, err)
			}
			pw = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			if pw == "" || strings.ContainsAny(pw, "\r\n") {
				return fmt.Errorf("--registry-password-file %s: %s must hold the password on one line", host, file)
			}
		} else if v, ok := lookupEnv(RegistryPasswordEnv(host)); ok && v != "" {
			pw = v
		} else {
			return fmt.Errorf("--registry-auth %s: no password: give --registry-password-file %s=FILE or set %s (never on the command line)",
				host, host, RegistryPasswordEnv(host))
		}
		a.Password, a.Auth, a.IdentityToken = pw, "", ""
		cfg.Auth = a
		r.Configs[host] = cfg
	}
	if len(r.Mirrors) == 0 {
		r.Mirrors = nil
	}
	if len(r.Configs) == 0 {
		r.Configs = nil
	}
	c.Registries = r
	return nil
}

func mergeKeys(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// registryFile is a file a tls section names, as tpctl copies it.
type registryFile struct {
	host, key string
	source    string
	path      string
	perm      fs.FileMode
}

// registryFiles lists the copies of the files c's registries name.
func registryFiles(r *Registries) []registryFile {
	if r == nil {
		return nil
	}
	var out []registryFile
	for _, host := range sortedKeys(r.Configs) {
		t := r.Configs[host].TLS
		if t == nil {
			continue
		}
		dir := host
		if host == "*" {
			dir = "_default" // containerd's name for the default host
		}
		dir = filepath.Join(RegistryCertsDir, dir)
		for _, f := range []registryFile{
			{key: "ca_file", source: t.CAFile, path: filepath.Join(dir, "ca.crt"), perm: 0o644},
			{key: "cert_file", source: t.CertFile, path: filepath.Join(dir, "client.cert"), perm: 0o644},
			{key: "key_file", source: t.KeyFile, path: filepath.Join(dir, "client.key"), perm: 0o600},
		} {
			if f.source != "" {
				f.host = host
				out = append(out, f)
			}
		}
	}
	return out
}

// readRegistryFiles reads and checks the files c's registries name: a CA
// file holds PEM certificates, a certificate and key form a pair. Errors
// name the file, never its content.
func readRegistryFiles(r *Registries, readFile func(string) ([]byte, error)) (map[string][]byte, error) {
	out := map[string][]byte{}
	var errs []FieldError
	files := registryFiles(r)
	for _, f := range files {
		field := "registries.configs." + f.host + ".tls." + f.key
		b, err := readFile(f.source)
		switch {
		case err != nil:
			errs = append(errs, FieldError{Field: field, Value: f.source, Message: "cannot be read: " + unwrapPathError(err)})
			continue
		case len(b) > maxRegistryFile:
			errs = append(errs, FieldError{Field: field, Value: f.source, Message: "is larger than 1 MiB"})
			continue
		}
		if f.key == "ca_file" {
			if msg := pemCertsProblem(b); msg != "" {
				errs = append(errs, FieldError{Field: field, Value: f.source, Message: msg})
				continue
			}
		}
		out[f.path] = b
	}
	for _, f := range files {
		if f.key != "cert_file" {
			continue
		}
		key := filepath.Join(filepath.Dir(f.path), "client.key")
		cert, k := out[f.path], out[key]
		if cert == nil || k == nil {
			continue
		}
		if _, err := tls.X509KeyPair(cert, k); err != nil {
			errs = append(errs, FieldError{Field: "registries.configs." + f.host + ".tls", Message: "cert_file and key_file are not a PEM certificate and its private key"})
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Fields: errs}
	}
	return out, nil
}

func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// pemCertsProblem says why b is not one or more PEM certificates, or "".
func pemCertsProblem(b []byte) string {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return "holds a PEM " + blk.Type + ", not only certificates"
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return "holds a certificate that does not parse: " + err.Error()
		}
		n++
	}
	if n == 0 {
		return "holds no PEM certificate"
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return "holds text after its last PEM certificate"
	}
	return ""
}

// CheckRegistryFiles reads the files the configuration's registries name
// (after Validate) and refuses any that cannot be used.
func CheckRegistryFiles(c Config, readFile func(string) ([]byte, error)) error {
	_, err := readRegistryFiles(c.Registries, readFile)
	return err
}

// RenderRegistries renders /etc/rancher/k3s/registries.yaml: the
// configuration's registries with every tls file pointing at tpctl's copy.
func RenderRegistries(r *Registries) ([]byte, error) {
	out := r.clone()
	if out == nil {
		out = &Registries{}
	}
	for _, f := range registryFiles(r) {
		t := out.Configs[f.host].TLS
		switch f.key {
		case "ca_file":
			t.CAFile = f.path
		case "cert_file":
			t.CertFile = f.path
		case "key_file":
			t.KeyFile = f.path
		}
	}
	body, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", RegistriesPath, err)
	}
	return append([]byte(writtenBy), body...), nil
}

// registriesStep writes registries.yaml and the copies of the files it
// names, and removes those an earlier run wrote that the configuration no
// longer names. K3s reads them at start: a change restarts it.
type registriesStep struct{ env *Env }

// registriesSteps is the registries step when the configuration has
// registries or an earlier install wrote registry files (which it then
// removes); otherwise none.
func registriesSteps(env *Env) []Step {
	step := []Step{&registriesStep{env: env}}
	if !env.Config.Registries.empty() {
		return step
	}
	cur, err := LoadState(env.State.path, env.Now)
	if err != nil {
		return step // Run reports the state
	}
	for _, c := range cur.Get().Created {
		if c.Kind == KindFile && (c.Path == RegistriesPath || inside(c.Path, RegistryCertsDir)) {
			return step
		}
	}
	return nil
}

func (s *registriesStep) Name() string { return "write registries" }

// Describe names the mirrors and hosts, for the plan.
func (s *registriesStep) Describe() string {
	r := s.env.Config.Registries
	if r.empty() {
		return "no private registries configured (" + RegistriesPath + " is written only when the configuration has registries)"
	}
	return "write " + RegistriesPath + " (0600): " + describeRegistries(r)
}

func describeRegistries(r *Registries) string {
	var parts []string
	for _, reg := range sortedKeys(r.Mirrors) {
		parts = append(parts, "mirror "+reg+" → "+strings.Join(r.Mirrors[reg].Endpoints, ", "))
	}
	for _, host := range sortedKeys(r.Configs) {
		var what []string
		c := r.Configs[host]
		if c.Auth != nil {
			what = append(what, "credentials")
		}
		if c.TLS != nil {
			switch {
			case c.TLS.CAFile != "":
				what = append(what, "CA")
			case c.TLS.InsecureSkipVerify:
				what = append(what, "TLS not verified")
			}
			if c.TLS.CertFile != "" {
				what = append(what, "client certificate")
			}
		}
		parts = append(parts, host+": "+strings.Join(what, ", "))
	}
	return strings.Join(parts, "; ")
}

// wanted are the files the configuration asks for: the copies, then
// registries.yaml (none without registries).
type wantedFile struct {
	path   string
	perm   fs.FileMode
	data   []byte
	source string
}

func (s *registriesStep) wanted() ([]wantedFile, error) {
	r := s.env.Config.Registries
	if r.empty() {
		return nil, nil
	}
	data, err := readRegistryFiles(r, os.ReadFile)
	if err != nil {
		return nil, err
	}
	var out []wantedFile
	for _, f := range registryFiles(r) {
		out = append(out, wantedFile{path: f.path, perm: f.perm, data: data[f.path], source: f.source})
	}
	body, err := RenderRegistries(r)
	if err != nil {
		return nil, err
	}
	return append(out, wantedFile{path: RegistriesPath, perm: 0o600, data: body}), nil
}

// recorded reports whether p was created by an install.
func (s *registriesStep) recorded(p string) bool {
	for _, c := range s.env.State.Get().Created {
		if c.Path == p && c.Kind == KindFile {
			return true
		}
	}
	return false
}

// check returns the wanted files and the recorded ones no longer wanted;
// it refuses a registries.yaml tpctl did not write.
func (s *registriesStep) check() ([]wantedFile, []string, error) {
	want, err := s.wanted()
	if err != nil {
		return nil, nil, err
	}
	if len(want) > 0 && s.env.FS.Exists(RegistriesPath) && !s.recorded(RegistriesPath) {
		return nil, nil, fmt.Errorf("%s exists and was not written by tpctl: it is left alone. Move its settings into the install configuration's registries key (same shape) and remove the file, then run again", RegistriesPath)
	}
	var stale []string
	for _, c := range s.env.State.Get().Created {
		if c.Kind != KindFile || (c.Path != RegistriesPath && !inside(c.Path, RegistryCertsDir)) {
			continue
		}
		if !slices.ContainsFunc(want, func(w wantedFile) bool { return w.path == c.Path }) {
			stale = append(stale, c.Path)
		}
	}
	return want, stale, nil
}

func (s *registriesStep) Done(context.Context) (bool, error) {
	want, stale, err := s.check()
	if err != nil {
		return false, err
	}
	if len(stale) > 0 {
		return false, nil
	}
	for _, w := range want {
		if same, err := s.env.FS.Same(w.path, w.data, w.perm); err != nil || !same {
			return false, err
		}
	}
	return true, nil
}

func (s *registriesStep) Run(ctx context.Context, ev Events) error {
	want, stale, err := s.check()
	if err != nil {
		return err
	}
	var change []wantedFile
	for _, w := range want {
		same, err := s.env.FS.Same(w.path, w.data, w.perm)
		if err != nil {
			return err
		}
		if !same {
			change = append(change, w)
		}
	}
	if len(change) == 0 && len(stale) == 0 {
		return nil
	}
	// The intent first: a run killed after the write still restarts K3s,
	// which reads the file only at start.
	if err := s.env.State.Update(func(st *State) { st.PendingRestart = true }); err != nil {
		return err
	}
	for _, w := range change {
		if _, err := s.env.FS.WriteFile(ctx, w.path, s.Name(), w.data, w.perm); err != nil {
			return err
		}
	}
	for _, p := range stale {
		if err := os.Remove(s.env.FS.Path(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		if err := s.env.State.Forget(p); err != nil {
			return err
		}
	}
	if len(stale) > 0 {
		if err := s.removeEmptyDirs(want); err != nil {
			return err
		}
	}
	switch {
	case len(want) > 0:
		summarize(ev, "%s written: %s", RegistriesPath, describeRegistries(s.env.Config.Registries))
	default:
		summarize(ev, "%s removed: the configuration names no registries", RegistriesPath)
	}
	return nil
}

// removeEmptyDirs removes the directories an install made under
// RegistryCertsDir that hold no wanted file and are empty now, deepest
// first (a directory holding anything else stays, for uninstall).
func (s *registriesStep) removeEmptyDirs(want []wantedFile) error {
	var dirs []string
	for _, c := range s.env.State.Get().Created {
		if c.Kind == KindDir && inside(c.Path, RegistryCertsDir) &&
			!slices.ContainsFunc(want, func(w wantedFile) bool { return inside(w.path, c.Path) }) {
			dirs = append(dirs, c.Path)
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		if entries, err := os.ReadDir(s.env.FS.Path(d)); err != nil || len(entries) > 0 {
			continue
		}
		if err := os.Remove(s.env.FS.Path(d)); err != nil {
			continue
		}
		if err := s.env.State.Forget(d); err != nil {
			return err
		}
	}
	return nil
}

// Files previews the files, credentials redacted and copies by digest.
func (s *registriesStep) Files() []FilePreview {
	want, stale, err := s.check()
	if err != nil {
		return []FilePreview{{Path: RegistriesPath, Note: "cannot render: " + err.Error()}}
	}
	var out []FilePreview
	for _, w := range want {
		fp := FilePreview{Path: w.path, Mode: w.perm}
		switch {
		case w.path == RegistriesPath:
			b, err := RenderRegistries(s.env.Config.Registries.redacted())
			if err != nil {
				fp.Note = "cannot render: " + err.Error()
			}
			fp.Content = string(b)
		default:
			fp.Size, fp.Source = int64(len(w.data)), w.source
			if w.perm&0o044 != 0 {
				sum := sha256.Sum256(w.data)
				fp.SHA256 = hex.EncodeToString(sum[:])
			} else {
				fp.Note = "private key, copied as is"
			}
		}
		out = append(out, fp)
	}
	for _, p := range stale {
		out = append(out, FilePreview{Path: p, Note: "removed: the configuration no longer names it"})
	}
	return out
}

// MirrorsImage reports whether a mirror is configured for the registry of
// image ref (its first path component when that names a host, else
// docker.io, as containerd reads it), or for every registry ("*").
func (r *Registries) MirrorsImage(ref string) bool {
	if r.empty() {
		return false
	}
	host := "docker.io"
	if first, _, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host = first
	}
	_, exact := r.Mirrors[host]
	_, any := r.Mirrors["*"]
	return exact || any
}
