package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/fbmetrics"
	"github.com/tpctl/tpctl/pipeline"
)

// fluentBit511Metrics is what Fluent Bit 5.1.1 answered on /api/v1/metrics.
func fluentBit511Metrics(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("fbmetrics/testdata/fluent-bit-5.1.1-http-api.txt")
	require.NoError(t, err)
	body, ok := fbmetrics.FixtureBlocks(string(data))[fbmetrics.Path]
	require.True(t, ok)
	return body
}

// fakeAPIServer answers pod lists and the pod proxy as the API server does,
// with each pod's Fluent Bit answer set by the test.
type fakeAPIServer struct {
	mu      sync.Mutex
	pods    []corev1.Pod
	answers map[string]string // pod name → /api/v1/metrics body
	fail    map[string]int    // pod name → HTTP status of the proxy
	proxied []string          // proxied paths
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const prefix = "/api/v1/namespaces/tp/pods"
	switch {
	case r.URL.Path == prefix:
		sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range f.pods {
			if sel.Matches(labels.Set(p.Labels)) {
				list.Items = append(list.Items, p)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(r.URL.Path, prefix+"/"):
		rest := strings.TrimPrefix(r.URL.Path, prefix+"/")
		target, path, ok := strings.Cut(rest, "/proxy")
		parts := strings.Split(target, ":") // http:NAME:PORT
		if !ok || len(parts) != 3 || parts[0] != "http" {
			http.Error(w, "bad proxy path "+r.URL.Path, http.StatusBadRequest)
			return
		}
		f.proxied = append(f.proxied, rest)
		name := parts[1]
		if code := f.fail[name]; code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
				Status: "Failure", Code: int32(code), Message: fmt.Sprintf("pods %q not found", name), Reason: metav1.StatusReasonNotFound})
			return
		}
		body, ok := f.answers[name]
		if !ok || path != fbmetrics.Path {
			http.Error(w, "no such endpoint", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(body))
	default:
		http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
	}
}

func (f *fakeAPIServer) set(fn func(f *fakeAPIServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func metricsPod(name, pl string, port int32) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tp", UID: types.UID("uid-" + name),
			Labels:      map[string]string{v1alpha1.LabelPipeline: pl},
			Annotations: map[string]string{pipeline.MetricsPortAnnotation: fmt.Sprint(port)}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func metricsBody(in, inBytes, out, outBytes, errs uint64) string {
	return fmt.Sprintf(`{"input":{"tcp.0":{"records":%d,"bytes":%d}},"filter":{},"output":{"null.0":{"proc_records":%d,"proc_bytes":%d,"errors":%d,"retries":0,"retries_failed":0,"dropped_records":0,"retried_records":0}}}`,
		in, inBytes, out, outBytes, errs)
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func newTestCollector(t testing.TB, f *fakeAPIServer, clock *fakeClock) *MetricsCollector {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	require.NoError(t, err)
	o := MetricsOptions{}
	if clock != nil {
		o.Now = clock.Now
	}
	return NewMetricsCollector(cs.CoreV1(), "tp", nil, o)
}

func TestCollectFluentBitAnswerThroughThePodProxy(t *testing.T) {
	f := &fakeAPIServer{pods: []corev1.Pod{metricsPod("logs-a", "logs", 2020)},
		answers: map[string]string{"logs-a": fluentBit511Metrics(t)}}
	c := newTestCollector(t, f, nil)
	got, err := c.Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, []string{"http:logs-a:2020/proxy/api/v1/metrics"}, f.proxied)
	pm := got[0]
	assert.Equal(t, "logs", pm.Name)
	assert.Equal(t, 1, pm.Pods)
	assert.Equal(t, 1, pm.Read)
	assert.Equal(t, fbmetrics.Totals{RecordsIn: 51, BytesIn: 1713, RecordsOut: 101, BytesOut: 3404}, pm.Totals)
	assert.Nil(t, pm.Rates, "one reading has no rates")
	require.Len(t, pm.Plugins, 4)
	assert.Equal(t, "http.1", pm.Plugins[0].Name)
	assert.Equal(t, "stdout.0", pm.Plugins[3].Name)
	assert.Empty(t, pm.Errors)
}

func TestCollectRatesAcrossPodsComingAndGoing(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	f := &fakeAPIServer{
		pods: []corev1.Pod{metricsPod("logs-a", "logs", 2020), metricsPod("logs-b", "logs", 2020), metricsPod("web-a", "web", 2021)},
		answers: map[string]string{"logs-a": metricsBody(100, 1000, 100, 1000, 0), "logs-b": metricsBody(10, 100, 10, 100, 0),
			"web-a": metricsBody(0, 0, 0, 0, 0)},
	}
	c := newTestCollector(t, f, clock)
	first, err := c.Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, first, 2)
	assert.Equal(t, fbmetrics.Totals{RecordsIn: 110, BytesIn: 1100, RecordsOut: 110, BytesOut: 1100}, first[0].Totals)

	// 5 s later: logs-a moved on, logs-b is gone (deleted, then no longer
	// listed), logs-c is new, web-a restarted (its counters went down).
	clock.t = clock.t.Add(5 * time.Second)
	f.set(func(f *fakeAPIServer) {
		f.pods = []corev1.Pod{metricsPod("logs-a", "logs", 2020), metricsPod("logs-c", "logs", 2020), metricsPod("web-a", "web", 2021)}
		f.answers["logs-a"] = metricsBody(150, 6000, 140, 5000, 2)
		f.answers["logs-c"] = metricsBody(7, 70, 7, 70, 0)
		f.answers["web-a"] = metricsBody(0, 0, 0, 0, 0)
	})
	second, err := c.Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, second, 2)
	logs := second[0]
	assert.Equal(t, 2, logs.Read)
	assert.Equal(t, fbmetrics.Totals{RecordsIn: 157, BytesIn: 6070, RecordsOut: 147, BytesOut: 5070, Errors: 2}, logs.Totals)
	require.NotNil(t, logs.Rates)
	assert.Equal(t, fbmetrics.Rates{RecordsIn: 10, BytesIn: 1000, RecordsOut: 8, BytesOut: 800, Errors: 0.4}, *logs.Rates,
		"rates of the pod read twice; the new pod adds none yet, the gone pod takes none away")
	for _, p := range logs.Plugins {
		require.NotNil(t, p.Rates, p.Name)
	}
	assert.Equal(t, fbmetrics.Rates{RecordsIn: 0, BytesIn: 0}, *second[1].Rates)

	// The restarted pod counts from zero: never a negative rate.
	clock.t = clock.t.Add(5 * time.Second)
	f.set(func(f *fakeAPIServer) {
		f.answers["logs-a"] = metricsBody(5, 50, 5, 50, 0)
		f.answers["logs-c"] = metricsBody(12, 120, 12, 120, 0)
	})
	third, err := c.Collect(context.Background(), "logs")
	require.NoError(t, err)
	require.Len(t, third, 1, "only the named pipeline")
	assert.Equal(t, fbmetrics.Rates{RecordsIn: 2, BytesIn: 20, RecordsOut: 2, BytesOut: 20}, *third[0].Rates)
	c.mu.Lock()
	assert.Len(t, c.prev, 3, "web-a's reading is kept for the next full Collect")
	assert.NotContains(t, c.prev, types.UID("uid-logs-b"), "a gone pod is forgotten")
	c.mu.Unlock()
}

