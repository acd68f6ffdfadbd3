// Package preflight checks a host before tpctl installs anything on it.
//
// Checks only read the host; they never change it. Each returns data
// (Results); rendering lives in render.go. Every check reads the host through
// the Host seam so tests can feed it a fake /proc, /sys and /etc.
package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Severity of a check result.
type Severity int

const (
	Pass Severity = iota
	Warn
	Fail
)

var severityNames = [...]string{"pass", "warn", "fail"}

func (s Severity) String() string {
	if s < Pass || s > Fail {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalJSON encodes a severity as "pass", "warn" or "fail".
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON decodes "pass", "warn" or "fail".
func (s *Severity) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	for i, n := range severityNames {
		if n == v {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", v)
}

// Result is one finding. Name is stable and doubles as the ignore key
// (e.g. "Port-6443-TCP", "KernelConfig-CONFIG_VXLAN", "Memory").
type Result struct {
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Remedy   string   `json:"remedy,omitempty"`
	// Ignored is set when a failure was turned into a warning by the ignore set.
	Ignored bool `json:"ignored,omitempty"`
}

// Check is one host check. Name() is the check's family name, used for
// ordering and for "all results of this check". A check may return several
// results (one per port row, one per kernel option, …).
type Check interface {
	Name() string
	Run(ctx context.Context, h *Host) []Result
}

// IgnoreSet holds the names whose failures become warnings. "all" matches
// every name. Matching is case-insensitive.
type IgnoreSet map[string]struct{}

// ParseIgnoreSet parses a comma-separated --ignore-preflight-errors value.
func ParseIgnoreSet(values ...string) IgnoreSet {
	set := IgnoreSet{}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.ToLower(strings.TrimSpace(item))
			if item != "" {
				set[item] = struct{}{}
			}
		}
	}
	return set
}

// Has reports whether name is ignored.
func (s IgnoreSet) Has(name string) bool {
	if _, ok := s["all"]; ok {
		return true
	}
	_, ok := s[strings.ToLower(name)]
	return ok
}

// SchemaVersion names the JSON report schema. It changes only when a field
// is renamed or removed; new fields may be added under the same version.
const SchemaVersion = "tpctl.preflight/v1"

// Report is the outcome of a run. Encoded as JSON it is the documented
// report schema (see render.go and README.md, "Preflight").
type Report struct {
	Schema  string   `json:"schema"`
	Results []Result `json:"results"`
	Summary Summary  `json:"summary"`
	Facts   Facts    `json:"facts"`
}

// Summary counts results by severity after ignores were applied.
type Summary struct {
	Pass    int `json:"pass"`
	Warn    int `json:"warn"`
	Fail    int `json:"fail"`
	Ignored int `json:"ignored"`
}

// Failed reports whether any result still fails.
func (r Report) Failed() bool { return r.Summary.Fail > 0 }

// Run runs every check against the host and applies the ignore set. Results
// keep the order of the checks; a check's own order is kept too.
func Run(ctx context.Context, checks []Check, h *Host, ignore IgnoreSet) Report {
	rep := Report{Schema: SchemaVersion, Results: []Result{}}
	for _, c := range checks {
		if ctx.Err() != nil {
			rep.Results = append(rep.Results, Result{
				Name: c.Name(), Severity: Fail,
				Message: "not run: " + ctx.Err().Error(),
			})
			continue
		}
		rep.Results = append(rep.Results, c.Run(ctx, h)...)
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Severity == Fail && ignore.Has(r.Name) {
			r.Severity = Warn
			r.Ignored = true
		}
		switch r.Severity {
		case Pass:
			rep.Summary.Pass++
		case Warn:
			rep.Summary.Warn++
		case Fail:
			rep.Summary.Fail++
		}
		if r.Ignored {
			rep.Summary.Ignored++
		}
	}
	rep.Facts = GatherFacts(h)
	return rep
}

// Unused returns the ignore keys that match no result name ("all" aside),
// sorted, so a caller can point out a misspelt key.
func (s IgnoreSet) Unused(rep Report) []string {
	names := make(map[string]bool, len(rep.Results))
	for _, r := range rep.Results {
		names[strings.ToLower(r.Name)] = true
	}
	var out []string
	for k := range s {
		if k != "all" && !names[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// SortByName orders results by name; used where a stable order matters more
// than check order (e.g. golden files).
func SortByName(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
}
