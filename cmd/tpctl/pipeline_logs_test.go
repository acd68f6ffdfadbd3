package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
)

func logsTestPod(name, pipeline string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tp", Labels: map[string]string{v1alpha1.LabelPipeline: pipeline}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pipeline"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "pipeline", ContainerID: "c-" + name,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
}

type logsTestClient struct {
	clusterClient
	*manage.LogReader
}

// logsCluster has pipeline "a" with pods a-1 and a-2; open serves their logs.
func logsCluster(t *testing.T, open manage.LogOpener) (logsConnect, *int) {
	t.Helper()
	m := mgmtCluster(t)
	m.AddPipeline(&v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: v1alpha1.PipelineSpec{Instance: "core"}})
	cs := fake.NewClientset(logsTestPod("a-1", "a"), logsTestPod("a-2", "a"), logsTestPod("b-1", "b"))
	calls := 0
	return func(_, namespace string) (logsClient, error) {
		calls++
		return logsTestClient{clusterClient: m, LogReader: manage.NewLogReader(cs.CoreV1(), "tp", open)}, nil
	}, &calls
}

func staticLogs(text map[string]string) manage.LogOpener {
	return func(_ context.Context, _, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(text[pod])), nil
	}
}

func logsRun(ctx context.Context, connect logsConnect, args ...string) mgmtResult {
	var cf clusterFlags
	parent := &cobra.Command{Use: "pipeline", SilenceUsage: true, SilenceErrors: true}
	cf.register(parent)
	parent.AddCommand(pipelineLogsCmd(connect, &cf))
	parent.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	var out, errOut bytes.Buffer
	parent.SetOut(&out)
	parent.SetErr(&errOut)
	parent.SetArgs(append([]string{"logs"}, args...))
	err := parent.ExecuteContext(ctx)
	return mgmtResult{out.String(), errOut.String(), err}
}

const ts1 = "2025-01-01T00:00:01.5Z "

func TestPipelineLogsPrintsMergedLogs(t *testing.T) {
	connect, _ := logsCluster(t, staticLogs(map[string]string{"a-1": ts1 + "one\n", "a-2": ts1 + "two\n", "b-1": ts1 + "other\n"}))
	r := logsRun(context.Background(), connect, "a")
	require.NoError(t, r.err)
	assert.Equal(t, "[a-1] one\n[a-2] two\n", r.out)

	r = logsRun(context.Background(), connect, "a", "--pod", "a-2", "--timestamps")
	require.NoError(t, r.err)
	assert.Equal(t, "2025-01-01T00:00:01.5Z two\n", r.out)
}

func TestPipelineLogsErrors(t *testing.T) {
	connect, calls := logsCluster(t, staticLogs(nil))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"a", "--tail", "-2"}, "--tail -2"},
		{[]string{"a", "-f", "--previous"}, "cannot be followed"},
		{[]string{"a", "--since", "-5m"}, "--since -5m0s: must not be negative"},
		{[]string{"a", "--since", "yesterday"}, `invalid argument "yesterday" for "--since"`},
		{[]string{"a", "--tail", "many"}, `invalid argument "many" for "--tail"`},
	} {
		r := logsRun(context.Background(), connect, tc.args...)
		require.Error(t, r.err, tc.args)
		assert.Contains(t, r.err.Error(), tc.want)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), tc.args)
	}
	assert.Zero(t, *calls, "bad flags are refused before connecting")

	r := logsRun(context.Background(), connect, "nope")
	require.Error(t, r.err)
	assert.EqualError(t, r.err, `pipeline "nope" not found in namespace "tp"; existing: a`)
	assert.Equal(t, cli.ExitError, cli.ExitCode(r.err), "as `pipeline get` of a missing pipeline")

	r = logsRun(context.Background(), connect, "a", "--pod", "b-1")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), `pod "b-1" is not a pod of pipeline "a"`)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.Empty(t, r.out)
}

func TestPipelineLogsFlagsAreRegistered(t *testing.T) {
	m := mgmtCluster(t)
	r := mgmtPipeline(t, m, "logs", "a", "--tail", "-3")
	require.Error(t, r.err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))

	r = mgmtPipeline(t, m, "logs", "--help")
	require.NoError(t, r.err)
	for _, want := range []string{"--follow", "--previous", "--since", "--tail", "--pod", "--namespace", "--kubeconfig",
		"tpctl pipeline logs syslog -f --tail 20", "Ctrl-C"} {
		assert.Contains(t, r.out, want)
	}
}

// ctrlCReader yields one line, then acts as Ctrl-C: it cancels the command
// and blocks until the stream is closed.
type ctrlCReader struct {
	line   *strings.Reader
	cancel context.CancelFunc
	closed chan struct{}
}

func (r *ctrlCReader) Read(p []byte) (int, error) {
	if r.line.Len() > 0 {
		return r.line.Read(p)
	}
	r.cancel()
	<-r.closed
	return 0, io.EOF
}

func (r *ctrlCReader) Close() error {
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	return nil
}

func TestPipelineLogsFollowEndsCleanlyOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connect, _ := logsCluster(t, func(_ context.Context, _, pod string, _ *corev1.PodLogOptions) (io.ReadCloser, error) {
		if pod != "a-1" {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return &ctrlCReader{line: strings.NewReader(ts1 + "running\n"), cancel: cancel, closed: make(chan struct{})}, nil
	})
	done := make(chan mgmtResult, 1)
	go func() { done <- logsRun(ctx, connect, "a", "-f", "--pod", "a-1") }()
	select {
	case r := <-done:
		require.NoError(t, r.err, "an interrupted follow exits 0")
		assert.Equal(t, "running\n", r.out)
		assert.Empty(t, r.errOut, "no noise on stderr")
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not end on interrupt")
	}
}
