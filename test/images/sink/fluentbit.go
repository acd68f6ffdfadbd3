package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"time"
)

// DefaultMetricsPort is Fluent Bit's default HTTP port, which -H without -P
// uses.
const DefaultMetricsPort = 2020

// fbInput is one input of Fluent Bit's /api/v1/metrics.
type fbInput struct {
	Records uint64 `json:"records"`
	Bytes   uint64 `json:"bytes"`
}

// fbOutput is one output of Fluent Bit's /api/v1/metrics.
type fbOutput struct {
	ProcRecords    uint64 `json:"proc_records"`
	ProcBytes      uint64 `json:"proc_bytes"`
	Errors         uint64 `json:"errors"`
	Retries        uint64 `json:"retries"`
	RetriesFailed  uint64 `json:"retries_failed"`
	DroppedRecords uint64 `json:"dropped_records"`
	RetriedRecords uint64 `json:"retried_records"`
}

// fbMetrics is the body of Fluent Bit's GET /api/v1/metrics, in the key
// order Fluent Bit 5.1.1 sends.
type fbMetrics struct {
	Input  map[string]fbInput  `json:"input"`
	Filter map[string]struct{} `json:"filter"`
	Output map[string]fbOutput `json:"output"`
}

// FluentBitMetrics answers as Fluent Bit would for a pipeline whose inputs
// are the sink's listeners, named as Fluent Bit names plugin instances
// ("tcp.0", "udp.1": plugin and index, TCP listeners first, each protocol
// by port, whatever order the listeners started in), and
// whose single output "null.N" takes every record (a message the sink
// received counts as one record).
func (s *Sink) FluentBitMetrics() fbMetrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := fbMetrics{Input: map[string]fbInput{}, Filter: map[string]struct{}{}, Output: map[string]fbOutput{}}
	var out fbOutput
	ports := make([]*PortReport, 0, len(s.order))
	for _, k := range s.order {
		ports = append(ports, s.ports[k])
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].Protocol != ports[j].Protocol {
			return ports[i].Protocol == "tcp"
		}
		return ports[i].Port < ports[j].Port
	})
	for i, p := range ports {
		m.Input[fmt.Sprintf("%s.%d", p.Protocol, i)] = fbInput{Records: uint64(p.Messages), Bytes: uint64(p.Bytes)}
		out.ProcRecords += uint64(p.Messages)
		out.ProcBytes += uint64(p.Bytes)
	}
	m.Output[fmt.Sprintf("null.%d", len(s.order))] = out
	return m
}

// uptimeHR is Fluent Bit's human-readable uptime.
func uptimeHR(d time.Duration) string {
	sec := int64(d / time.Second)
	return fmt.Sprintf("Fluent Bit has been running:  %d day, %d hour, %d minute and %d seconds",
		sec/86400, sec%86400/3600, sec%3600/60, sec%60)
}

// fluentBitRoutes adds the endpoints of Fluent Bit's HTTP API that tpctl
// reads: health, uptime and the v1 metrics, in Fluent Bit's shapes.
func (s *Sink) fluentBitRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/v1/uptime", func(w http.ResponseWriter, _ *http.Request) {
		up := s.now().Sub(s.started)
		s.writeJSON(w, map[string]any{"uptime_sec": int64(up / time.Second), "uptime_hr": uptimeHR(up)})
	})
	mux.HandleFunc("GET /api/v1/metrics", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, s.FluentBitMetrics())
	})
}

func (s *Sink) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Printf("encode: %v", err)
	}
}

// MetricsHandler serves only Fluent Bit's API, on the metrics port.
func (s *Sink) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	s.fluentBitRoutes(mux)
	return mux
}

// samePort reports whether two listen addresses name the same port (the
// metrics port given by -P equal to --http's): then one listener serves both.
func samePort(a, b string) bool {
	_, pa, errA := net.SplitHostPort(a)
	_, pb, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && pa == pb && pa != "0"
}
