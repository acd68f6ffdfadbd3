package ports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxTableSize is the largest table file Parse accepts, in bytes.
const MaxTableSize = 1 << 20

// maxErrors caps how many problems one Parse call reports.
const maxErrors = 50

// ParseError is one problem found in a table file. Parse returns every problem
// it finds, joined with errors.Join; each one names the file, the line, the
// row and the field.
type ParseError struct {
	Source string // file name as given to Parse
	Line   int    // 1-based; 0 when unknown
	Row    int    // index into rows; -1 for a table-level problem
	Field  string // YAML field name; "" when the problem is about a whole row or document
	Msg    string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	path := e.Field
	if e.Row >= 0 {
		path = "rows[" + strconv.Itoa(e.Row) + "]"
		if e.Field != "" {
			path += "." + e.Field
		}
	}
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadFile reads and parses a table file (the --ports-file flag).
func LoadFile(path string) (Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return Table{}, fmt.Errorf("read port table: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTableSize+1))
	if err != nil {
		return Table{}, fmt.Errorf("read port table %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse reads one table from YAML. It is strict: unknown fields, values of the
// wrong type, ports outside 1-65535, ranges that end below their start,
// unknown protocols or bindings, empty components or purposes, malformed
// condition keys and duplicate rows are all errors. A row without a source
// inherits the table's source, or else the source argument. An endPort equal
// to port is read as a single port.
func Parse(data []byte, source string) (Table, error) {
	p := parser{source: source}
	t := p.parse(data)
	if len(p.errs) > 0 {
		return Table{}, p.err()
	}
	return t, nil
}

type parser struct {
	source  string
	errs    []error
	dropped int
}

func (p *parser) fail(line, row int, field, format string, args ...any) {
	if len(p.errs) >= maxErrors {
		p.dropped++
		return
	}
	p.errs = append(p.errs, &ParseError{
		Source: p.source, Line: line, Row: row, Field: field,
		Msg: fmt.Sprintf(format, args...),
	})
}

func (p *parser) err() error {
	if p.dropped > 0 {
		p.errs = append(p.errs, fmt.Errorf("%s: %d more problems not shown", p.source, p.dropped))
	}
	if len(p.errs) == 1 {
		return p.errs[0]
	}
	return errors.Join(p.errs...)
}

var tableFields = []string{"name", "description", "source", "rows"}

var rowFields = []string{"port", "endPort", "protocol", "component", "binding", "condition", "purpose", "source"}

func (p *parser) parse(data []byte) Table {
	var t Table
	if len(data) > MaxTableSize {
		p.fail(0, -1, "", "file is larger than %d bytes", MaxTableSize)
		return t
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.fail(0, -1, "", "empty file: want a mapping with name, description, source and rows")
		} else {
			p.errs = append(p.errs, fmt.Errorf("%s: invalid YAML: %w", p.source, err))
		}
		return t
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.fail(next.Line, -1, "", "more than one YAML document; a file holds exactly one table")
		return t
	} else if !errors.Is(err, io.EOF) {
		p.errs = append(p.errs, fmt.Errorf("%s: invalid YAML: %w", p.source, err))
		return t
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		p.fail(root.Line, -1, "", "want a mapping with name, description, source and rows, got %s", kindName(root))
		return t
	}
	var rowsNode *yaml.Node
	p.fields(root, -1, tableFields, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			t.Name, _ = p.str(v, -1, key)
		case "description":
			t.Description, _ = p.str(v, -1, key)
		case "source":
			t.Source, _ = p.str(v, -1, key)
		case "rows":
			rowsNode = v
		}
	})
	switch {
	case strings.TrimSpace(t.Name) == "":
		p.fail(root.Line, -1, "name", "missing: every table needs a name")
	case !validName(t.Name):
		p.fail(root.Line, -1, "name", "%q is not a table name (want lower-case letters, digits and '-')", t.Name)
	}
	switch {
	case rowsNode == nil:
		p.fail(root.Line, -1, "rows", "missing: a table needs at least one row")
	case rowsNode.Kind != yaml.SequenceNode:
		p.fail(rowsNode.Line, -1, "rows", "want a list of rows, got %s", kindName(rowsNode))
	case len(rowsNode.Content) == 0:
		p.fail(rowsNode.Line, -1, "rows", "empty: a table needs at least one row")
	default:
		t.Rows = p.rows(rowsNode, t)
	}
	return t
}

type rowIdentity struct {
	port, end            int
	proto                Protocol
	component, condition string
}

func (p *parser) rows(seq *yaml.Node, t Table) []Row {
	rows := make([]Row, 0, len(seq.Content))
	seen := make(map[rowIdentity]int, len(seq.Content))
	for i, n := range seq.Content {
		r, ok := p.row(n, i, t)
		if !ok {
			continue
		}
		id := rowIdentity{r.Port, r.EndPort, r.Protocol, r.Component, r.Condition}
		if j, dup := seen[id]; dup {
			p.fail(n.Line, i, "", "duplicates rows[%d] (same port, protocol, component and condition)", j)
			continue
		}
		seen[id] = i
		rows = append(rows, r)
	}
	return rows
}

// row reads one row; ok is false when it had any problem.
func (p *parser) row(n *yaml.Node, i int, t Table) (Row, bool) {
	before := len(p.errs) + p.dropped
	var r Row
	if n.Kind != yaml.MappingNode {
		p.fail(n.Line, i, "", "want a mapping, got %s", kindName(n))
		return r, false
	}
	// read holds, per field present in the row, whether its value was read.
	read := map[string]bool{}
	p.fields(n, i, rowFields, func(key string, v *yaml.Node) {
		var s string
		switch key {
		case "port":
			r.Port, read[key] = p.port(v, i, key)
		case "endPort":
			r.EndPort, read[key] = p.port(v, i, key)
		case "protocol":
			s, read[key] = p.str(v, i, key)
			r.Protocol = Protocol(strings.ToLower(strings.TrimSpace(s)))
		case "binding":
			s, read[key] = p.str(v, i, key)
			r.Binding = Binding(strings.ToLower(strings.TrimSpace(s)))
		case "component":
			r.Component, read[key] = p.str(v, i, key)
		case "condition":
			r.Condition, read[key] = p.str(v, i, key)
		case "purpose":
			r.Purpose, read[key] = p.str(v, i, key)
		case "source":
			r.Source, read[key] = p.str(v, i, key)
		}
	})
	for _, req := range []struct{ field, hint string }{
		{"port", "every row needs a port"},
		{"protocol", "want tcp or udp"},
		{"binding", "want host or localhost"},
		{"component", "name what listens on the port"},
		{"purpose", "say in one line what the port is for"},
	} {
		if _, ok := read[req.field]; !ok {
			p.fail(n.Line, i, req.field, "missing: %s", req.hint)
		}
	}
	if r.EndPort == r.Port {
		r.EndPort = 0
	}
	r.Component = strings.TrimSpace(r.Component)
	r.Purpose = strings.TrimSpace(r.Purpose)
	r.Condition = strings.TrimSpace(r.Condition)
	for _, fe := range validateRow(r) {
		// Report only fields that were given and read: a missing or
		// unreadable field has been reported already.
		if ok := read[fe.field]; ok {
			p.fail(valueLine(n, fe.field), i, fe.field, "%s", fe.msg)
		}
	}
	r.Source = strings.TrimSpace(r.Source)
	if r.Source == "" {
		r.Source = t.Source
	}
	if r.Source == "" {
		r.Source = p.source
	}
	r.Table = t.Name
	return r, len(p.errs)+p.dropped == before
}

// fields walks a mapping, rejecting unknown and repeated keys and aliases,
// and calls fn for each known key.
func (p *parser) fields(m *yaml.Node, row int, known []string, fn func(key string, v *yaml.Node)) {
	seen := map[string]bool{}
	for j := 0; j+1 < len(m.Content); j += 2 {
		k, v := m.Content[j], m.Content[j+1]
		if k.Kind != yaml.ScalarNode {
			p.fail(k.Line, row, "", "want a field name, got %s", kindName(k))
			continue
		}
		if !contains(known, k.Value) {
			p.fail(k.Line, row, k.Value, "unknown field (known fields: %s)", strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			p.fail(k.Line, row, k.Value, "field given twice")
			continue
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode {
			p.fail(v.Line, row, k.Value, "YAML aliases are not supported")
			continue
		}
		fn(k.Value, v)
	}
}

// str reads a string scalar; null reads as "".
func (p *parser) str(v *yaml.Node, row int, field string) (string, bool) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return "", true
	}
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
		p.fail(v.Line, row, field, "want text, got %s", kindName(v))
		return "", false
	}
	return v.Value, true
}

// port reads an integer scalar; the range is checked by validateRow.
func (p *parser) port(v *yaml.Node, row int, field string) (int, bool) {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
		p.fail(v.Line, row, field, "want a port number, got %s", kindName(v))
		return 0, false
	}
	var n int64
	if err := v.Decode(&n); err != nil || n < 0 || n > 1<<20 {
		p.fail(v.Line, row, field, "%s is out of range %d-%d", v.Value, MinPort, MaxPort)
		return 0, false
	}
	return int(n), true
}

// valueLine finds the line of field's value in mapping m, or m's own line.
func valueLine(m *yaml.Node, field string) int {
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == field {
			return m.Content[j+1].Line
		}
	}
	return m.Line
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			return "the number " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return strconv.Quote(n.Value)
		}
		return "a value tagged " + n.Tag
	}
	return "an unknown YAML node"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AddFiles loads each table file (LoadFile) and appends it to tables. A file
// whose table name is already taken (by a built-in table or an earlier file)
// is an error, so every table name selects exactly one table.
func AddFiles(tables []Table, paths []string) ([]Table, error) {
	out := slices.Clone(tables)
	for _, p := range paths {
		t, err := LoadFile(p)
		if err != nil {
			return nil, err
		}
		for _, have := range out {
			if have.Name == t.Name {
				return nil, fmt.Errorf("%s: table name %q is already taken; give the table another name", p, t.Name)
			}
		}
		out = append(out, t)
	}
	return out, nil
}
