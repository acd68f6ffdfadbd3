package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// detectYAML reads Fluent Bit's YAML format:
//
//	env:
//	  PORT: 5170
//	pipeline:
//	  inputs:
//	    - name: tcp
//	      port: ${PORT}
//	  outputs:
//	    - name: prometheus_exporter
//
// Keys are matched case-insensitively, as Fluent Bit does for properties.
func detectYAML(content string, extVars map[string]string) (Detection, error) {
	const format = v1alpha1.ConfigFormatYAML
	fail := func(line int, msg string, args ...any) error {
		return &ConfigError{Format: format, Line: line, Msg: fmt.Sprintf(msg, args...)}
	}
	if n := countAliases(content); n > MaxYAMLAliases {
		return Detection{}, &ConfigError{Format: format,
			Msg: fmt.Sprintf("%d aliases (*name): at most %d are read; refused (write the repeated parts out)", n, MaxYAMLAliases)}
	}
	if n := aliasExpansionFloor(content); n > MaxYAMLAliasNodes {
		return Detection{}, &ConfigError{Format: format,
			Msg: fmt.Sprintf("aliases expand to more than %d nodes (at least %d, counted before parsing); refused (write the repeated parts out, or use fewer aliases)", MaxYAMLAliasNodes, n)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(content), &doc); err != nil {
		return Detection{}, &ConfigError{Format: format, Msg: "not valid YAML: " + yamlErrText(err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return Detection{}, nil // empty document
	}
	if err := checkAliasExpansion(&doc, MaxYAMLAliasNodes); err != nil {
		return Detection{}, &ConfigError{Format: format, Msg: err.Error()}
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return Detection{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return Detection{}, fail(root.Line, "the top level must be a mapping of sections (service, pipeline, …), not %s", kindName(root))
	}
	vars := maps.Clone(extVars)
	if vars == nil {
		vars = map[string]string{}
	}
	var det Detection
	var plugins []plugin
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], deref(root.Content[i+1])
		switch strings.ToLower(key.Value) {
		case "env":
			if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
				continue
			}
			if val.Kind != yaml.MappingNode {
				errs = append(errs, fail(val.Line, "env must be a mapping of NAME: value, not %s", kindName(val)))
				continue
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				k, v := val.Content[j], deref(val.Content[j+1])
				if v.Kind != yaml.ScalarNode {
					errs = append(errs, fail(v.Line, "env %s must be a plain value, not %s", k.Value, kindName(v)))
					continue
				}
				vars[k.Value] = v.Value
			}
		case "includes", "@include":
			det.Warnings = append(det.Warnings, fmt.Sprintf(
				"line %d: included files are not read; ports of plugins defined there are not detected", key.Line))
		case "pipeline":
			if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
				continue
			}
			if val.Kind != yaml.MappingNode {
				errs = append(errs, fail(val.Line, "pipeline must be a mapping with inputs/filters/outputs, not %s", kindName(val)))
				continue
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				k, v := val.Content[j], deref(val.Content[j+1])
				section := strings.ToLower(k.Value)
				if section != "inputs" && section != "outputs" {
					continue
				}
				ps, err := yamlPlugins(format, section, v)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				plugins = append(plugins, ps...)
			}
		}
	}
	if len(errs) > 0 {
		return Detection{}, errors.Join(errs...)
	}
	found, err := portsOf(format, plugins, vars)
	if err != nil {
		return Detection{}, err
	}
	det.Ports = found.Ports
	det.Warnings = append(det.Warnings, found.Warnings...)
	return det, nil
}

