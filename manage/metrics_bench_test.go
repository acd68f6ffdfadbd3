package manage

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollect100Pipelines is one collection cycle of 100 pipelines
// (one pod each, answering what Fluent Bit 5.1.1 answered) through a fake
// API server's pod proxy, with the real client-go. cpu-ns/op is the CPU of
// the whole process per cycle, the fake API server's included, so it bounds
// the collector's own; %core@5s is that CPU as a share of one core when a
// cycle runs every 5 s.
func BenchmarkCollect100Pipelines(b *testing.B) {
	body := fluentBit511Metrics(b)
	f := &fakeAPIServer{answers: map[string]string{}}
	for i := range 100 {
		name := fmt.Sprintf("pipeline-%03d", i)
		pod := name + "-0"
		f.pods = append(f.pods, metricsPod(pod, name, 2020))
		f.answers[pod] = body
	}
	c := newTestCollector(b, f, nil)
	ctx := context.Background()
	// A first reading, so that every cycle measured computes rates.
	got, err := c.Collect(ctx)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
	for range b.N {
		got, err = c.Collect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		f.set(func(f *fakeAPIServer) { f.proxied = f.proxied[:0] })
	}
	cpu := cpuTime(b) - start
	b.StopTimer()
	require.Len(b, got, 100)
	require.NotNil(b, got[0].Rates)
	perOp := float64(cpu.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp, "cpu-ns/op")
	b.ReportMetric(perOp/float64((5*time.Second).Nanoseconds())*100, "%core@5s")
}
