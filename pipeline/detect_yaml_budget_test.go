package pipeline

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Budgets of one DetectPorts call on a hostile configuration of at most
// MaxConfigBytes. Parsing 512 KiB of YAML into nodes is the bulk of it.
const (
	bombTimeBudget  = 500 * time.Millisecond
	bombAllocBudget = 8 << 20
)

// wideBomb anchors one plugin with many properties and lists it as an input
// thousands of times: small to write, huge when every alias is expanded.
func wideBomb(props, aliases int) string {
	var b strings.Builder
	b.WriteString("x: &p\n  name: tcp\n  port: 5170\n")
	for i := range props {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString("pipeline:\n  inputs: [")
	for i := range aliases {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("*p")
	}
	b.WriteString("]\n")
	return b.String()
}

// laughs is the classic exponential bomb: each level lists the previous one
// ten times.
func laughs(levels int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "pipeline:\n  inputs: *l%d\n", levels-1)
	return b.String()
}

// padTo fills a configuration up to n bytes with a comment.
func padTo(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + "#" + strings.Repeat("x", n-len(s)-2) + "\n"
}

// measure runs f once and returns the CPU time the process spent (user and
// system, garbage collection included: unlike wall time it does not grow
// when other processes load the machine) and the bytes allocated.
func measure(f func()) (time.Duration, uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	f()
	took := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	return took, after.TotalAlloc - before.TotalAlloc
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestYAMLAliasBombsAreRefusedWithinBudget(t *testing.T) {
	for _, tc := range []struct {
		name, content string
	}{
		// About 270 KB with 20,000 aliases, like the configuration that once stopped the operator.
		{"wide-20000-aliases", wideBomb(18_000, 20_000)},
		{"wide-512KiB", wideBomb(30_000, 40_000)},
		// Fewer aliases than MaxYAMLAliases, each expanding a large mapping.
		{"wide-10000-aliases-512KiB", wideBomb(38_000, 9_000)},
		// The same with the anchored node written in flow style.
		{"wide-flow-512KiB", func() string {
			var b strings.Builder
			b.WriteString("x: &p {name: tcp, port: 5170")
			for i := range 30_000 {
				fmt.Fprintf(&b, ", k%d: v", i)
			}
			b.WriteString("}\npipeline:\n  inputs: [")
			for i := range 9_000 {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString("*p")
			}
			b.WriteString("]\n")
			return b.String()
		}()},
		{"laughs-9-levels", laughs(9)},
		{"laughs-padded-512KiB", padTo(laughs(9), v1alpha1.MaxConfigBytes)},
		{"many-small-anchors-512KiB", func() string {
			var b strings.Builder
			b.WriteString("a: &a [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\npipeline:\n  inputs: [")
			for b.Len() < v1alpha1.MaxConfigBytes-10 {
				b.WriteString("*a,")
			}
			b.WriteString("*a]\n")
			return b.String()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.LessOrEqual(t, len(tc.content), v1alpha1.MaxConfigBytes)
			var err error
			took, alloc := measure(func() {
				_, err = DetectPorts(v1alpha1.ConfigFormatYAML, tc.content, nil)
			})
			t.Logf("%d bytes: refused in %v, %.1f MiB allocated", len(tc.content), took, float64(alloc)/(1<<20))
			require.Error(t, err)
			assert.Regexp(t, `aliases expand to more than 100000 nodes|aliases \(\*name\): at most 10000 are read`, err.Error())
			assert.Less(t, took, bombTimeBudget)
			assert.Less(t, alloc, uint64(bombAllocBudget))
		})
	}
}

func TestYAMLAliasesWithinBudgetStillWork(t *testing.T) {
	det, err := DetectPorts(v1alpha1.ConfigFormatYAML,
		"x: &p {name: tcp, port: 5170}\ny: &q {name: forward}\npipeline:\n  inputs: [*p, *q]\n", nil)
	require.NoError(t, err)
	require.Len(t, det.Ports, 2)
	assert.Equal(t, int32(5170), det.Ports[0].Port.Number)
	assert.Equal(t, int32(24224), det.Ports[1].Port.Number)

	// A modest fan-out below the budget passes.
	_, err = DetectPorts(v1alpha1.ConfigFormatYAML, wideBomb(10, 1000), nil)
	require.NoError(t, err)
	// A '*' inside values is no alias.
	det, err = DetectPorts(v1alpha1.ConfigFormatYAML, "pipeline:\n  inputs:\n    - {name: tcp, port: 1, tag: 'a.*'}\n  outputs:\n    - {name: stdout, match: '*'}\n", nil)
	require.NoError(t, err)
	require.Len(t, det.Ports, 1)
}

func TestCountAliases(t *testing.T) {
	assert.Equal(t, 0, countAliases("match: '*'\ntag: kube.*\nx: a*b\n"))
	assert.Equal(t, 4, countAliases("a: *x\nb: [*y,*z]\n- *w\n"))
	assert.Equal(t, 1, countAliases("*top"))
}

func TestYAMLSelfReferentialAnchorIsRefused(t *testing.T) {
	_, err := DetectPorts(v1alpha1.ConfigFormatYAML, "a: &a [1, *a]\npipeline:\n  inputs: *a\n", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "anchor &a contains an alias to itself")
}

func TestOversizedConfigurationIsRefused(t *testing.T) {
	for _, f := range []v1alpha1.ConfigFormat{v1alpha1.ConfigFormatYAML, v1alpha1.ConfigFormatClassic} {
		_, err := DetectPorts(f, strings.Repeat("#\n", v1alpha1.MaxConfigBytes/2+1), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "larger than the 524288")
	}
}

// FuzzDetectYAMLBudget grows fuzzed YAML into alias-heavy documents up to
// MaxConfigBytes; every one is answered within the time and allocation budget.
func FuzzDetectYAMLBudget(f *testing.F) {
	f.Add("a: &a [x, x]\n", uint16(50), uint16(3))
	f.Add("x: &p {name: tcp, port: 1}\n", uint16(2000), uint16(1))
	f.Add("l: &l {a: [1,2,3]}\n", uint16(10), uint16(6))
	f.Fuzz(func(t *testing.T, head string, fanout, levels uint16) {
		if len(head) > 4096 {
			return
		}
		var b strings.Builder
		b.WriteString(head)
		b.WriteString("\nz0: &z0 [q, q, q, q]\n")
		lv := int(levels%12) + 1
		fan := int(fanout%4096) + 1
		for i := 1; i <= lv && b.Len() < v1alpha1.MaxConfigBytes/2; i++ {
			fmt.Fprintf(&b, "z%d: &z%d [", i, i)
			for j := 0; j < fan && b.Len() < v1alpha1.MaxConfigBytes-64; j++ {
				fmt.Fprintf(&b, "*z%d,", i-1)
			}
			b.WriteString("q]\n")
		}
		fmt.Fprintf(&b, "pipeline: {inputs: *z%d}\n", lv)
		content := b.String()
		if len(content) > v1alpha1.MaxConfigBytes {
			return
		}
		var det Detection
		var err error
		took, alloc := measure(func() { det, err = DetectPorts(v1alpha1.ConfigFormatYAML, content, nil) })
		checkDetection(t, det, err)
		// Fuzzing runs workers in parallel: the time budget is looser here.
		assert.Less(t, took, 4*bombTimeBudget, "%d bytes", len(content))
		assert.Less(t, alloc, uint64(2*bombAllocBudget), "%d bytes", len(content))
	})
}
