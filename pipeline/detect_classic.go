package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// detectClassic reads Fluent Bit's classic format:
//
//	@SET port=5170
//	[INPUT]
//	    Name tcp
//	    Port ${port}
//
// Section and key names are case-insensitive; '#' starts a comment line.
func detectClassic(content string, extVars map[string]string) (Detection, error) {
	const format = v1alpha1.ConfigFormatClassic
	vars := maps.Clone(extVars)
	if vars == nil {
		vars = map[string]string{}
	}
	var (
		plugins  []plugin
		warnings []string
		errs     []error
		current  *plugin // nil outside [INPUT]/[OUTPUT]
		inSect   bool
		counts   = map[string]int{}
	)
	fail := func(line int, msg string, args ...any) {
		errs = append(errs, &ConfigError{Format: format, Line: line, Msg: fmt.Sprintf(msg, args...)})
	}
	flush := func() {
		if current != nil {
			plugins = append(plugins, *current)
			current = nil
		}
	}
	for i, raw := range strings.Split(content, "\n") {
		lineNo := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "@"):
			cmd, arg, _ := strings.Cut(line, " ")
			arg = strings.TrimSpace(arg)
			switch strings.ToUpper(cmd) {
			case "@SET":
				k, v, ok := strings.Cut(arg, "=")
				if !ok || strings.TrimSpace(k) == "" {
					fail(lineNo, "@SET %q: want @SET NAME=VALUE", arg)
					continue
				}
				vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
			case "@INCLUDE":
				warnings = append(warnings, fmt.Sprintf(
					"line %d: @INCLUDE %s is not read; ports of plugins defined there are not detected", lineNo, arg))
			}
		case strings.HasPrefix(line, "["):
			end := strings.Index(line, "]")
			if end < 0 {
				fail(lineNo, "section header %q has no closing ]", line)
				return Detection{}, errors.Join(errs...)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" {
				fail(lineNo, "unexpected %q after section header %s", rest, line[:end+1])
				return Detection{}, errors.Join(errs...)
			}
			name := strings.ToUpper(strings.TrimSpace(line[1:end]))
			if name == "" {
				fail(lineNo, "empty section header")
				return Detection{}, errors.Join(errs...)
			}
			flush()
			inSect = true
			section := ""
			switch name {
			case "INPUT":
				section = "inputs"
			case "OUTPUT":
				section = "outputs"
			}
			if section != "" {
				current = &plugin{section: section, index: counts[section], line: lineNo, props: map[string]prop{}}
				counts[section]++
			}
		default:
			if !inSect {
				fail(lineNo, "%q is outside any [SECTION]", line)
				return Detection{}, errors.Join(errs...)
			}
			key, value, ok := cutSpace(line)
			if !ok {
				fail(lineNo, "key %q has no value", line)
				continue
			}
			if current != nil {
				k := strings.ToLower(key)
				if _, dup := current.props[k]; dup && k != "add_label" {
					// Fluent Bit keeps the last value; say so when it matters.
					if k == "port" || k == "name" || k == "mode" {
						warnings = append(warnings, fmt.Sprintf("line %d: %s set twice in %s[%d]; the last value is used",
							lineNo, key, current.section, current.index))
					}
				}
				current.props[k] = prop{value: value, line: lineNo}
			}
		}
	}
	flush()
	if len(errs) > 0 {
		return Detection{}, errors.Join(errs...)
	}
	det, err := portsOf(format, plugins, vars)
	det.Warnings = append(warnings, det.Warnings...)
	if err != nil {
		return Detection{}, err
	}
	return det, nil
}

// cutSpace splits "Key   value with spaces" at the first run of blanks.
func cutSpace(line string) (key, value string, ok bool) {
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, "", false
	}
	value = strings.TrimSpace(line[i:])
	return line[:i], value, value != ""
}
