package ports

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

const validTable = `name: mine
description: a table of my own
source: my notes
rows:
  - port: 7000
    protocol: tcp
    component: thing
    binding: host
    purpose: does things
  - port: 7100
    endPort: 7105
    protocol: UDP
    component: other
    binding: localhost
    condition: other-on
    purpose: does other things
    source: other notes
  - port: 7200
    endPort: 7200
    protocol: udp
    component: "  padded  "
    binding: host
    condition: mode=a.b
    purpose: equal ends read as one port
`

func TestParseValid(t *testing.T) {
	tb, err := Parse([]byte(validTable), "mine.yaml")
	require.NoError(t, err)
	assert.Equal(t, Table{
		Name:        "mine",
		Description: "a table of my own",
		Source:      "my notes",
		Rows: []Row{
			{Port: 7000, Protocol: TCP, Component: "thing", Binding: BindHost, Purpose: "does things", Source: "my notes", Table: "mine"},
			{Port: 7100, EndPort: 7105, Protocol: UDP, Component: "other", Binding: BindLocalhost, Condition: "other-on", Purpose: "does other things", Source: "other notes", Table: "mine"},
			{Port: 7200, Protocol: UDP, Component: "padded", Binding: BindHost, Condition: "mode=a.b", Purpose: "equal ends read as one port", Source: "my notes", Table: "mine"},
		},
	}, tb)
}

func TestParseRowSourceFallsBackToFileName(t *testing.T) {
	tb, err := Parse([]byte("name: x\nrows:\n  - {port: 1, protocol: tcp, component: c, binding: host, purpose: p}\n"), "/etc/x.yaml")
	require.NoError(t, err)
	assert.Equal(t, "/etc/x.yaml", tb.Rows[0].Source)
}

// row wraps one row (flow or block YAML, indented by four) into a table.
func row(fields string) string {
	return "name: t\nrows:\n  - " + strings.TrimSpace(strings.ReplaceAll(fields, "\n", "\n    ")) + "\n"
}

const okRow = "port: 80\nprotocol: tcp\ncomponent: web\nbinding: host\npurpose: serves pages"