func TestCollectNamesPodsItCannotRead(t *testing.T) {
	noPort := metricsPod("logs-old", "logs", 0)
	noPort.Annotations = nil
	byContainerPort := metricsPod("logs-port", "logs", 0)
	byContainerPort.Annotations = nil
	byContainerPort.Spec.Containers = []corev1.Container{{Name: "pipeline", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 2022}}}}
	pending := metricsPod("logs-pending", "logs", 2020)
	pending.Status.Phase = corev1.PodPending
	f := &fakeAPIServer{
		pods: []corev1.Pod{metricsPod("logs-a", "logs", 2020), metricsPod("logs-gone", "logs", 2020), noPort, byContainerPort, pending,
			metricsPod("logs-bad", "logs", 2020)},
		answers: map[string]string{"logs-a": metricsBody(1, 10, 1, 10, 0), "logs-port": metricsBody(2, 20, 2, 20, 0), "logs-bad": "ok\n"},
		fail:    map[string]int{"logs-gone": http.StatusNotFound},
	}
	c := newTestCollector(t, f, nil)
	got, err := c.Collect(context.Background())
	require.NoError(t, err, "unreadable pods are no error of the collection")
	require.Len(t, got, 1)
	pm := got[0]
	assert.Equal(t, 5, pm.Pods, "the pending pod is not counted")
	assert.Equal(t, 2, pm.Read)
	assert.Equal(t, uint64(30), pm.Totals.BytesIn)
	require.Len(t, pm.Errors, 3)
	assert.Equal(t, "logs-bad", pm.Errors[0].Pod)
	assert.Contains(t, pm.Errors[0].Reason, "parse Fluent Bit metrics")
	assert.Equal(t, "logs-gone", pm.Errors[1].Pod)
	assert.Contains(t, pm.Errors[1].Reason, "read /api/v1/metrics on port 2020: ")
	assert.Contains(t, pm.Errors[1].Reason, "logs-gone")
	assert.Equal(t, "logs-old", pm.Errors[2].Pod)
	assert.Contains(t, pm.Errors[2].Reason, "no metrics port")
}

func TestCollectFailsWhenPodsCannotBeListed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	require.NoError(t, err)
	_, err = NewMetricsCollector(cs.CoreV1(), "tp", nil, MetricsOptions{}).Collect(context.Background())
	assert.ErrorContains(t, err, "list pipeline pods")
}

func TestCollectBoundsConcurrency(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	fetch := func(ctx context.Context, _, _ string, _ int32, _ string) ([]byte, error) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return []byte(metricsBody(1, 1, 1, 1, 0)), nil
	}
	f := &fakeAPIServer{}
	for i := range 20 {
		f.pods = append(f.pods, metricsPod(fmt.Sprintf("p%d-0", i), fmt.Sprintf("p%d", i), 2020))
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	require.NoError(t, err)
	got, err := NewMetricsCollector(cs.CoreV1(), "tp", fetch, MetricsOptions{Concurrency: 3}).Collect(context.Background())
	require.NoError(t, err)
	assert.Len(t, got, 20)
	assert.LessOrEqual(t, most, 3)
	assert.Greater(t, most, 1)
}

func TestCollectRefusesAnOversizedAnswer(t *testing.T) {
	f := &fakeAPIServer{pods: []corev1.Pod{metricsPod("logs-a", "logs", 2020)},
		answers: map[string]string{"logs-a": strings.Repeat(" ", fbmetrics.MaxBody+10)}}
	got, err := newTestCollector(t, f, nil).Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Len(t, got[0].Errors, 1)
	assert.Contains(t, got[0].Errors[0].Reason, "exceeds")
}
