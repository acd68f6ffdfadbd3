// Package fbmetrics reads Fluent Bit's built-in HTTP API (GET /api/v1/metrics)
// and turns two readings into rates. It does no I/O: callers hand it the
// bytes Fluent Bit answered and the time they read them.
//
// The shape it reads is the one Fluent Bit 5.1.1 sends (see
// testdata/fluent-bit-5.1.1-http-api.txt):
//
//	{"input":{"tcp.0":{"records":50,"bytes":1691}},
//	 "filter":{"grep.0":{"drop_records":3,"add_records":0}},
//	 "output":{"stdout.0":{"proc_records":51,"proc_bytes":1713,"errors":0,"retries":0,
//	           "retries_failed":0,"dropped_records":0,"retried_records":0}}}
//
// Every counter is a per-plugin instance counter that starts at zero when the
// process starts; a value below the previous reading means the process
// restarted, and the rate is then taken from zero (never negative).
package fbmetrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Path is the endpoint this package reads.
const Path = "/api/v1/metrics"

// MaxBody bounds the answer Parse accepts.
const MaxBody = 4 << 20

// Kind is a plugin kind: input, filter or output.
type Kind string

// The plugin kinds of the v1 metrics answer, in the order they are shown.
const (
	KindInput  Kind = "input"
	KindFilter Kind = "filter"
	KindOutput Kind = "output"
)

// The counters Fluent Bit reports, by kind.
const (
	InRecords = "records" // input
	InBytes   = "bytes"   // input

	FilterDropRecords = "drop_records" // filter
	FilterAddRecords  = "add_records"  // filter

	OutProcRecords    = "proc_records"    // output
	OutProcBytes      = "proc_bytes"      // output
	OutErrors         = "errors"          // output
	OutRetries        = "retries"         // output
	OutRetriesFailed  = "retries_failed"  // output
	OutDroppedRecords = "dropped_records" // output
	OutRetriedRecords = "retried_records" // output
)

// Plugin is one plugin instance ("tcp.0") and its counters.
type Plugin struct {
	Kind     Kind              `json:"kind"`
	Name     string            `json:"name"`
	Counters map[string]uint64 `json:"counters"`
}

// Metrics is one reading of /api/v1/metrics.
type Metrics struct {
	Plugins []Plugin `json:"plugins"` // sorted by kind (input, filter, output), then name
}

// Parse reads the body of GET /api/v1/metrics. Numeric fields become
// counters; fields of other types (none in 5.1.1) are skipped so that a newer
// Fluent Bit adding one does not break the reading. An answer that is not a
// JSON object of plugin maps is an error.
func Parse(body []byte) (Metrics, error) {
	if len(body) > MaxBody {
		return Metrics{}, fmt.Errorf("metrics answer of %d bytes exceeds %d", len(body), MaxBody)
	}
	var raw map[string]map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Metrics{}, fmt.Errorf("parse Fluent Bit metrics: %w", err)
	}
	if raw == nil {
		return Metrics{}, fmt.Errorf("parse Fluent Bit metrics: not an object")
	}
	var m Metrics
	for _, kind := range []Kind{KindInput, KindFilter, KindOutput} {
		for name, fields := range raw[string(kind)] {
			p := Plugin{Kind: kind, Name: name, Counters: make(map[string]uint64, len(fields))}
			for k, v := range fields {
				var n uint64
				if json.Unmarshal(v, &n) == nil {
					p.Counters[k] = n
				}
			}
			m.Plugins = append(m.Plugins, p)
		}
	}
	sortPlugins(m.Plugins)
	return m, nil
}

func kindOrder(k Kind) int {
	switch k {
	case KindInput:
		return 0
	case KindFilter:
		return 1
	default:
		return 2
	}
}

func sortPlugins(ps []Plugin) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Kind != ps[j].Kind {
			return kindOrder(ps[i].Kind) < kindOrder(ps[j].Kind)
		}
		return ps[i].Name < ps[j].Name
	})
}

// Totals are the counters of one reading summed over the plugins.
type Totals struct {
	RecordsIn     uint64 `json:"recordsIn"`
	BytesIn       uint64 `json:"bytesIn"`
	RecordsOut    uint64 `json:"recordsOut"`
	BytesOut      uint64 `json:"bytesOut"`
	Errors        uint64 `json:"errors"`
	Retries       uint64 `json:"retries"`
	RetriesFailed uint64 `json:"retriesFailed"`
	Dropped       uint64 `json:"dropped"`
}

