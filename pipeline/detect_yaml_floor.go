package pipeline

import "strings"

// aliasExpansionFloor is a lower bound, read from the text before anything
// is parsed, of the nodes the aliases of a YAML document add when expanded.
// Each *name stands for the node anchored &name, and so adds at least:
//   - a block collection: one per key or item line ("k: v", "k:", "- v";
//     blank lines, comments, continuation lines and block scalars' lines
//     not counted), plus the separators of flow collections inside it;
//   - a flow collection ([…] or {…}, on one line or several): one per
//     separating comma;
//   - a scalar: nothing (the alias node itself is one node already).
//
// Nested aliases are not followed, so the real expansion is never smaller
// (TestAliasExpansionFloorIsAFloor). A document whose floor is past the
// budget is refused without building its node tree: the tree of a 512 KiB
// document costs tens of MiB, this scan a few.
func aliasExpansionFloor(content string) int {
	f := floorScan{sizes: map[string]int{}, aliases: map[string]int{}}
	for _, line := range strings.Split(content, "\n") {
		f.line(strings.TrimRight(line, " \t\r"))
	}
	for len(f.blocks) > 0 {
		f.closeBlock()
	}
	total := 0
	for name, n := range f.aliases {
		total += n * f.sizes[name]
		if total > 1<<40 {
			break
		}
	}
	return total
}

type floorAnchor struct {
	name   string
	indent int // block: the anchoring line's indentation; flow: the depth
	start  int // counted nodes when it opened
}

type floorScan struct {
	sizes        map[string]int // smallest size seen per anchor name
	aliases      map[string]int
	blocks       []floorAnchor // open block anchors
	flows        []floorAnchor // open flow anchors
	counted      int           // nodes counted so far
	depth        int           // flow depth (> 0: inside a flow collection)
	pending      string        // an anchor waiting for its value
	scalarIndent int           // inside a block scalar started at this indentation, if ≥ 0
	inScalar     bool
}

func (f *floorScan) record(name string, size int) {
	if old, ok := f.sizes[name]; !ok || size < old {
		f.sizes[name] = size
	}
}

func (f *floorScan) closeBlock() {
	top := f.blocks[len(f.blocks)-1]
	f.blocks = f.blocks[:len(f.blocks)-1]
	f.record(top.name, f.counted-top.start)
}

func (f *floorScan) line(line string) {
	if f.depth > 0 {
		f.flow(line, 0)
		return
	}
	trimmed := strings.TrimLeft(line, " \t")
	indent := len(line) - len(trimmed)
	if trimmed == "" {
		return
	}
	if f.inScalar {
		if indent > f.scalarIndent {
			return
		}
		f.inScalar = false
	}
	if strings.HasPrefix(trimmed, "#") {
		return
	}
	for len(f.blocks) > 0 && indent <= f.blocks[len(f.blocks)-1].indent {
		f.closeBlock()
	}
	if isBlockScalarStart(trimmed) {
		f.inScalar, f.scalarIndent = true, indent
	}
	// The value: after the item markers and the key.
	v := trimmed
	for v == "-" || strings.HasPrefix(v, "- ") {
		f.counted++
		v = strings.TrimLeft(strings.TrimPrefix(v, "-"), " \t")
	}
	if v != "" && (v[0] == '"' || v[0] == '\'') {
		// A quoted key, or a quoted scalar.
		if j := skipQuoted(v, 0); j+1 < len(v) && v[j+1] == ':' && (j+2 == len(v) || v[j+2] == ' ' || v[j+2] == '\t') {
			f.counted++
			v = strings.TrimLeft(v[j+2:], " \t")
		}
	} else if i := strings.Index(v, ": "); i >= 0 && !strings.ContainsAny(v[:1], "[{&*") {
		f.counted++
		v = strings.TrimLeft(v[i+2:], " \t")
	} else if strings.HasSuffix(v, ":") && !strings.ContainsAny(v[:1], "[{&*") {
		f.counted++
		v = ""
	}
	for v != "" {
		switch v[0] {
		case '#':
			v = ""
		case '&':
			name, rest := cutName(v[1:])
			if rest == "" || rest[0] == '#' {
				// The block below the line is its value.
				f.blocks = append(f.blocks, floorAnchor{name: name, indent: indent, start: f.counted})
				return
			}
			f.pending, v = name, rest
		case '!':
			_, v = cutName(v[1:])
			if (v == "" || v[0] == '#') && f.pending != "" {
				// "&p !!map": the block below is the anchored value.
				f.blocks = append(f.blocks, floorAnchor{name: f.pending, indent: indent, start: f.counted})
				f.pending = ""
				return
			}
		case '*':
			name, _ := cutName(v[1:])
			f.aliases[name]++
			v = ""
		case '[', '{':
			f.flow(v, 0)
			return
		default:
			if f.pending != "" {
				f.record(f.pending, 0)
				f.pending = ""
			}
			v = ""
		}
	}
}