func yamlPlugins(format v1alpha1.ConfigFormat, section string, list *yaml.Node) ([]plugin, error) {
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, &ConfigError{Format: format, Line: list.Line,
			Msg: fmt.Sprintf("pipeline.%s must be a list of plugins, not %s", section, kindName(list))}
	}
	var out []plugin
	var errs []error
	for idx, item := range list.Content {
		item = deref(item)
		if item.Kind != yaml.MappingNode {
			errs = append(errs, &ConfigError{Format: format, Line: item.Line,
				Msg: fmt.Sprintf("%s[%d] must be a mapping of properties, not %s", section, idx, kindName(item))})
			continue
		}
		pl := plugin{section: section, index: idx, line: item.Line, props: map[string]prop{}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], deref(item.Content[j+1])
			key := strings.ToLower(k.Value)
			if v.Kind != yaml.ScalarNode {
				if key == "name" || key == "port" || key == "mode" || key == "listen" || key == "host" || key == "unix_path" {
					errs = append(errs, &ConfigError{Format: format, Line: v.Line,
						Msg: fmt.Sprintf("%s[%d]: %s must be a plain value, not %s", section, idx, k.Value, kindName(v))})
				}
				continue // processors and other nested settings
			}
			pl.props[key] = prop{value: v.Value, line: v.Line}
		}
		out = append(out, pl)
	}
	return out, errors.Join(errs...)
}

// MaxYAMLAliasNodes bounds how many nodes the aliases (*name) of a YAML
// configuration may add to it when expanded. The parsed document itself is
// bounded by its size; aliases are not, since each may repeat a large
// anchored node (the "billion laughs" attack), so a configuration whose
// aliases expand beyond this many nodes is refused before anything walks it.
const MaxYAMLAliasNodes = 100_000

// MaxYAMLAliases bounds the aliases of a YAML configuration, counted before
// it is parsed, so that a document made of little else is refused without
// building its node tree. Configurations written by hand use a few.
const MaxYAMLAliases = 10_000

// countAliases counts what may be aliases: a '*' at the start of a token
// (after a line start, blank, '[', '{', ',', ':' or '-') followed by a
// character of an anchor name. It may count a '*' inside a quoted or plain
// string too, so it over-counts, never under-counts.
func countAliases(content string) int {
	n := 0
	for i := 0; i+1 < len(content); i++ {
		if content[i] != '*' {
			continue
		}
		if i > 0 {
			switch content[i-1] {
			case ' ', '\t', '\n', '\r', '[', '{', ',', ':', '-':
			default:
				continue
			}
		}
		switch content[i+1] {
		case ' ', '\t', '\n', '\r', '[', ']', '{', '}', ',':
			continue
		}
		n++
	}
	return n
}

// checkAliasExpansion refuses a document whose aliases add more than budget
// nodes when expanded, or that contains an alias to a node enclosing it. It
// runs in time linear in the parsed document: the expanded size of each
// anchored node is computed once.
func checkAliasExpansion(doc *yaml.Node, budget int) error {
	direct := 0
	var count func(n *yaml.Node)
	count = func(n *yaml.Node) {
		direct++
		for _, c := range n.Content {
			count(c)
		}
	}
	count(doc)
	limit := direct + budget
	// Every node an alias can reach lies under an anchored node; the size of
	// each anchored node is remembered, so each node is counted once.
	sizes := map[*yaml.Node]int{}
	const inProgress = -1
	var failed error
	errBudget := fmt.Errorf("aliases expand to more than %d nodes beyond the %d of the document; refused (write the repeated parts out, or use fewer aliases)", budget, direct)
	// size returns the expanded node count of n, or limit+1 once failed.
	var size func(n *yaml.Node, memo bool) int
	size = func(n *yaml.Node, memo bool) int {
		if failed != nil {
			return limit + 1
		}
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return 1
			}
			return size(n.Alias, true)
		}
		memo = memo || n.Anchor != ""
		if memo {
			if s, ok := sizes[n]; ok {
				if s == inProgress {
					failed = fmt.Errorf("line %d: anchor &%s contains an alias to itself", n.Line, n.Anchor)
					return limit + 1
				}
				return s
			}
			sizes[n] = inProgress
		}
		total := 1
		for _, c := range n.Content {
			total += size(c, false)
			if total > limit {
				if failed == nil {
					failed = errBudget
				}
				return limit + 1
			}
		}
		if memo {
			sizes[n] = total
		}
		return total
	}
	size(doc, false)
	return failed
}

// deref follows YAML aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "an empty document"
}

// yamlErrText drops the library's "yaml: " prefix; the ConfigError says YAML.
func yamlErrText(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