// Add adds o to t.
func (t *Totals) Add(o Totals) {
	t.RecordsIn += o.RecordsIn
	t.BytesIn += o.BytesIn
	t.RecordsOut += o.RecordsOut
	t.BytesOut += o.BytesOut
	t.Errors += o.Errors
	t.Retries += o.Retries
	t.RetriesFailed += o.RetriesFailed
	t.Dropped += o.Dropped
}

// Totals of one plugin: inputs count in, outputs count out; filters count
// the records they drop.
func (p Plugin) Totals() Totals {
	c := p.Counters
	switch p.Kind {
	case KindInput:
		return Totals{RecordsIn: c[InRecords], BytesIn: c[InBytes]}
	case KindFilter:
		return Totals{Dropped: c[FilterDropRecords]}
	default:
		return Totals{RecordsOut: c[OutProcRecords], BytesOut: c[OutProcBytes], Errors: c[OutErrors],
			Retries: c[OutRetries], RetriesFailed: c[OutRetriesFailed], Dropped: c[OutDroppedRecords]}
	}
}

// Totals sums every plugin of the reading.
func (m Metrics) Totals() Totals {
	var t Totals
	for _, p := range m.Plugins {
		t.Add(p.Totals())
	}
	return t
}

// Rates are per-second rates over an interval.
type Rates struct {
	RecordsIn     float64 `json:"recordsInPerSec"`
	BytesIn       float64 `json:"bytesInPerSec"`
	RecordsOut    float64 `json:"recordsOutPerSec"`
	BytesOut      float64 `json:"bytesOutPerSec"`
	Errors        float64 `json:"errorsPerSec"`
	Retries       float64 `json:"retriesPerSec"`
	RetriesFailed float64 `json:"retriesFailedPerSec"`
	Dropped       float64 `json:"droppedPerSec"`
}

// Add adds o to r.
func (r *Rates) Add(o Rates) {
	r.RecordsIn += o.RecordsIn
	r.BytesIn += o.BytesIn
	r.RecordsOut += o.RecordsOut
	r.BytesOut += o.BytesOut
	r.Errors += o.Errors
	r.Retries += o.Retries
	r.RetriesFailed += o.RetriesFailed
	r.Dropped += o.Dropped
}

// delta is cur-prev, or cur when the counter went down (the process
// restarted and counts again from zero).
func delta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// Rate returns the per-second rates from prev to cur over dt. A dt of zero or
// less yields zero rates. Each counter is treated on its own: one that went
// down counts from zero.
func Rate(prev, cur Totals, dt time.Duration) Rates {
	if dt <= 0 {
		return Rates{}
	}
	s := dt.Seconds()
	f := func(p, c uint64) float64 { return float64(delta(p, c)) / s }
	return Rates{
		RecordsIn: f(prev.RecordsIn, cur.RecordsIn), BytesIn: f(prev.BytesIn, cur.BytesIn),
		RecordsOut: f(prev.RecordsOut, cur.RecordsOut), BytesOut: f(prev.BytesOut, cur.BytesOut),
		Errors: f(prev.Errors, cur.Errors), Retries: f(prev.Retries, cur.Retries),
		RetriesFailed: f(prev.RetriesFailed, cur.RetriesFailed), Dropped: f(prev.Dropped, cur.Dropped),
	}
}

// Reading is a Metrics read at a time.
type Reading struct {
	At      time.Time
	Metrics Metrics
}

// PluginRate is one plugin's totals and, when a previous reading had it, its
// rates.
type PluginRate struct {
	Kind   Kind   `json:"kind"`
	Name   string `json:"name"`
	Totals Totals `json:"totals"`
	Rates  *Rates `json:"rates,omitempty"`
}

// PluginRates pairs the plugins of cur with those of prev (by kind and name)
// and returns their rates; a plugin new in cur has totals but no rates. A
// restart of the process between the readings (a counter lower than before)
// counts from zero. prev may be nil (first reading).
func PluginRates(prev *Reading, cur Reading) []PluginRate {
	type key struct {
		k Kind
		n string
	}
	before := map[key]Totals{}
	var dt time.Duration
	if prev != nil {
		dt = cur.At.Sub(prev.At)
		for _, p := range prev.Metrics.Plugins {
			before[key{p.Kind, p.Name}] = p.Totals()
		}
	}
	out := make([]PluginRate, 0, len(cur.Metrics.Plugins))
	for _, p := range cur.Metrics.Plugins {
		pr := PluginRate{Kind: p.Kind, Name: p.Name, Totals: p.Totals()}
		if b, ok := before[key{p.Kind, p.Name}]; ok && dt > 0 {
			r := Rate(b, pr.Totals, dt)
			pr.Rates = &r
		}
		out = append(out, pr)
	}
	return out
}
