//go:build integration

package operator

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/cluster"
)

// benchPipelines is the size of BenchmarkCreatePipelines.
var benchPipelines = flag.Int("pipelines", 500, "pipelines BenchmarkCreatePipelines creates")

// benchIdle is how long BenchmarkCreatePipelines lets the operator idle
// before it reads its idle resident set.
var benchIdle = flag.Duration("idle", 15*time.Second, "idle time before BenchmarkCreatePipelines reads the operator's idle RSS")

// benchNodePorts is the node port range of the benchmark's cluster: room
// for one LoadBalancer Service per pipeline, above the frontends the
// pipelines get (from 6000 up).
var benchNodePorts = PortRange{Min: 20000, Max: 32767}

// benchCreators is how many pipelines the benchmark's client creates at
// a time: "at once" with bounded concurrency.
// benchWorkers defaults to the chart's `workers` value (the shipped default).
var benchWorkers = flag.Int("workers", 2, "the operator's --workers in BenchmarkCreatePipelines")

var benchCreators = flag.Int("creators", 32, "concurrent creations of BenchmarkCreatePipelines")

// benchSteady bounds the wait for the steady state.
var benchSteady = flag.Duration("steady-timeout", 10*time.Minute, "how long BenchmarkCreatePipelines waits for the steady state")

// benchProfiles, when set, is a directory where BenchmarkCreatePipelines
// writes the operator's CPU profiles (10 s each, from creation to steady
// state) and heap profiles (at assigned, steady and idle), read from its
// pprof endpoint on loopback.
var benchProfiles = flag.String("profile-dir", "", "directory for the operator's CPU and heap profiles (default: none)")

// BenchmarkCreatePipelines creates -pipelines pipelines (500 by default) of
// one instance at once, all asking for tcp/6000, against an operator
// process of its own (so its memory is measured alone): the binary the
// release's operator image ships, cmd/tpctl-operator, built as
// scripts/release builds it. It reports:
//
//	s-created    seconds the benchmark's client took to create them
//	             (-creators at a time)
//	s-assigned   seconds until every pipeline has PortsAssigned for its
//	             generation, with frontends checked to be unique
//	s-steady     seconds until, in addition, every pipeline has its Service
//	             and its Ready condition (status written by the operator)
//	MiB-peak-rss the operator process's peak resident set (VmHWM)
//	MiB-idle-rss its resident set (VmRSS) after -idle without changes
//	cpu-s/1000   CPU seconds (user and system) the operator used from its
//	             start to the steady state, per 1,000 pipelines: unlike
//	             the times, stable when other work shares the machine
//
// It logs the load average (/proc/loadavg) at the start and the end, since
// the times depend on what else runs on the machine.
//
// Run: go test -tags integration -run '^$' -bench CreatePipelines -benchtime 1x -timeout 40m ./operator/ -args -pipelines 5000
// (add -profile-dir DIR for the operator's CPU and heap profiles).
func BenchmarkCreatePipelines(b *testing.B) {
	n := *benchPipelines
	b.StopTimer()
	ctx := context.Background()
	bin := buildOperator(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Every pipeline's LoadBalancer Service takes a node port: the
		// default range (2,768 ports) could not hold thousands of them.
		require.LessOrEqual(b, n+1, int(benchNodePorts.Max-benchNodePorts.Min+1), "more pipelines than node ports")
		cp := cluster.StartControlPlane(ctx, b, cluster.ControlPlaneOptions{
			APIServerArgs: []string{"--service-node-port-range=" + benchNodePorts.String()}})
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
		// The progress is read from a watch (an informer cache of the
		// namespace), not by listing thousands of objects again and again,
		// which would load the API server the operator is measured against.
		watched, err := cache.New(cfg, cache.Options{Scheme: scheme,
			DefaultNamespaces: map[string]cache.Config{"bench": {}}, DefaultTransform: cache.TransformStripManagedFields()})
		require.NoError(b, err)
		watchCtx, stopWatch := context.WithCancel(ctx)
		go func() { _ = watched.Start(watchCtx) }()
		_, err = watched.GetInformer(ctx, &v1alpha1.Pipeline{})
		require.NoError(b, err)
		_, err = watched.GetInformer(ctx, &corev1.Service{})
		require.NoError(b, err)
		require.True(b, watched.WaitForCacheSync(ctx))
		op := startOperator(b, bin, cp.Kubeconfig(), *benchProfiles != "")
		stopCPU := op.profileCPU(b, *benchProfiles)

		b.Logf("load average at the start: %s", loadAvg())
		b.StartTimer()
		start := time.Now()
		work := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < *benchCreators; w++ {
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
		deadline := time.Now().Add(*benchSteady)
		for time.Now().Before(deadline) {
			var list v1alpha1.PipelineList
			require.NoError(b, watched.List(ctx, &list, client.InNamespace("bench"), client.UnsafeDisableDeepCopy))
			var svcs corev1.ServiceList
			require.NoError(b, watched.List(ctx, &svcs, client.InNamespace("bench"), client.UnsafeDisableDeepCopy))
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
				op.profileHeap(b, *benchProfiles, "assigned")
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
		cpuSteady := op.cpuSeconds(b)
		stopWatch()
		stopCPU()
		op.profileHeap(b, *benchProfiles, "steady")
		if steadyAt == 0 {
			// The figures so far, before the failure below.
			b.Logf("no steady state: s-assigned %.1f, MiB-peak-rss %.1f", assignedAt.Seconds(),
				float64(op.memory(b, "VmHWM:"))/(1<<20))
		}
		require.NotZero(b, assignedAt, "not all pipelines assigned within %s", *benchSteady)
		require.NotZero(b, steadyAt, "no steady state within %s", *benchSteady)
		b.ReportMetric(created.Seconds(), "s-created")
		b.ReportMetric(assignedAt.Seconds(), "s-assigned")
		b.ReportMetric(steadyAt.Seconds(), "s-steady")
		b.ReportMetric(float64(op.memory(b, "VmHWM:"))/(1<<20), "MiB-peak-rss")
		b.ReportMetric(cpuSteady*1000/float64(n), "cpu-s/1000")
		b.Logf("created in %.1f s (%d at a time); load average at the steady state: %s", created.Seconds(), *benchCreators, loadAvg())
		time.Sleep(*benchIdle)
		b.ReportMetric(float64(op.memory(b, "VmRSS:"))/(1<<20), "MiB-idle-rss")
		b.Logf("idle: anonymous %.1f MiB, file-backed %.1f MiB (the binary's pages)",
			float64(op.memory(b, "RssAnon:"))/(1<<20), float64(op.memory(b, "RssFile:"))/(1<<20))
		op.profileHeap(b, *benchProfiles, "idle")
		op.stop(b)
		cp.Close()
	}
}

// buildOperator builds cmd/tpctl-operator with the flags of scripts/release.
func buildOperator(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "tpctl-operator")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", bin, "../cmd/tpctl-operator")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "go build: %s", out)
	return bin
}

type operatorProc struct {
	cmd *exec.Cmd
	log string
	// pprof is the operator's pprof address (empty: not served).
	pprof string
}

func startOperator(b *testing.B, bin, kubeconfig string, pprof bool) *operatorProc {
	b.Helper()
	log := filepath.Join(b.TempDir(), "operator.log")
	f, err := os.Create(log)
	require.NoError(b, err)
	args := []string{"--kubeconfig", kubeconfig, "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--workers=" + strconv.Itoa(*benchWorkers),
		"--default-image=tpctl.test/sink:1", "--node-port-range=" + benchNodePorts.String()}
	op := &operatorProc{log: log}
	if pprof {
		op.pprof = freeLoopbackAddr(b)
		args = append(args, "--pprof-bind-address="+op.pprof)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(b, cmd.Start())
	f.Close()
	op.cmd = cmd
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

// cpuSeconds reads the CPU time (user and system) the process has used.
func (o *operatorProc) cpuSeconds(b *testing.B) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.cmd.Process.Pid))
	require.NoError(b, err)
	// The command (field 2) is in parentheses and may hold spaces: the
	// fields after it start at the state (field 3).
	rest := string(data)
	rest = rest[strings.LastIndexByte(rest, ')')+2:]
	f := strings.Fields(rest)
	require.Greater(b, len(f), 12, "short /proc stat")
	utime, err := strconv.ParseInt(f[11], 10, 64) // field 14
	require.NoError(b, err)
	stime, err := strconv.ParseInt(f[12], 10, 64) // field 15
	require.NoError(b, err)
	const ticks = 100 // USER_HZ on Linux
	return float64(utime+stime) / ticks
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown: " + err.Error()
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return strings.TrimSpace(string(data))
	}
	return strings.Join(f[:3], " ")
}

