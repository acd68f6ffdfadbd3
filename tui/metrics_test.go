package tui

import (
	"context"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/fbmetrics"
)

// scriptedMetrics answers each Collect with the next sample, then waits for
// the end of the context, so that a screen shows a known number of readings.
type scriptedMetrics struct {
	mu      sync.Mutex
	samples [][]manage.PipelineMetrics
}

func (s *scriptedMetrics) Collect(ctx context.Context, _ ...string) ([]manage.PipelineMetrics, error) {
	s.mu.Lock()
	if len(s.samples) > 0 {
		next := s.samples[0]
		s.samples = s.samples[1:]
		s.mu.Unlock()
		return next, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

// rising gives pipeline a 0, 512, 1024 and 1536 bytes/s in after a first
// reading without rates, and b (two pods) a steady 100 bytes/s.
func rising() *scriptedMetrics {
	s := &scriptedMetrics{samples: [][]manage.PipelineMetrics{{
		{Name: "a", Pods: 1, Read: 1}, {Name: "b", Pods: 2, Read: 2},
	}}}
	for _, v := range []float64{0, 512, 1024, 1536} {
		s.samples = append(s.samples, []manage.PipelineMetrics{
			{Name: "a", Pods: 1, Read: 1, Rates: &fbmetrics.Rates{BytesIn: v, BytesOut: v / 2}},
			{Name: "b", Pods: 2, Read: 2, Rates: &fbmetrics.Rates{BytesIn: 100, BytesOut: 100}},
		})
	}
	return s
}

func TestListScreenWithRates(t *testing.T) {
	o := options()
	o.Metrics, o.MetricsInterval = rising(), 1
	tm := start(t, sampleCluster(t), o)
	waitFor(t, tm, "IN/S", "1.5 KiB/s", "100 B/s")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Regexp(t, `(?m)^\s+new\s.*\s-\s`, s, "a pipeline without pods has no rate")
}

// On a narrow screen the ports column keeps its room: the rate column
// gives way after instance, workload and ready.
func TestNarrowListKeepsThePortsWithRates(t *testing.T) {
	o := options()
	o.Metrics, o.MetricsInterval = rising(), 1
	tm := start(t, sampleCluster(t), o)
	waitFor(t, tm, "IN/S", "1.5 KiB/s")
	tm.Send(tea.WindowSizeMsg{Width: 80, Height: 20})
	waitFor(t, tm, "tcp/2201->2200, udp/5140")
	s := screen(t, tm)
	assert.Contains(t, s, "tcp/2201->2200, udp/5140")
	assert.NotContains(t, s, "IN/S")
}

func TestDetailScreenSparkline(t *testing.T) {
	o := options()
	o.Metrics, o.MetricsInterval = rising(), 1
	tm := start(t, sampleCluster(t), o)
	waitFor(t, tm, "1.5 KiB/s")
	send(tm, "enter") // a, the first row
	waitFor(t, tm, "Bytes/s")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "in 1.5 KiB/s · out 768 B/s")
}

func TestMetricsState(t *testing.T) {
	s := newMetricsState()
	assert.Equal(t, "-", s.rateCell("a"))
	s.update(metricsMsg{got: []manage.PipelineMetrics{{Name: "a", Pods: 1, Read: 1}}})
	assert.Equal(t, "n/a", s.rateCell("a"))
	assert.Equal(t, "n/a (first reading)", s.detail("a", false))
	for i := range sparkPoints + 5 {
		s.update(metricsMsg{got: []manage.PipelineMetrics{{Name: "a", Pods: 1, Read: 1, Rates: &fbmetrics.Rates{BytesIn: float64(i)}}}})
	}
	require.Len(t, s.byName["a"].bytesIn, sparkPoints, "bounded history")
	assert.Equal(t, "28 B/s", s.rateCell("a"))
	// A failed collection keeps the last samples.
	s.update(metricsMsg{err: context.DeadlineExceeded})
	assert.Equal(t, "28 B/s", s.rateCell("a"))
	// A pipeline whose pods are gone is dropped.
	s.update(metricsMsg{got: nil})
	assert.Equal(t, "-", s.rateCell("a"))
}

func TestSparkline(t *testing.T) {
	assert.Equal(t, "▁▃▅█", sparkline([]float64{0, 512, 1024, 1536}, false))
	assert.Equal(t, "_-+@", sparkline([]float64{0, 512, 1024, 1536}, true))
	assert.Equal(t, "▁▁", sparkline([]float64{0, 0}, false))
	assert.Equal(t, "", sparkline(nil, false))
}