func TestParseErrors(t *testing.T) {
	big := "name: t\nrows:\n" + strings.Repeat("# padding\n", MaxTableSize/10+1)
	cases := []struct {
		name string
		yaml string
		want string // exact error text
	}{
		{"unknown table field", "nmae: t\n" + row(okRow), `bad.yaml:1: nmae: unknown field (known fields: name, description, source, rows)`},
		{"unknown row field", row(okRow + "\nprot: tcp"), `bad.yaml:8: rows[0].prot: unknown field (known fields: port, endPort, protocol, component, binding, condition, purpose, source)`},
		{"port zero", row(strings.Replace(okRow, "port: 80", "port: 0", 1)), `bad.yaml:3: rows[0].port: 0 is out of range 1-65535`},
		{"port too large", row(strings.Replace(okRow, "port: 80", "port: 65536", 1)), `bad.yaml:3: rows[0].port: 65536 is out of range 1-65535`},
		{"port negative", row(strings.Replace(okRow, "port: 80", "port: -1", 1)), `bad.yaml:3: rows[0].port: -1 is out of range 1-65535`},
		{"port huge", row(strings.Replace(okRow, "port: 80", "port: 99999999999999999999", 1)), `bad.yaml:3: rows[0].port: want a port number, got the number 99999999999999999999`},
		{"port as text", row(strings.Replace(okRow, "port: 80", `port: "80"`, 1)), `bad.yaml:3: rows[0].port: want a port number, got "80"`},
		{"port as list", row(strings.Replace(okRow, "port: 80", `port: [80]`, 1)), `bad.yaml:3: rows[0].port: want a port number, got a list`},
		{"range below start", row(okRow + "\nendPort: 79"), `bad.yaml:8: rows[0].endPort: 79 is below port 80 (a range runs from port up to endPort)`},
		{"range end too large", row(okRow + "\nendPort: 70000"), `bad.yaml:8: rows[0].endPort: 70000 is out of range 1-65535`},
		{"unknown protocol", row(strings.Replace(okRow, "protocol: tcp", "protocol: sctp", 1)), `bad.yaml:4: rows[0].protocol: unknown protocol "sctp" (want tcp or udp)`},
		{"protocol as number", row(strings.Replace(okRow, "protocol: tcp", "protocol: 6", 1)), `bad.yaml:4: rows[0].protocol: want text, got the number 6`},
		{"unknown binding", row(strings.Replace(okRow, "binding: host", "binding: public", 1)), `bad.yaml:6: rows[0].binding: unknown binding "public" (want host or localhost)`},
		{"empty component", row(strings.Replace(okRow, "component: web", `component: "  "`, 1)), `bad.yaml:5: rows[0].component: must not be empty`},
		{"empty purpose", row(strings.Replace(okRow, "purpose: serves pages", "purpose:", 1)), `bad.yaml:7: rows[0].purpose: must not be empty`},
		{"multi-line purpose", row(strings.Replace(okRow, "purpose: serves pages", `purpose: "serves\npages"`, 1)), `bad.yaml:7: rows[0].purpose: must be a single line`},
		{"bad condition", row(okRow + "\ncondition: Metrics On"), `bad.yaml:8: rows[0].condition: "Metrics On" is not a condition key (want lower-case words joined by '-', optionally key=value, e.g. "es-metrics" or "cni=cilium")`},
		{"missing port", row(strings.Replace(okRow, "port: 80\n", "", 1)), `bad.yaml:3: rows[0].port: missing: every row needs a port`},
		{"missing protocol", row(strings.Replace(okRow, "protocol: tcp\n", "", 1)), `bad.yaml:3: rows[0].protocol: missing: want tcp or udp`},
		{"missing binding", row(strings.Replace(okRow, "binding: host\n", "", 1)), `bad.yaml:3: rows[0].binding: missing: want host or localhost`},
		{"missing component", row(strings.Replace(okRow, "component: web\n", "", 1)), `bad.yaml:3: rows[0].component: missing: name what listens on the port`},
		{"missing purpose", row(strings.Replace(okRow, "\npurpose: serves pages", "", 1)), `bad.yaml:3: rows[0].purpose: missing: say in one line what the port is for`},
		{"field twice", row(okRow + "\nport: 81"), `bad.yaml:8: rows[0].port: field given twice`},
		{"alias", "name: t\nrows:\n  - port: &p 80\n    endPort: *p\n    protocol: tcp\n    component: c\n    binding: host\n    purpose: p\n", `bad.yaml:4: rows[0].endPort: YAML aliases are not supported`},
		{"row not a mapping", "name: t\nrows:\n  - 80/tcp\n", `bad.yaml:3: rows[0]: want a mapping, got "80/tcp"`},
		{"duplicate row", "name: t\nrows:\n  - {" + strings.ReplaceAll(okRow, "\n", ", ") + "}\n  - {" + strings.ReplaceAll(okRow, "\n", ", ") + "}\n", `bad.yaml:4: rows[1]: duplicates rows[0] (same port, protocol, component and condition)`},
		{"missing name", "rows:\n  - {" + strings.ReplaceAll(okRow, "\n", ", ") + "}\n", `bad.yaml:1: name: missing: every table needs a name`},
		{"bad name", "name: My Ports\nrows:\n  - {" + strings.ReplaceAll(okRow, "\n", ", ") + "}\n", `bad.yaml:1: name: "My Ports" is not a table name (want lower-case letters, digits and '-')`},
		{"missing rows", "name: t\n", `bad.yaml:1: rows: missing: a table needs at least one row`},
		{"empty rows", "name: t\nrows: []\n", `bad.yaml:2: rows: empty: a table needs at least one row`},
		{"rows not a list", "name: t\nrows: {port: 80}\n", `bad.yaml:2: rows: want a list of rows, got a mapping`},
		{"not a mapping", "- port: 80\n", `bad.yaml:1: want a mapping with name, description, source and rows, got a list`},
		{"empty file", "", `bad.yaml: empty file: want a mapping with name, description, source and rows`},
		{"two documents", "name: t\n---\nname: u\n", `bad.yaml:2: more than one YAML document; a file holds exactly one table`},
		{"invalid YAML", "name: [t\n", `bad.yaml: invalid YAML: yaml: line 1: did not find expected ',' or ']'`},
		{"too large", big, `bad.yaml: file is larger than 1048576 bytes`},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "bad.yaml")
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
		if other, dup := seen[tc.want]; dup {
			t.Errorf("cases %q and %q expect the same message", other, tc.name)
		}
		seen[tc.want] = tc.name
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	data := "name: t\nrows:\n" +
		"  - {port: 0, protocol: icmp, component: a, binding: host, purpose: p}\n" +
		"  - {port: 80, protocol: tcp, component: '', binding: lan, purpose: p}\n"
	_, err := Parse([]byte(data), "multi.yaml")
	require.Error(t, err)
	var perrs []*ParseError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *ParseError
		require.True(t, errors.As(e, &pe), "%v is not a ParseError", e)
		perrs = append(perrs, pe)
	}
	got := make([]string, 0, len(perrs))
	for _, pe := range perrs {
		got = append(got, pe.Field)
		assert.Equal(t, "multi.yaml", pe.Source)
	}
	assert.Equal(t, []string{"port", "protocol", "binding", "component"}, got)
	assert.Equal(t, 0, perrs[0].Row)
	assert.Equal(t, 1, perrs[3].Row)
	assert.Equal(t, 4, perrs[3].Line)
}

