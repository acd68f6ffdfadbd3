package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

type topTestClient struct {
	clusterClient
	*manage.MetricsCollector
}

func topTestPod(name, pl string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tp", UID: k8stypes.UID("uid-" + name),
			Labels:      map[string]string{v1alpha1.LabelPipeline: pl},
			Annotations: map[string]string{pipeline.MetricsPortAnnotation: "2020"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// topCluster has pipelines "a" (pod a-1, whose counters grow by 100 records
// and 1000 bytes at each read), "b" (pod b-1, unreadable) and "c" (no pods).
func topCluster(t *testing.T) topConnect {
	t.Helper()
	m := mgmtCluster(t)
	for _, n := range []string{"a", "b", "c"} {
		m.AddPipeline(&v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: n}, Spec: v1alpha1.PipelineSpec{Instance: "core"}})
	}
	cs := fake.NewClientset(topTestPod("a-1", "a"), topTestPod("b-1", "b"))
	var mu sync.Mutex
	reads := 0
	fetch := func(_ context.Context, ns, pod string, port int32, path string) ([]byte, error) {
		if pod == "b-1" {
			return nil, fmt.Errorf("connection refused")
		}
		mu.Lock()
		defer mu.Unlock()
		reads++
		n := reads * 100
		return []byte(fmt.Sprintf(`{"input":{"tcp.0":{"records":%d,"bytes":%d}},"filter":{},"output":{"null.1":{"proc_records":%d,"proc_bytes":%d,"errors":1,"retries":2,"retries_failed":0,"dropped_records":3,"retried_records":0}}}`,
			n, n*10, n, n*10)), nil
	}
	return func(string, string) (topClient, error) {
		return topTestClient{clusterClient: m, MetricsCollector: manage.NewMetricsCollector(cs.CoreV1(), "tp", fetch, manage.MetricsOptions{})}, nil
	}
}

func topRun(ctx context.Context, connect topConnect, tty bool, args ...string) mgmtResult {
	var cf clusterFlags
	parent := &cobra.Command{Use: "pipeline", SilenceUsage: true, SilenceErrors: true}
	cf.register(parent)
	parent.AddCommand(pipelineTopCmd(connect, &cf, func(any) bool { return tty }))
	parent.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	var out, errOut bytes.Buffer
	parent.SetOut(&out)
	parent.SetErr(&errOut)
	parent.SetArgs(append([]string{"top"}, args...))
	err := parent.ExecuteContext(ctx)
	return mgmtResult{out.String(), errOut.String(), err}
}

func TestPipelineTopOnceTable(t *testing.T) {
	r := topRun(context.Background(), topCluster(t), false, "--once", "--interval", "200ms")
	require.NoError(t, r.err)
	lines := strings.Split(r.out, "\n")
	require.GreaterOrEqual(t, len(lines), 4, r.out)
	assert.Regexp(t, `^NAME\s+PODS\s+RECORDS IN/S\s+BYTES IN/S\s+RECORDS OUT/S\s+BYTES OUT/S\s+ERRORS\s+RETRIES\s+DROPPED$`, lines[0])
	// 100 records and 1000 bytes more in ~200ms: about 500 records/s, 4.9 KiB/s.
	assert.Regexp(t, `^a\s+1\s+\d+\.\d\s+\d+\.\d KiB/s\s+\d+\.\d\s+\d+\.\d KiB/s\s+1\s+2\s+3$`, lines[1])
	assert.Regexp(t, `^b\s+0/1\s+n/a\s+n/a\s+n/a\s+n/a\s+0\s+0\s+0$`, lines[2])
	assert.Regexp(t, `^c\s+0\s+-`, lines[3])
	assert.Contains(t, r.out, "not read:\n  b: pod b-1: read /api/v1/metrics on port 2020: connection refused\n")
	assert.NotContains(t, r.out, clearScreen)
}

func TestPipelineTopOnceJSONWithPlugins(t *testing.T) {
	r := topRun(context.Background(), topCluster(t), false, "a", "--once", "--interval", "100ms", "-o", "json")
	require.NoError(t, r.err)
	var s manage.MetricsSample
	require.NoError(t, json.Unmarshal([]byte(r.out), &s), r.out)
	require.Len(t, s.Pipelines, 1)
	a := s.Pipelines[0]
	assert.Equal(t, "a", a.Name)
	assert.Equal(t, uint64(200), a.Totals.RecordsIn, "the second reading")
	require.NotNil(t, a.Rates)
	assert.Greater(t, a.Rates.BytesIn, 0.0)
	require.Len(t, a.Plugins, 2)
	assert.Equal(t, "tcp.0", a.Plugins[0].Name)
	require.NotNil(t, a.Plugins[0].Rates)
}

