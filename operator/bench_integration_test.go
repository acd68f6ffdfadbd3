//go:build integration

package operator

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/cluster"
)

// benchPipelines is the size of BenchmarkCreatePipelines.
var benchPipelines = flag.Int("pipelines", 500, "pipelines BenchmarkCreatePipelines creates")

// benchIdle is how long BenchmarkCreatePipelines lets the operator idle
// before it reads its idle resident set.
var benchIdle = flag.Duration("idle", 15*time.Second, "idle time before BenchmarkCreatePipelines reads the operator's idle RSS")

// BenchmarkCreatePipelines creates -pipelines pipelines (500 by default) of
// one instance at once, all asking for tcp/6000, against a `tpctl operator`
// process of its own (so its memory is measured alone), and reports:
//
//	s-assigned   seconds until every pipeline has PortsAssigned for its
//	             generation, with frontends checked to be unique
//	s-steady     seconds until, in addition, every pipeline has its Service
//	             and its Ready condition (status written by the operator)
//	MiB-peak-rss the operator process's peak resident set (VmHWM)
//	MiB-idle-rss its resident set (VmRSS) after -idle without changes
//
// Run: go test -tags integration -run '^$' -bench CreatePipelines -benchtime 1x ./operator/ -args -pipelines 5000
func BenchmarkCreatePipelines(b *testing.B) {
	n := *benchPipelines
	b.StopTimer()
	ctx := context.Background()
	bin := buildTpctl(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cp := cluster.StartControlPlane(ctx, b)
		cfg := cp.RESTConfig()
		require.NoError(b, installChartCRDs(ctx, cfg))
		cfg.QPS, cfg.Burst = 1000, 2000
		scheme, err := NewScheme()
		require.NoError(b, err)
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		require.NoError(b, err)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
		require.NoError(b, c.Create(ctx, ns))
		require.NoError(b, c.Create(ctx, &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core", Namespace: "bench"}}))
		op := startOperator(b, bin, cp.Kubeconfig())

		b.StartTimer()
		start := time.Now()
		work := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					p := newPipeline("bench", fmt.Sprintf("p%05d", j), tcpPort(6000))
					if err := c.Create(ctx, p); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for j := 0; j < n; j++ {
			work <- j
		}
		close(work)
		wg.Wait()
		created := time.Since(start)

		var assignedAt, steadyAt time.Duration
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			var list v1alpha1.PipelineList
			require.NoError(b, c.List(ctx, &list, client.InNamespace("bench")))
			var svcs corev1.ServiceList
			require.NoError(b, c.List(ctx, &svcs, client.InNamespace("bench")))
			ports, ready := 0, 0
			fronts := map[int32]string{}
			for _, p := range list.Items {
				cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
				if cond != nil && cond.ObservedGeneration == p.Generation && len(p.Status.Ports) == 1 && p.Status.Ports[0].Frontend != 0 {
					f := p.Status.Ports[0].Frontend
					if other, dup := fronts[f]; dup {
						b.Fatalf("frontend %d given to %s and %s", f, other, p.Name)
					}
					fronts[f] = p.Name
					ports++
				}
				if meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady) != nil {
					ready++
				}
			}
			if assignedAt == 0 && ports == n+1 { // + the health check
				assignedAt = time.Since(start)
				if _, ok := fronts[6443]; ok {
					b.Fatal("the node's tcp/6443 was given out")
				}
			}
			if assignedAt != 0 && ready == n+1 && len(svcs.Items) >= n+1 {
				steadyAt = time.Since(start)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.StopTimer()
		require.NotZero(b, steadyAt, "no steady state within 10 minutes")
		b.ReportMetric(created.Seconds(), "s-created")
		b.ReportMetric(assignedAt.Seconds(), "s-assigned")
		b.ReportMetric(steadyAt.Seconds(), "s-steady")
		b.ReportMetric(float64(op.memory(b, "VmHWM:"))/(1<<20), "MiB-peak-rss")
		time.Sleep(*benchIdle)
		b.ReportMetric(float64(op.memory(b, "VmRSS:"))/(1<<20), "MiB-idle-rss")
		op.stop(b)
		cp.Close()
	}
}

func buildTpctl(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "tpctl")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/tpctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "go build: %s", out)
	return bin
}

type operatorProc struct {
	cmd *exec.Cmd
	log string
}

func startOperator(b *testing.B, bin, kubeconfig string) *operatorProc {
	b.Helper()
	log := filepath.Join(b.TempDir(), "operator.log")
	f, err := os.Create(log)
	require.NoError(b, err)
	cmd := exec.Command(bin, "operator", "--kubeconfig", kubeconfig, "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--workers=4",
		"--default-image=tpctl.test/sink:1")
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(b, cmd.Start())
	f.Close()
	op := &operatorProc{cmd: cmd, log: log}
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if b.Failed() {
			data, _ := os.ReadFile(log)
			b.Logf("operator log:\n%s", tail(string(data), 50))
		}
	})
	return op
}

// memory reads one of the process's memory figures (VmHWM:, VmRSS:) in bytes.
func (o *operatorProc) memory(b *testing.B, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", o.cmd.Process.Pid))
	require.NoError(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(b, err)
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc status", field)
	return 0
}

func (o *operatorProc) stop(b *testing.B) {
	_ = o.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- o.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = o.cmd.Process.Kill()
		<-done
		b.Error("operator did not stop within 10s of SIGINT")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
