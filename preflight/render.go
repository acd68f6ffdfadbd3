package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// JSON report schema (SchemaVersion "tpctl.preflight/v1"). Field names are
// stable; fields may be added, never renamed or removed, within a version.
//
//	{
//	  "schema": "tpctl.preflight/v1",
//	  "results": [                       // in check order
//	    {
//	      "name": "Port-6443-TCP",       // stable; also the ignore key
//	      "severity": "pass"|"warn"|"fail",
//	      "message": "…",                // what was found
//	      "remedy": "…",                 // what to do (omitted when empty)
//	      "ignored": true                // a failure turned into a warning by
//	                                     // --ignore-preflight-errors (omitted when false)
//	    }
//	  ],
//	  "summary": {"pass": 0, "warn": 0, "fail": 0, "ignored": 0},
//	  "facts": {                         // see Facts
//	    "os": "linux", "arch": "amd64", "kernelRelease": "6.1.0",
//	    "initSystem": "systemd", "systemd": true, "cgroupVersion": 2,
//	    "capSysResource": true, "restrictOOMScoreAdj": false,
//	    "kubeletArgs": ["fail-cgroupv1=false"],          // omitted when empty
//	    "k3s": {"binary": "/usr/local/bin/k3s", "installedByTpctl": true} // omitted when absent
//	  }
//	}
//
// "summary.fail" > 0 is exactly when tpctl preflight exits 3.

// WriteJSON writes the report in the JSON schema above.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("encode preflight report: %w", err)
	}
	return nil
}

// TableOptions shape the table output.
type TableOptions struct {
	// Color marks the severity column with ANSI colours (only on a TTY,
	// never with NO_COLOR; the caller decides).
	Color bool
	// Width wraps the detail column to fit this many columns; 0 never wraps.
	Width int
}

const (
	ansiReset  = "\x1b[0m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
)

// maxNameWidth caps the name column; a longer name gets a line of its own
// with its details below it.
const maxNameWidth = 40

// WriteTable writes the report as a table: severity, name, message, with
// the remedy of each warning and failure on the lines below ("→ …"), and a
// summary line at the end.
func WriteTable(w io.Writer, rep Report, o TableOptions) error {
	nameW := len("CHECK")
	for _, r := range rep.Results {
		if n := len(r.Name); n > nameW && n <= maxNameWidth {
			nameW = n
		}
	}
	const sevW = 6
	indent := sevW + 1 + nameW + 2
	detailW := 0
	if o.Width > 0 {
		detailW = max(o.Width-indent, 30)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s %-*s  %s\n", sevW, "STATUS", nameW, "CHECK", "DETAILS")
	for _, r := range rep.Results {
		msg := r.Message
		if r.Ignored {
			msg += " (failure ignored)"
		}
		sev := fmt.Sprintf("%-*s", sevW, r.Severity.String())
		if o.Color {
			sev = colorFor(r.Severity) + sev + ansiReset
		}
		lines := wrap(msg, detailW)
		if len(r.Name) > nameW {
			fmt.Fprintf(&b, "%s %s\n", sev, r.Name)
			lines = append([]string{""}, lines...)
		} else {
			fmt.Fprintf(&b, "%s %-*s  %s\n", sev, nameW, r.Name, lines[0])
		}
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "%s%s\n", strings.Repeat(" ", indent), l)
		}
		if r.Remedy != "" && r.Severity != Pass {
			rl := wrap("→ "+r.Remedy, detailW)
			for i, l := range rl {
				if i > 0 {
					l = "  " + l
				}
				fmt.Fprintf(&b, "%s%s\n", strings.Repeat(" ", indent), l)
			}
		}
	}
	b.WriteString("\n" + summaryLine(rep.Summary) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func colorFor(s Severity) string {
	switch s {
	case Pass:
		return ansiGreen
	case Warn:
		return ansiYellow
	}
	return ansiRed
}

// summaryLine reads e.g. "Preflight: 40 passed, 3 warnings (1 ignored failure), 1 failed".
func summaryLine(s Summary) string {
	plural := func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	warn := plural(s.Warn, "warning", "warnings")
	if s.Ignored > 0 {
		warn += " (" + plural(s.Ignored, "ignored failure", "ignored failures") + ")"
	}
	verdict := "the host is ready"
	if s.Fail > 0 {
		verdict = "fix the failures or ignore them with --ignore-preflight-errors=NAME,..."
	}
	return fmt.Sprintf("Preflight: %d passed, %s, %d failed: %s", s.Pass, warn, s.Fail, verdict)
}

// wrap splits s into lines of at most width characters at spaces (width 0:
// one line). A word longer than width gets a line of its own.
func wrap(s string, width int) []string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return []string{s}
	}
	var lines []string
	cur, curLen := "", 0
	for _, word := range strings.Fields(s) {
		n := utf8.RuneCountInString(word)
		switch {
		case curLen == 0:
			cur, curLen = word, n
		case curLen+1+n <= width:
			cur, curLen = cur+" "+word, curLen+1+n
		default:
			lines = append(lines, cur)
			cur, curLen = word, n
		}
	}
	if curLen > 0 || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}