// freeLoopbackAddr returns a loopback address with a port nothing listens on.
func freeLoopbackAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	addr := l.Addr().String()
	require.NoError(b, l.Close())
	return addr
}

// fetchProfile saves the operator's pprof endpoint path into file.
func (o *operatorProc) fetchProfile(path, file string) error {
	resp, err := http.Get("http://" + o.pprof + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// profileHeap writes the operator's heap profile to dir/heap-<name>.pprof
// (nothing when dir is empty).
func (o *operatorProc) profileHeap(b *testing.B, dir, name string) {
	if dir == "" {
		return
	}
	if err := o.fetchProfile("/debug/pprof/heap", filepath.Join(dir, "heap-"+name+".pprof")); err != nil {
		b.Logf("heap profile %s: %v", name, err)
	}
	// The text form ends with the runtime's memory statistics.
	if err := o.fetchProfile("/debug/pprof/heap?debug=1", filepath.Join(dir, "heap-"+name+".txt")); err != nil {
		b.Logf("heap statistics %s: %v", name, err)
	}
}

// profileCPU writes 10-second CPU profiles of the operator to
// dir/cpu-NNN.pprof until the returned function is called (which waits for
// the profile being taken). Nothing when dir is empty.
func (o *operatorProc) profileCPU(b *testing.B, dir string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	require.NoError(b, os.MkdirAll(dir, 0o755))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			file := filepath.Join(dir, fmt.Sprintf("cpu-%03d.pprof", i))
			if err := o.fetchProfile("/debug/pprof/profile?seconds=10", file); err != nil {
				b.Logf("CPU profile %d: %v", i, err)
				time.Sleep(time.Second)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
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
