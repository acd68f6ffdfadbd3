package fbmetrics

import "strings"

// FixtureBlocks splits a capture of Fluent Bit's HTTP API answers (lines
// "== GET <path>" each followed by the answer, "#" comment lines before the
// first block) into the answer per path, without trailing blank lines (the
// capture does not tell whether the answer ended with a newline).
func FixtureBlocks(text string) map[string]string {
	out := map[string]string{}
	var path string
	var body []string
	flush := func() {
		if path == "" {
			return
		}
		for len(body) > 0 && body[len(body)-1] == "" {
			body = body[:len(body)-1]
		}
		out[path] = strings.Join(body, "\n")
	}
	for _, line := range strings.Split(text, "\n") {
		if p, ok := strings.CutPrefix(line, "== GET "); ok {
			flush()
			path, body = strings.TrimSpace(p), nil
			continue
		}
		if path != "" {
			body = append(body, line)
		}
	}
	flush()
	return out
}