func TestParseCapsErrorCount(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\nrows:\n")
	for i := 0; i < 80; i++ {
		b.WriteString("  - {port: 0, protocol: tcp, component: a, binding: host, purpose: p}\n")
	}
	_, err := Parse([]byte(b.String()), "many.yaml")
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Len(t, lines, maxErrors+1)
	assert.Equal(t, "many.yaml: 30 more problems not shown", lines[maxErrors])
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(validTable), 0o600))
	tb, err := LoadFile(good)
	require.NoError(t, err)
	assert.Equal(t, "mine", tb.Name)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(row(okRow+"\nextra: 1")), 0o600))
	_, err = LoadFile(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad+":8: rows[0].extra: unknown field")

	_, err = LoadFile(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "read port table: open "+filepath.Join(dir, "missing.yaml"))
}

func TestKeyAndSpec(t *testing.T) {
	cases := []struct {
		row        Row
		key, spec  string
		portString string
	}{
		{Row{Port: 6443, Protocol: TCP}, "6443-TCP", "6443/tcp", "6443"},
		{Row{Port: 8472, Protocol: UDP}, "8472-UDP", "8472/udp", "8472"},
		{Row{Port: 51820, EndPort: 51821, Protocol: UDP}, "51820-51821-UDP", "51820-51821/udp", "51820-51821"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.key, tc.row.Key())
		assert.Equal(t, tc.spec, tc.row.Spec())
		assert.Equal(t, tc.portString, tc.row.PortString())
	}
	r := Row{Port: 2379, EndPort: 2380}
	assert.True(t, r.Covers(2379))
	assert.True(t, r.Covers(2380))
	assert.False(t, r.Covers(2381))
	assert.False(t, r.Covers(2378))
	assert.True(t, Row{Port: 80}.Covers(80))
	assert.False(t, Row{Port: 80}.Covers(81))
}

// FuzzParse checks that Parse never panics, that whatever it accepts is
// valid, and that an accepted table survives encoding and parsing again.
func FuzzParse(f *testing.F) {
	// Small seeds keep the fuzzer fast (it minimises every new input); the
	// built-in tables are covered by TestBuiltinLoads.
	k3s, err := builtinFS.ReadFile("tables/k3s.yaml")
	require.NoError(f, err)
	head, _, _ := strings.Cut(string(k3s), "  - port: 8472")
	f.Add([]byte(head))
	f.Add([]byte(validTable))
	f.Add([]byte(row(okRow + "\nendPort: 79")))
	f.Add([]byte("name: t\nrows:\n  - port: &p 80\n    endPort: *p\n"))
	f.Add([]byte("name: t\nrows: [{port: 0x50, protocol: TCP, component: c, binding: host, purpose: p}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := Parse(data, "fuzz.yaml")
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.True(t, validName(tb.Name), "name %q", tb.Name)
		require.NotEmpty(t, tb.Rows)
		for i, r := range tb.Rows {
			require.Empty(t, validateRow(r), "row %d: %+v", i, r)
			require.NotEqual(t, r.Port, r.EndPort, "row %d keeps an equal-ended range", i)
			require.NotEmpty(t, r.Source)
		}
		out, err := yaml.Marshal(tb)
		require.NoError(t, err)
		again, err := Parse(out, "again.yaml")
		require.NoError(t, err, "re-parse of:\n%s", out)
		require.Equal(t, tb, again)
	})
}

func TestAddFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}
	mine := write("mine.yaml", validTable)
	clash := write("clash.yaml", strings.Replace(validTable, "name: mine", "name: k3s", 1))
	bad := write("bad.yaml", "name: x\nrows: []\n")
	all := builtin(t)

	got, err := AddFiles(all, []string{mine})
	require.NoError(t, err)
	require.Len(t, got, len(all)+1)
	assert.Equal(t, "mine", got[len(all)].Name)
	assert.Len(t, all, len(BuiltinNames()), "input untouched")

	_, err = AddFiles(all, []string{clash})
	require.EqualError(t, err, clash+`: table name "k3s" is already taken; give the table another name`)
	_, err = AddFiles(all, []string{mine, mine})
	require.EqualError(t, err, mine+`: table name "mine" is already taken; give the table another name`)
	_, err = AddFiles(all, []string{bad})
	require.EqualError(t, err, bad+":2: rows: empty: a table needs at least one row")
}
