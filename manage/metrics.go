package manage

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/fbmetrics"
	"github.com/tpctl/tpctl/pipeline"
)

// MetricsFetcher reads GET path on port of a pod. NewMetricsCollector's
// default goes through the API server's pod proxy (pods/proxy, get): no
// port-forward and no direct route to the pod network.
type MetricsFetcher func(ctx context.Context, namespace, pod string, port int32, path string) ([]byte, error)

// MetricsOptions tune a MetricsCollector; zero values take the defaults.
type MetricsOptions struct {
	// Concurrency bounds the pods read at once (default 8).
	Concurrency int
	// Timeout bounds the read of one pod (default 3s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MetricsCollector reads Fluent Bit's /api/v1/metrics from every pod of the
// pipelines of one namespace and keeps each pod's last reading, so that
// the next Collect gives rates. Pods come and go: a pod read for the first
// time has totals but no rates yet, a pod that is gone is forgotten, and one
// that cannot be read is named in its pipeline's sample, not returned as an
// error. It is safe for one Collect at a time.
type MetricsCollector struct {
	pods      corev1client.PodsGetter
	namespace string
	fetch     MetricsFetcher
	opts      MetricsOptions

	mu   sync.Mutex
	prev map[types.UID]podReading
}

// podReading is a pod's last reading and its pipeline.
type podReading struct {
	pipeline string
	fbmetrics.Reading
}

// NewMetricsCollector reads through pods (a clientset's CoreV1()) in
// namespace; fetch nil reads through the API server's pod proxy.
func NewMetricsCollector(pods corev1client.PodsGetter, namespace string, fetch MetricsFetcher, o MetricsOptions) *MetricsCollector {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if fetch == nil {
		fetch = func(ctx context.Context, namespace, pod string, port int32, path string) ([]byte, error) {
			rc, err := pods.Pods(namespace).ProxyGet("http", pod, strconv.Itoa(int(port)), path, nil).Stream(ctx)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			// At most one byte over the parser's limit: it then refuses the answer.
			return io.ReadAll(io.LimitReader(rc, fbmetrics.MaxBody+1))
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MetricsCollector{pods: pods, namespace: namespace, fetch: fetch, opts: o, prev: map[types.UID]podReading{}}
}

// Namespace is the namespace the collector reads.
func (c *MetricsCollector) Namespace() string { return c.namespace }

// PodMetricsError is a pod whose metrics could not be read.
type PodMetricsError struct {
	Pod    string `json:"pod"`
	Reason string `json:"reason"`
}

// PipelineMetrics is one pipeline's sample: its pods' counters summed, and
// the rates since the previous Collect of the pods read both times.
type PipelineMetrics struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	// Pods is the number of running pods, Read those whose metrics were read.
	Pods   int              `json:"pods"`
	Read   int              `json:"read"`
	Totals fbmetrics.Totals `json:"totals"`
	// Rates is nil until a pod of the pipeline was read twice.
	Rates   *fbmetrics.Rates       `json:"rates,omitempty"`
	Plugins []fbmetrics.PluginRate `json:"plugins,omitempty"`
	Errors  []PodMetricsError      `json:"errors,omitempty"`
}

type podTarget struct {
	pod      *corev1.Pod
	pipeline string
	port     int32
}

type podResult struct {
	t       podTarget
	reading fbmetrics.Reading
	err     error
}

// MetricsPort returns the metrics port of a pipeline pod: the operator's
// annotation, else the container port named "metrics".
func MetricsPort(pod *corev1.Pod) (int32, bool) {
	if v, ok := pod.Annotations[pipeline.MetricsPortAnnotation]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= pipeline.MinPort && n <= pipeline.MaxPort {
			return int32(n), true
		}
	}
	for _, ctr := range pod.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Name == pipeline.MetricsPortName && p.ContainerPort > 0 {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// Collect reads the pods of the named pipelines (all pipelines when names
// is empty) once and returns a sample per pipeline that has pods, sorted by
// name. It fails only when the pods cannot be listed.
func (c *MetricsCollector) Collect(ctx context.Context, names ...string) ([]PipelineMetrics, error) {
	sel := labels.NewSelector()
	var req *labels.Requirement
	var err error
	if len(names) > 0 {
		req, err = labels.NewRequirement(v1alpha1.LabelPipeline, selection.In, names)
	} else {
		req, err = labels.NewRequirement(v1alpha1.LabelPipeline, selection.Exists, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("select pipeline pods: %w", err)
	}
	sel = sel.Add(*req)
	list, err := c.pods.Pods(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, apiError(fmt.Sprintf("list pipeline pods in namespace %q", c.namespace), err)
	}

	byPipeline := map[string]*PipelineMetrics{}
	get := func(name string) *PipelineMetrics {
		pm := byPipeline[name]
		if pm == nil {
			pm = &PipelineMetrics{Name: name}
			byPipeline[name] = pm
		}
		return pm
	}
	var targets []podTarget
	for i := range list.Items {
		pod := &list.Items[i]
		name := pod.Labels[v1alpha1.LabelPipeline]
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		pm := get(name)
		pm.Pods++
		port, ok := MetricsPort(pod)
		if !ok {
			pm.Errors = append(pm.Errors, PodMetricsError{Pod: pod.Name, Reason: "no metrics port (pod made by an older operator)"})
			continue
		}
		targets = append(targets, podTarget{pod: pod, pipeline: name, port: port})
	}

	results := c.readAll(ctx, targets)

	c.mu.Lock()
	prev := c.prev
	next := make(map[types.UID]podReading, len(results))
	c.mu.Unlock()

	type pluginKey struct {
		k fbmetrics.Kind
		n string
	}
	plugins := map[string]map[pluginKey]*fbmetrics.PluginRate{}
	for _, r := range results {
		pm := get(r.t.pipeline)
		if r.err != nil {
			pm.Errors = append(pm.Errors, PodMetricsError{Pod: r.t.pod.Name, Reason: r.err.Error()})
			continue
		}
		pm.Read++
		if r.reading.At.After(pm.At) {
			pm.At = r.reading.At
		}
		next[r.t.pod.UID] = podReading{pipeline: r.t.pipeline, Reading: r.reading}
		pm.Totals.Add(r.reading.Metrics.Totals())
		var before *fbmetrics.Reading
		if p, ok := prev[r.t.pod.UID]; ok {
			before = &p.Reading
			rate := fbmetrics.Rate(p.Metrics.Totals(), r.reading.Metrics.Totals(), r.reading.At.Sub(p.At))
			if pm.Rates == nil {
				pm.Rates = &fbmetrics.Rates{}
			}
			pm.Rates.Add(rate)
		}
		if plugins[r.t.pipeline] == nil {
			plugins[r.t.pipeline] = map[pluginKey]*fbmetrics.PluginRate{}
		}
		for _, pr := range fbmetrics.PluginRates(before, r.reading) {
			agg := plugins[r.t.pipeline][pluginKey{pr.Kind, pr.Name}]
			if agg == nil {
				agg = &fbmetrics.PluginRate{Kind: pr.Kind, Name: pr.Name}
				plugins[r.t.pipeline][pluginKey{pr.Kind, pr.Name}] = agg
			}
			agg.Totals.Add(pr.Totals)
			if pr.Rates != nil {
				if agg.Rates == nil {
					agg.Rates = &fbmetrics.Rates{}
				}
				agg.Rates.Add(*pr.Rates)
			}
		}
	}
	c.mu.Lock()
	if len(names) == 0 {
		c.prev = next
	} else {
		// Keep the other pipelines' readings; these pipelines' are replaced.
		named := map[string]bool{}
		for _, n := range names {
			named[n] = true
		}
		for uid, r := range prev {
			if named[r.pipeline] {
				delete(prev, uid)
			}
		}
		for uid, r := range next {
			prev[uid] = r
		}
		c.prev = prev
	}
	c.mu.Unlock()

	out := make([]PipelineMetrics, 0, len(byPipeline))
	for name, pm := range byPipeline {
		for _, pr := range plugins[name] {
			pm.Plugins = append(pm.Plugins, *pr)
		}
		sortPluginRates(pm.Plugins)
		sort.Slice(pm.Errors, func(i, j int) bool { return pm.Errors[i].Pod < pm.Errors[j].Pod })
		out = append(out, *pm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func sortPluginRates(ps []fbmetrics.PluginRate) {
	order := map[fbmetrics.Kind]int{fbmetrics.KindInput: 0, fbmetrics.KindFilter: 1, fbmetrics.KindOutput: 2}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Kind != ps[j].Kind {
			return order[ps[i].Kind] < order[ps[j].Kind]
		}
		return ps[i].Name < ps[j].Name
	})
}

// readAll reads every target, at most opts.Concurrency at once.
func (c *MetricsCollector) readAll(ctx context.Context, targets []podTarget) []podResult {
	results := make([]podResult, len(targets))
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = c.read(ctx, t)
		}()
	}
	wg.Wait()
	return results
}

func (c *MetricsCollector) read(ctx context.Context, t podTarget) podResult {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	body, err := c.fetch(ctx, c.namespace, t.pod.Name, t.port, fbmetrics.Path)
	at := c.opts.Now()
	if err != nil {
		return podResult{t: t, err: fmt.Errorf("read %s on port %d: %w", fbmetrics.Path, t.port, shortError(err))}
	}
	m, err := fbmetrics.Parse(body)
	if err != nil {
		return podResult{t: t, err: err}
	}
	return podResult{t: t, reading: fbmetrics.Reading{At: at, Metrics: m}}
}

// shortError keeps an API server's proxy error to its message.
func shortError(err error) error {
	if s, ok := err.(interface{ Status() metav1.Status }); ok && s.Status().Message != "" {
		return fmt.Errorf("%s", s.Status().Message)
	}
	return err
}
