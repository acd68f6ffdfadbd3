package manage

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tpctl/tpctl/manage/fbmetrics"
)

// MetricsSample is one refresh of `tpctl pipeline top`: a row per pipeline.
type MetricsSample struct {
	Pipelines []PipelineMetrics `json:"pipelines"`
}

// WithPipelines adds an empty row (no pods) for every name that has none,
// so that a pipeline without running pods is still listed; rows stay
// sorted by name.
func (s MetricsSample) WithPipelines(names []string) MetricsSample {
	have := map[string]bool{}
	for _, p := range s.Pipelines {
		have[p.Name] = true
	}
	out := append([]PipelineMetrics{}, s.Pipelines...)
	for _, n := range names {
		if !have[n] {
			out = append(out, PipelineMetrics{Name: n})
			have[n] = true
		}
	}
	sortMetrics(out)
	return MetricsSample{Pipelines: out}
}

func sortMetrics(ps []PipelineMetrics) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
}

// HumanBytes writes a byte count or rate with a binary unit: 512 B, 1.5 KiB.
func HumanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func rateCell(r *fbmetrics.Rates, f func(fbmetrics.Rates) float64, bytes bool) string {
	if r == nil {
		return "n/a"
	}
	if bytes {
		return HumanBytes(f(*r)) + "/s"
	}
	return fmt.Sprintf("%.1f", f(*r))
}

func podsCell(p PipelineMetrics) string {
	if p.Read == p.Pods {
		return fmt.Sprint(p.Pods)
	}
	return fmt.Sprintf("%d/%d", p.Read, p.Pods)
}

func recIn(r fbmetrics.Rates) float64    { return r.RecordsIn }
func bytesIn(r fbmetrics.Rates) float64  { return r.BytesIn }
func recOut(r fbmetrics.Rates) float64   { return r.RecordsOut }
func bytesOut(r fbmetrics.Rates) float64 { return r.BytesOut }

// WriteMetricsTable writes a row per pipeline: pods read (of running),
// records/s and bytes/s in and out (n/a until a second reading), and the
// errors, retries and dropped records counted since the pods started.
// Pods that could not be read are listed under the table.
func WriteMetricsTable(w io.Writer, s MetricsSample) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tPODS\tRECORDS IN/S\tBYTES IN/S\tRECORDS OUT/S\tBYTES OUT/S\tERRORS\tRETRIES\tDROPPED")
	for _, p := range s.Pipelines {
		if p.Pods == 0 {
			fmt.Fprintf(tw, "%s\t0\t-\t-\t-\t-\t-\t-\t-\n", p.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", p.Name, podsCell(p),
			rateCell(p.Rates, recIn, false), rateCell(p.Rates, bytesIn, true),
			rateCell(p.Rates, recOut, false), rateCell(p.Rates, bytesOut, true),
			p.Totals.Errors, p.Totals.Retries, p.Totals.Dropped)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writePodErrors(w, s.Pipelines)
}

// WritePluginTable writes one pipeline's plugins: kind, name, records/s and
// bytes/s (in for inputs, out for outputs), totals, errors, retries and
// drops.
func WritePluginTable(w io.Writer, p PipelineMetrics) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "KIND\tPLUGIN\tRECORDS/S\tBYTES/S\tRECORDS\tBYTES\tERRORS\tRETRIES\tDROPPED")
	for _, pl := range p.Plugins {
		t := pl.Totals
		records, bytes := t.RecordsOut, t.BytesOut
		rec, byt := recOut, bytesOut
		if pl.Kind == fbmetrics.KindInput {
			records, bytes, rec, byt = t.RecordsIn, t.BytesIn, recIn, bytesIn
		}
		recs, bytesCell := rateCell(pl.Rates, rec, false), rateCell(pl.Rates, byt, true)
		recTotal, bytesTotal := fmt.Sprint(records), HumanBytes(float64(bytes))
		if pl.Kind == fbmetrics.KindFilter {
			recs, bytesCell, recTotal, bytesTotal = "-", "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", pl.Kind, pl.Name, recs, bytesCell, recTotal, bytesTotal,
			t.Errors, t.Retries, t.Dropped)
	}
	return tw.Flush()
}

func writePodErrors(w io.Writer, ps []PipelineMetrics) error {
	var lines []string
	for _, p := range ps {
		for _, e := range p.Errors {
			lines = append(lines, fmt.Sprintf("%s: pod %s: %s", p.Name, e.Pod, e.Reason))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "\nnot read:\n  %s\n", strings.Join(lines, "\n  "))
	return err
}

// WriteMetricsSummary writes the counters of one reading of a pipeline for
// `pipeline get` (rates need a second reading: `pipeline top`). p nil means
// the pipeline has no running pod; readErr is a failure to list its pods.
func WriteMetricsSummary(w io.Writer, p *PipelineMetrics, readErr error) error {
	var err error
	switch {
	case readErr != nil:
		_, err = fmt.Fprintf(w, "\nMetrics: not read: %v\n", readErr)
	case p == nil || p.Pods == 0:
		_, err = fmt.Fprintln(w, "\nMetrics: no running pod")
	default:
		t := p.Totals
		_, err = fmt.Fprintf(w, "\nMetrics (counted since the pods started; rates: tpctl pipeline top %s):\n"+
			"  pods read %s, records in %d (%s), out %d (%s), errors %d, retries %d, dropped %d\n",
			p.Name, podsCell(*p), t.RecordsIn, HumanBytes(float64(t.BytesIn)), t.RecordsOut, HumanBytes(float64(t.BytesOut)),
			t.Errors, t.Retries, t.Dropped)
		if err == nil {
			err = writePodErrors(w, []PipelineMetrics{*p})
		}
	}
	return err
}