func TestPipelineTopNamedTableShowsPlugins(t *testing.T) {
	r := topRun(context.Background(), topCluster(t), false, "a", "--once", "--interval", "100ms")
	require.NoError(t, r.err)
	assert.Regexp(t, `(?m)^KIND\s+PLUGIN\s+RECORDS/S\s+BYTES/S\s+RECORDS\s+BYTES\s+ERRORS\s+RETRIES\s+DROPPED$`, r.out)
	assert.Regexp(t, `(?m)^input\s+tcp\.0\s+\d+\.\d\s+\S+ KiB/s\s+200\s+2\.0 KiB\s+0\s+0\s+0$`, r.out)
	assert.Regexp(t, `(?m)^output\s+null\.1\s+\d+\.\d\s+\S+ KiB/s\s+200\s+2\.0 KiB\s+1\s+2\s+3$`, r.out)
}

func TestPipelineTopLiveRefreshesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 550*time.Millisecond)
	defer cancel()
	r := topRun(ctx, topCluster(t), true, "--interval", "100ms")
	require.NoError(t, r.err, "the end of the context (Ctrl-C) is a normal end")
	frames := strings.Count(r.out, clearScreen)
	assert.GreaterOrEqual(t, frames, 3, r.out)
	first := strings.Split(r.out, clearScreen)[1]
	assert.Regexp(t, `(?m)^a\s+1\s+n/a\s+n/a`, first, "the first refresh has no rates")
	last := strings.Split(r.out, clearScreen)[frames]
	assert.Regexp(t, `(?m)^a\s+1\s+\d+\.\d\s`, last)

	// Not a terminal: refreshes are appended.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel2()
	r = topRun(ctx2, topCluster(t), false, "--interval", "100ms")
	require.NoError(t, r.err)
	assert.NotContains(t, r.out, clearScreen)
	assert.GreaterOrEqual(t, strings.Count(r.out, "NAME"), 2)
}

func TestPipelineTopRefusesBadInput(t *testing.T) {
	r := topRun(context.Background(), topCluster(t), false, "nope", "--once")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "nope")
	r = topRun(context.Background(), topCluster(t), false, "--interval", "1ms")
	assert.Equal(t, 2, cli.ExitCode(r.err))
	r = topRun(context.Background(), topCluster(t), false, "-o", "yaml")
	assert.Equal(t, 2, cli.ExitCode(r.err))
}

func TestPipelineGetShowsTheLastSample(t *testing.T) {
	m := mgmtCluster(t)
	for _, n := range []string{"a", "b", "c"} {
		m.AddPipeline(&v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: n}, Spec: v1alpha1.PipelineSpec{Instance: "core"}})
	}
	cs := fake.NewClientset(topTestPod("a-1", "a"), topTestPod("b-1", "b"))
	fetch := func(_ context.Context, _, pod string, _ int32, _ string) ([]byte, error) {
		if pod == "b-1" {
			return nil, fmt.Errorf("connection refused")
		}
		return []byte(`{"input":{"tcp.0":{"records":50,"bytes":1691}},"filter":{},"output":{"null.1":{"proc_records":50,"proc_bytes":1691,"errors":1,"retries":2,"retries_failed":0,"dropped_records":3,"retried_records":0}}}`), nil
	}
	d := mgmtDeps(m, false)
	d.metrics = func(string, string) (metricsCollector, error) {
		return manage.NewMetricsCollector(cs.CoreV1(), "tp", fetch, manage.MetricsOptions{}), nil
	}
	r := mgmtRun(t, newPipelineCmdWith(d), "", "get", "a")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "\nMetrics (counted since the pods started; rates: tpctl pipeline top a):\n"+
		"  pods read 1, records in 50 (1.7 KiB), out 50 (1.7 KiB), errors 1, retries 2, dropped 3\n")

	r = mgmtRun(t, newPipelineCmdWith(d), "", "get", "b")
	require.NoError(t, r.err, "a pod that cannot be read does not fail get")
	assert.Contains(t, r.out, "pods read 0/1")
	assert.Contains(t, r.out, "b: pod b-1: read /api/v1/metrics on port 2020: connection refused")

	r = mgmtRun(t, newPipelineCmdWith(d), "", "get", "c")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "\nMetrics: no running pod\n")

	r = mgmtRun(t, newPipelineCmdWith(d), "", "get", "a", "-o", "json")
	require.NoError(t, r.err)
	assert.NotContains(t, r.out, "Metrics", "only the table has the sample")

	d.metrics = func(string, string) (metricsCollector, error) { return nil, fmt.Errorf("no kubeconfig") }
	r = mgmtRun(t, newPipelineCmdWith(d), "", "get", "a")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "\nMetrics: not read: no kubeconfig\n")
}
