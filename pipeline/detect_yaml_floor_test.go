package pipeline

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// aliasExtra is the exact number of nodes the aliases of content add when
// expanded (for small documents only).
func aliasExtra(t *testing.T, content string) int {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(content), &doc))
	var direct, expanded func(n *yaml.Node) int
	direct = func(n *yaml.Node) int {
		total := 1
		for _, c := range n.Content {
			total += direct(c)
		}
		return total
	}
	expanded = func(n *yaml.Node) int {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return expanded(n.Alias)
		}
		total := 1
		for _, c := range n.Content {
			total += expanded(c)
		}
		return total
	}
	return expanded(&doc) - direct(&doc)
}

// The floor read from the text never exceeds what the aliases really add,
// so refusing on it never refuses a document the exact check would accept.
func TestAliasExpansionFloorIsAFloor(t *testing.T) {
	cases := map[string]string{
		"block mapping":       "x: &p\n  name: tcp\n  port: 5170\npipeline:\n  inputs: [*p, *p, *p]\n",
		"sequence items":      "base: &b\n  - a\n  - b\n  - c\nlist:\n  - *b\n  - *b\n",
		"items of mappings":   "ins: &i\n  - name: tcp\n    port: 1\n  - name: udp\n    port: 2\npipeline:\n  inputs: *i\n  more: *i\n",
		"block scalar inside": "x: &p\n  name: lua\n  code: |\n    a: 1\n    b: 2\n    - c\n  after: 1\ny: [*p, *p]\n",
		"comments and blanks": "x: &p\n  # a: comment\n\n  name: tcp # port: 9\n  port: 1\ny: *p\n",
		"plain continuation":  "x: &p\n  desc: a long\n    plain text that goes on\n    and on\n  port: 1\ny: [*p, *p]\n",
		"inline anchors":      "a: &a 5170\nb: &m {x: 1, y: 2}\nc: [*a, *a, *m]\n",
		"nested anchors":      "x: &outer\n  inner: &in\n    k: v\n    j: w\n  z: 1\ny: [*outer, *in, *in]\n",
		"anchor on item":      "s:\n  - &it\n    name: a\n    port: 1\n  - *it\n  - *it\n",
		// The smallest definition of a redefined anchor counts: 0 here.
		"redefined anchor":           "a: &p\n  k1: v\n  k2: v\n  k3: v\nb: *p\nc: &p 1\nd: [*p, *p]\n",
		"quoted keys":                "x: &p\n  \"a\": 1\n  'b': 2\ny: *p\n",
		"no aliases":                 "pipeline:\n  inputs:\n    - name: tcp\n      port: 5170\n",
		"flow anchor on one line":    "x: &p [a, b, c, d]\ny: [*p, *p, *p]\n",
		"flow anchor over lines":     "x: &p {\n  a: 1,\n  b: 2,\n  c: 3\n}\ny: [*p, *p]\n",
		"flow with quoted commas":    "x: &p [\"a,b,c\", 'd,e', f]\ny: [*p, *p]\n",
		"trailing comma":             "x: &p [a, b,]\ny: [*p, *p]\n",
		"plain scalar with commas":   "x: &p\n  desc: a, b, c, d\n  k: v\ny: [*p, *p]\n",
		"nested flow anchors":        "x: &o [&i [a, b, c], d]\ny: [*o, *i, *i]\n",
		"flow inside a block anchor": "x: &p\n  ports: [1, 2, 3]\n  k: v\ny: [*p, *p]\n",
		"tagged and anchored":        "x: &p !!map\n  a: 1\n  b: 2\ny: *p\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			floor, exact := aliasExpansionFloor(content), aliasExtra(t, content)
			assert.LessOrEqual(t, floor, exact, "floor %d, exact %d", floor, exact)
			if strings.Contains(content, "*") && name != "redefined anchor" {
				assert.Positive(t, floor, "aliases of blocks are seen")
			}
		})
	}
}

func TestIsBlockScalarStart(t *testing.T) {
	for s, want := range map[string]bool{
		"code: |": true, "code: |-": true, "code: >+2": true, "code: > # folded": true,
		"code: a|": false, "code: '|'": false, "- |": true, "a: b": false, "|": true,
	} {
		assert.Equal(t, want, isBlockScalarStart(s), s)
	}
}

// FuzzAliasExpansionFloor: on any document yaml.v3 reads as a mapping (what
// detection accepts), the floor is at most the exact expansion, so the
// early refusal never refuses a document the exact check accepts.
func FuzzAliasExpansionFloor(f *testing.F) {
	for _, s := range []string{
		"x: &p\n  a: 1\ny: [*p, *p]\n", "x: &p [a, b]\ny: *p\n", "a: &a {k: [1, 2], j: 'x,y'}\nb: [*a, *a]\n",
		"- &i\n  - a\n  - b\n- *i\n", "x: &p |\n  a, b\n  c: d\ny: *p\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		if len(content) > 4096 {
			return
		}
		var doc yaml.Node
		if yaml.Unmarshal([]byte(content), &doc) != nil || checkAliasExpansion(&doc, 1_000_000) != nil {
			return
		}
		// Detection reads only a mapping at the top (anything else is
		// refused), so the early refusal matters only there.
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return
		}
		if floor, exact := aliasExpansionFloor(content), aliasExtra(t, content); floor > exact {
			t.Fatalf("floor %d > exact %d for %q", floor, exact, content)
		}
	})
}
