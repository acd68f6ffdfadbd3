package supportbundle

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Mask replaces every secret the redactor finds.
const Mask = "***REDACTED***"

// sensitiveKey matches the names of keys, variables and flags whose value is
// a secret: tokens, passwords, credentials, private keys, auth blocks.
var sensitiveKey = regexp.MustCompile(`(?i)(passw(or)?d|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth(orization)?|bearer|cookie|identitytoken|^key$)`)

// textRule is one textual redaction: the groups named "keep" survive, the
// rest of the match becomes the mask.
type textRule struct {
	re   *regexp.Regexp
	repl string
	// pathKeys: a match whose key names a file (token-file, key_file)
	// is kept: the value is a path, not the secret.
	pathKeys bool
}

var textRules = []textRule{
	// PEM private keys, also a block cut short by truncation.
	{re: regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`), repl: "-----BEGIN PRIVATE KEY-----\n" + Mask + "\n-----END PRIVATE KEY-----"},
	// Credentials in URLs: scheme://user:password@host.
	{re: regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@"'<>]+:[^/\s@"'<>]*@`), repl: "${1}" + Mask + "@"},
	// Authorization headers.
	{re: regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*`), repl: "${1}${2}" + Mask},
	// K3s tokens in their secure format (K10<ca hash>::<user>:<password>).
	{re: regexp.MustCompile(`K10[0-9a-fA-F]{8,}::[^\s"',]+`), repl: Mask},
	// JSON Web Tokens (service account tokens).
	{re: regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+`), repl: Mask},
	// Flags: --token VALUE, --password=VALUE, and K3s's node-args
	// annotation ["--token","VALUE"].
	{re: regexp.MustCompile(`(?i)(--[a-z0-9-]*(?:token|password|passwd|secret|credential)[a-z0-9-]*(?:=|\s+|"\s*,\s*"))("[^"]*"|'[^']*'|[^\s"',\]]+)`), repl: "${1}" + Mask},
	// TOML and INI credentials (containerd's registry auth block).
	{re: regexp.MustCompile(`(?im)^(\s*(?:auth|identitytoken|identity_token)\s*=\s*)(.+)$`), repl: "${1}\"" + Mask + "\""},
	// Fluent Bit and similar "Key  value" lines whose key names a secret
	// (exactly a key and one value on the line).
	{re: regexp.MustCompile(`(?im)^([ \t]*[a-z0-9_.-]*(?:passw(?:or)?d|secret|token|api[_-]?key)[a-z0-9_.-]*[ \t]+)([^\s:=]\S*)[ \t]*$`), repl: "${1}" + Mask},
	// key: value, key=value, "key": "value" where the key names a secret.
	{re: regexp.MustCompile(`(?i)(["']?[a-z0-9_.-]*(?:passw(?:or)?d|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key)[a-z0-9_.-]*["']?\s*[:=]\s*)("[^"\n]*"|'[^'\n]*'|[^\s,}\]]+)`), repl: "${1}\"" + Mask + "\"", pathKeys: true},
}

// Redactor hides secrets in collected bytes. It knows the rules above and,
// in addition, any literal values it was told (for example values read from
// files that are never copied), which are replaced wherever they appear.
type Redactor struct {
	literals [][]byte
}

// NewRedactor returns a redactor that also hides the given literal values
// (empty and very short ones are ignored: they would mask ordinary text).
func NewRedactor(literals ...string) *Redactor {
	r := &Redactor{}
	r.AddLiterals(literals...)
	return r
}

// AddLiterals adds values to hide wherever they appear.
func (r *Redactor) AddLiterals(literals ...string) {
	for _, l := range literals {
		l = strings.TrimSpace(l)
		if len(l) >= 6 {
			r.literals = append(r.literals, []byte(l))
		}
	}
}

// Text redacts free text: logs, journals, unit files, command output.
func (r *Redactor) Text(b []byte) []byte {
	for _, l := range r.literals {
		b = bytes.ReplaceAll(b, l, []byte(Mask))
	}
	for _, rule := range textRules {
		if !rule.pathKeys {
			b = rule.re.ReplaceAll(b, []byte(rule.repl))
			continue
		}
		b = rule.re.ReplaceAllFunc(b, func(m []byte) []byte {
			sub := rule.re.FindSubmatch(m)
			if key := strings.Trim(strings.TrimSpace(strings.TrimRight(string(sub[1]), " \t:=")), `"'`); pathLike(key) {
				return m
			}
			return rule.re.Expand(nil, []byte(rule.repl), m, rule.re.FindSubmatchIndex(m))
		})
	}
	return b
}

// Structured redacts a YAML or JSON document: every value under a key that
// names a secret is replaced (whole sub-trees, such as a registry's auth
// block), then the text rules run on the result. A document that does not
// parse is not returned: ok is false and the caller records why.
func (r *Redactor) Structured(b []byte, asJSON bool) (out []byte, ok bool) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, false
	}
	v = redactTree(v)
	var err error
	if asJSON {
		out, err = json.MarshalIndent(v, "", "  ")
	} else {
		out, err = yaml.Marshal(v)
	}
	if err != nil {
		return nil, false
	}
	return r.Text(out), true
}

// redactTree masks the values of sensitive keys anywhere in a decoded
// document, and the value of name/value pairs whose name is sensitive (an
// environment variable list).
func redactTree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if name, ok := t["name"].(string); ok && sensitiveKey.MatchString(name) {
			if _, has := t["value"]; has {
				t["value"] = Mask
			}
		}
		for k, val := range t {
			if sensitiveKey.MatchString(k) && !pathLike(k) {
				t[k] = maskValue(val)
				continue
			}
			t[k] = redactTree(val)
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactTree(t[i])
		}
		return t
	}
	return v
}

// pathLike: keys that name a file holding the secret (token-file, key_file,
// cert_file) keep their value; the file itself is never copied.
func pathLike(k string) bool {
	k = strings.ToLower(k)
	return strings.HasSuffix(k, "file") || strings.HasSuffix(k, "-path") || strings.HasSuffix(k, "_path")
}

func maskValue(v any) any {
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		if t == "" {
			return t
		}
		return Mask
	case bool:
		return t
	}
	return Mask
}
