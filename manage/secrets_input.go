// Reading secret values from flags, the environment and .env or YAML files.

package manage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	yamlv3 "go.yaml.in/yaml/v3"
)

// ParseSecretArgs reads --secret values: NAME=VALUE, or NAME alone, which
// takes the value of the environment variable NAME (lookupEnv; nil means an
// empty environment), keeping the value off the command line. Errors never
// show a value: an entry without '=' that is not a valid name is not shown
// at all, in case it is a value given by mistake.
func ParseSecretArgs(args []string, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for i, a := range args {
		name, value, hasValue := strings.Cut(a, "=")
		if !hasValue {
			if ValidateSecretName(name) != nil {
				errs = append(errs, fmt.Errorf("--secret #%d is neither NAME=VALUE nor the name of an environment variable (not shown, in case it is a value)", i+1))
				continue
			}
			v, ok := "", false
			if lookupEnv != nil {
				v, ok = lookupEnv(name)
			}
			if !ok {
				errs = append(errs, fmt.Errorf("--secret %s: no value given and no environment variable %s is set", name, name))
				continue
			}
			value = v
		}
		if err := ValidateSecretName(name); err != nil {
			errs = append(errs, fmt.Errorf("--secret #%d: %w", i+1, err))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("--secret %s is given twice", name))
			continue
		}
		out[name] = value
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadSecretsFile reads a secrets file ("-" reads stdin): YAML when its name
// ends in .yaml, .yml or .json, else .env lines (ParseDotenv).
func ReadSecretsFile(path string, stdin io.Reader) (map[string]string, error) {
	var data []byte
	var err error
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("read secrets from stdin: no stdin")
		}
		data, err = io.ReadAll(io.LimitReader(stdin, MaxSecretsBytes*2+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	return ParseSecretsFile(path, data)
}

// ParseSecretsFile parses a secrets file's content by its name (see
// ReadSecretsFile). Errors name lines and keys, never values.
func ParseSecretsFile(path string, data []byte) (map[string]string, error) {
	if len(data) > MaxSecretsBytes*2 {
		return nil, fmt.Errorf("secrets file %s: larger than %d bytes", path, MaxSecretsBytes*2)
	}
	var out map[string]string
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		out, err = parseSecretsYAML(data)
	default:
		out, err = ParseDotenv(data)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	return out, nil
}

// parseSecretsYAML reads a YAML (or JSON) map of names to scalar values.
// Each value is taken as the text written: YAML 1.1 would read yes, on or
// 0123 as something else, and keys such as N or ON as booleans, so nothing
// is resolved. A value that is no scalar, or null, is refused.
func parseSecretsYAML(data []byte) (map[string]string, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		// The parser's message may quote the document; name the problem only.
		return nil, errors.New("not a YAML map of NAME: value (it does not parse; the parser's message is withheld, as it could quote a value)")
	}
	if doc.Kind == 0 {
		return map[string]string{}, nil
	}
	if doc.Kind != yamlv3.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yamlv3.MappingNode {
		return nil, errors.New("not a YAML map of NAME: value")
	}
	m := doc.Content[0]
	out := make(map[string]string, len(m.Content)/2)
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yamlv3.ScalarNode {
			errs = append(errs, fmt.Errorf("line %d: a key must be a name", k.Line))
			continue
		}
		if err := ValidateSecretName(k.Value); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", k.Line, err))
			continue
		}
		if _, dup := out[k.Value]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s is given twice", k.Line, k.Value))
			continue
		}
		switch {
		case v.Kind != yamlv3.ScalarNode:
			errs = append(errs, fmt.Errorf("line %d: the value of %s is not a single value", k.Line, k.Value))
		case v.ShortTag() == "!!null" && v.Style == 0:
			errs = append(errs, fmt.Errorf(`line %d: %s has no value (write "" for an empty one)`, k.Line, k.Value))
		default:
			out[k.Value] = v.Value
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseDotenv reads .env lines: NAME=VALUE, with an optional "export "
// before the name; blank lines and lines starting with # are skipped. A
// value in single quotes is taken as written; one in double quotes may
// use \n, \t, \", \\ and \$; an unquoted one is trimmed and ends before a
// " #" comment. Nothing is expanded ($VAR stays as written). A name given
// twice, a line without '=' or an unclosed quote is an error naming the
// line, never its value.
func ParseDotenv(data []byte) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i, line := range lines {
		n := i + 1
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, rest, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: not NAME=VALUE", n))
			continue
		}
		if err := ValidateSecretName(name); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		value, err := dotenvValue(strings.TrimLeft(rest, " \t"))
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d (%s): %w", n, name, err))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s is given twice", n, name))
			continue
		}
		out[name] = value
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func dotenvValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	trailing := func(after string) error {
		after = strings.TrimSpace(after)
		if after != "" && !strings.HasPrefix(after, "#") {
			return errors.New("text after the closing quote")
		}
		return nil
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unclosed single quote (a value spans one line)")
		}
		return s[1 : 1+end], trailing(s[2+end:])
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '"':
				return b.String(), trailing(s[i+1:])
			case '\\':
				if i+1 >= len(s) {
					return "", errors.New("unclosed double quote (a value spans one line)")
				}
				i++
				switch e := s[i]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\', '$':
					b.WriteByte(e)
				default:
					return "", fmt.Errorf("unknown escape \\%c in double quotes", e)
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unclosed double quote (a value spans one line)")
	default:
		if i := strings.Index(s, " #"); i >= 0 {
			s = s[:i]
		}
		if i := strings.Index(s, "\t#"); i >= 0 {
			s = s[:i]
		}
		return strings.TrimSpace(s), nil
	}
}

// SecretFlags are --secret and --secrets-file of `pipeline create` and
// `update`.
type SecretFlags struct {
	Secrets []string
	File    string
}

// Register adds the flags to fs.
func (f *SecretFlags) Register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.Secrets, "secret", nil, "secret for the configuration's ${NAME}, as NAME=VALUE or NAME (the value of environment variable NAME); repeatable; stored in the pipeline's Secret, never printed")
	fs.StringVar(&f.File, "secrets-file", "", "file of secrets: .env lines NAME=VALUE, or a YAML map when it ends in .yaml/.yml/.json (- reads stdin)")
}

// Values returns the secrets the flags give (nil when neither is given).
// A name in both the file and --secret takes the --secret value.
func (f *SecretFlags) Values(fs *pflag.FlagSet, stdin io.Reader, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	if !fs.Changed("secret") && !fs.Changed("secrets-file") {
		return nil, nil
	}
	out := map[string]string{}
	if fs.Changed("secrets-file") {
		m, err := ReadSecretsFile(f.File, stdin)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	if fs.Changed("secret") {
		m, err := ParseSecretArgs(f.Secrets, lookupEnv)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}
