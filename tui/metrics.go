package tui

import (
	"context"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/manage"
)

// MetricsReader reads the metrics of the pipelines' pods for the list's
// rate column and the details' sparkline (manage.MetricsCollector).
type MetricsReader interface {
	Collect(ctx context.Context, names ...string) ([]manage.PipelineMetrics, error)
}

// defaultMetricsInterval is how often the manager reads the metrics.
const defaultMetricsInterval = 5 * time.Second

// sparkPoints is how many readings the sparkline keeps.
const sparkPoints = 24

type (
	// metricsMsg is one collection.
	metricsMsg struct {
		got []manage.PipelineMetrics
		err error
	}
	// metricsTickMsg asks for the next collection.
	metricsTickMsg struct{}
)

// pipelineRates is a pipeline's last sample and its recent bytes/s in.
type pipelineRates struct {
	last    manage.PipelineMetrics
	bytesIn []float64 // oldest first, at most sparkPoints
}

// metricsState keeps the samples by pipeline; it lives in env so that the
// list and the details read the same.
type metricsState struct {
	byName map[string]*pipelineRates
	err    error
}

func newMetricsState() *metricsState { return &metricsState{byName: map[string]*pipelineRates{}} }

func collectMetrics(ctx context.Context, r MetricsReader) tea.Cmd {
	return func() tea.Msg {
		got, err := r.Collect(ctx)
		return metricsMsg{got: got, err: err}
	}
}

func metricsTick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return metricsTickMsg{} })
}

// update takes a collection: pipelines without pods any more are dropped,
// the others get their new sample and, with rates, a point more.
func (s *metricsState) update(msg metricsMsg) {
	s.err = msg.err
	if msg.err != nil {
		return
	}
	next := make(map[string]*pipelineRates, len(msg.got))
	for _, p := range msg.got {
		pr := s.byName[p.Name]
		if pr == nil {
			pr = &pipelineRates{}
		}
		pr.last = p
		if p.Rates != nil {
			pr.bytesIn = append(pr.bytesIn, p.Rates.BytesIn)
			if len(pr.bytesIn) > sparkPoints {
				pr.bytesIn = pr.bytesIn[len(pr.bytesIn)-sparkPoints:]
			}
		}
		next[p.Name] = pr
	}
	s.byName = next
}

// rateCell is the list's cell: bytes/s in, n/a before the second reading,
// "-" without a running pod.
func (s *metricsState) rateCell(name string) string {
	pr := s.byName[name]
	switch {
	case pr == nil || pr.last.Pods == 0:
		return "-"
	case pr.last.Rates == nil:
		return "n/a"
	}
	return manage.HumanBytes(pr.last.Rates.BytesIn) + "/s"
}

// detail is the details' line: rates in and out and the sparkline of
// bytes/s in; "" when there is nothing to show.
func (s *metricsState) detail(name string, ascii bool) string {
	pr := s.byName[name]
	if pr == nil || pr.last.Pods == 0 {
		return ""
	}
	r := pr.last.Rates
	if r == nil {
		return "n/a (first reading)"
	}
	return "in " + manage.HumanBytes(r.BytesIn) + "/s · out " + manage.HumanBytes(r.BytesOut) + "/s  " +
		sparkline(pr.bytesIn, ascii)
}

// sparkline draws values as bars scaled to the largest (all zero: the
// lowest bar).
func sparkline(values []float64, ascii bool) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	if ascii {
		bars = []rune("_.-=+*#@")
	}
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if top > 0 {
			i = int(v / top * float64(len(bars)-1))
		}
		b.WriteRune(bars[min(max(i, 0), len(bars)-1)])
	}
	return b.String()
}