// flow scans s from i inside (or at the start of) a flow collection.
func (f *floorScan) flow(s string, i int) {
	tokenStart, plain := true, false
	for ; i < len(s); i++ {
		c := s[i]
		if plain {
			// A plain scalar runs to a flow indicator or ": " (no
			// anchors, aliases or quotes inside it: "a *b" is one scalar).
			switch {
			case c == ',' || c == '[' || c == ']' || c == '{' || c == '}':
				plain = false
			case c == ':' && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t'):
				plain = false
			case c == '#' && (s[i-1] == ' ' || s[i-1] == '\t'):
				return
			default:
				continue
			}
		}
		switch {
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return
		case (c == '"' || c == '\'') && tokenStart:
			i = skipQuoted(s, i)
			if f.pending != "" {
				f.record(f.pending, 0)
				f.pending = ""
			}
			tokenStart = false
			continue
		case (c == '[' || c == '{') && tokenStart:
			f.depth++
			if f.pending != "" {
				f.flows = append(f.flows, floorAnchor{name: f.pending, indent: f.depth, start: f.counted})
				f.pending = ""
			}
		case c == ']' || c == '}':
			if n := len(f.flows); n > 0 && f.flows[n-1].indent == f.depth {
				f.record(f.flows[n-1].name, f.counted-f.flows[n-1].start)
				f.flows = f.flows[:n-1]
			}
			if f.depth--; f.depth <= 0 {
				f.depth = 0
				return
			}
		case c == ',':
			f.counted++
		case c == '&' && tokenStart:
			name, rest := cutName(s[i+1:])
			f.pending = name
			i = len(s) - len(rest) - 1
			continue
		case c == '*' && tokenStart:
			name, rest := cutName(s[i+1:])
			f.aliases[name]++
			i = len(s) - len(rest) - 1
			tokenStart = false
			continue
		case c == ' ' || c == '\t' || c == ':':
		default:
			if tokenStart {
				plain = true
				if f.pending != "" {
					f.record(f.pending, 0)
					f.pending = ""
				}
			}
		}
		tokenStart = c == ' ' || c == '\t' || c == '[' || c == '{' || c == ',' || c == ':'
	}
}

// cutName splits an anchor, alias or tag name from what follows it (blanks
// trimmed). A name may hold ':' ("&a:" anchors "a:").
func cutName(s string) (name, rest string) {
	end := strings.IndexAny(s, " \t,[]{}")
	if end < 0 {
		end = len(s)
	}
	return s[:end], strings.TrimLeft(s[end:], " \t")
}

// skipQuoted returns the index of the quote that closes the quoted scalar
// opening at s[i] (or the end of s: it goes on on the next line, which a
// floor may skip).
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case q == '"' && s[j] == '\\':
			j++
		case s[j] == q && q == '\'' && j+1 < len(s) && s[j+1] == '\'':
			j++
		case s[j] == q:
			return j
		}
	}
	return len(s)
}

// isBlockScalarStart reports a line whose value is a block scalar (| or >,
// with optional indentation and chomping indicators).
func isBlockScalarStart(s string) bool {
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimRight(s[:i], " \t")
	}
	fl := strings.Fields(s)
	if len(fl) == 0 {
		return false
	}
	last := fl[len(fl)-1]
	if last[0] != '|' && last[0] != '>' {
		return false
	}
	return strings.Trim(last[1:], "+-0123456789") == ""
}
