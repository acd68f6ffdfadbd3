package fbmetrics

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture returns the answer of one endpoint in the captured Fluent Bit 5.1.1
// answers ("== GET <path>" blocks).
func fixture(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/fluent-bit-5.1.1-http-api.txt")
	require.NoError(t, err)
	blocks := FixtureBlocks(string(data))
	body, ok := blocks[path]
	require.True(t, ok, "no block for %s", path)
	return []byte(body)
}

func TestParseFluentBit511(t *testing.T) {
	m, err := Parse(fixture(t, Path))
	require.NoError(t, err)
	require.Len(t, m.Plugins, 4)
	assert.Equal(t, Plugin{Kind: KindInput, Name: "http.1", Counters: map[string]uint64{"records": 1, "bytes": 22}}, m.Plugins[0])
	assert.Equal(t, Plugin{Kind: KindInput, Name: "tcp.0", Counters: map[string]uint64{"records": 50, "bytes": 1691}}, m.Plugins[1])
	assert.Equal(t, KindOutput, m.Plugins[2].Kind)
	assert.Equal(t, "null.1", m.Plugins[2].Name)
	assert.Equal(t, "stdout.0", m.Plugins[3].Name)
	assert.Equal(t, map[string]uint64{"proc_records": 51, "proc_bytes": 1713, "errors": 0, "retries": 0,
		"retries_failed": 0, "dropped_records": 0, "retried_records": 0}, m.Plugins[3].Counters)
	assert.Equal(t, Totals{RecordsIn: 51, BytesIn: 1713, RecordsOut: 101, BytesOut: 3404}, m.Totals())
}

// The v1 numbers agree with the Prometheus text of the same run.
func TestParseAgreesWithPrometheusText(t *testing.T) {
	m, err := Parse(fixture(t, Path))
	require.NoError(t, err)
	prom := string(fixture(t, "/api/v1/metrics/prometheus"))
	for _, p := range m.Plugins {
		for k, v := range p.Counters {
			line := "fluentbit_" + string(p.Kind) + "_" + k + "_total{name=\"" + p.Name + "\"} "
			i := strings.Index(prom, line)
			require.GreaterOrEqual(t, i, 0, "prometheus text has %s", line)
			fields := strings.Fields(prom[i+len(line):])
			assert.Equal(t, strings.TrimSpace(fields[0]), strconv.FormatUint(v, 10), line)
		}
	}
}

func TestParseFilterAndUnknownFields(t *testing.T) {
	m, err := Parse([]byte(`{"input":{},"filter":{"grep.0":{"drop_records":7,"add_records":1,"note":"x"}},"output":{},"extra":{}}`))
	require.NoError(t, err)
	require.Len(t, m.Plugins, 1)
	assert.Equal(t, map[string]uint64{"drop_records": 7, "add_records": 1}, m.Plugins[0].Counters)
	assert.Equal(t, Totals{Dropped: 7}, m.Totals())
}

func TestParseRejects(t *testing.T) {
	for _, body := range []string{"", "ok\n", "null", `[1]`, `{"input":[1]}`,
		string(fixture(t, "/api/v1/uptime")), string(fixture(t, "/api/v2/metrics"))} {
		_, err := Parse([]byte(body))
		assert.Error(t, err, "%.40q", body)
	}
	_, err := Parse(make([]byte, MaxBody+1))
	assert.ErrorContains(t, err, "exceeds")
}

func TestRate(t *testing.T) {
	prev := Totals{RecordsIn: 100, BytesIn: 1000, RecordsOut: 90, BytesOut: 900, Errors: 1}
	cur := Totals{RecordsIn: 150, BytesIn: 3000, RecordsOut: 140, BytesOut: 2900, Errors: 1, Retries: 4}
	assert.Equal(t, Rates{RecordsIn: 10, BytesIn: 400, RecordsOut: 10, BytesOut: 400, Retries: 0.8}, Rate(prev, cur, 5*time.Second))
	assert.Equal(t, Rates{}, Rate(prev, cur, 0))
	// A restart: the counters start again from zero; rates are never negative.
	restarted := Totals{RecordsIn: 5, BytesIn: 50}
	r := Rate(cur, restarted, 5*time.Second)
	assert.Equal(t, Rates{RecordsIn: 1, BytesIn: 10}, r)
}

func TestPluginRates(t *testing.T) {
	m1, err := Parse(fixture(t, Path))
	require.NoError(t, err)
	t0 := time.Unix(1000, 0)
	m2, err := Parse([]byte(`{"input":{"tcp.0":{"records":60,"bytes":2191},"http.1":{"records":1,"bytes":22},"dummy.2":{"records":3,"bytes":30}},
		"filter":{},"output":{"stdout.0":{"proc_records":61,"proc_bytes":2213,"errors":2,"retries":0,"retries_failed":0,"dropped_records":0,"retried_records":0},
		"null.1":{"proc_records":10,"proc_bytes":100,"errors":0,"retries":0,"retries_failed":0,"dropped_records":0,"retried_records":0}}}`))
	require.NoError(t, err)
	first := PluginRates(nil, Reading{At: t0, Metrics: m1})
	for _, p := range first {
		assert.Nil(t, p.Rates, "no rates on the first reading: %s", p.Name)
	}
	got := PluginRates(&Reading{At: t0, Metrics: m1}, Reading{At: t0.Add(5 * time.Second), Metrics: m2})
	byName := map[string]PluginRate{}
	for _, p := range got {
		byName[p.Name] = p
	}
	require.Len(t, byName, 5)
	assert.Nil(t, byName["dummy.2"].Rates, "a plugin new in the second reading")
	assert.Equal(t, Rates{RecordsIn: 2, BytesIn: 100}, *byName["tcp.0"].Rates)
	assert.Equal(t, Rates{RecordsOut: 2, BytesOut: 100, Errors: 0.4}, *byName["stdout.0"].Rates)
	// null.1 went from 50 to 10: Fluent Bit restarted; counted from zero.
	assert.Equal(t, Rates{RecordsOut: 2, BytesOut: 20}, *byName["null.1"].Rates)
}

func TestFixtureBlocks(t *testing.T) {
	data, err := os.ReadFile("testdata/fluent-bit-5.1.1-http-api.txt")
	require.NoError(t, err)
	b := FixtureBlocks(string(data))
	assert.Equal(t, "ok", b["/api/v1/health"])
	assert.True(t, strings.HasPrefix(b["/api/v1/uptime"], `{"uptime_sec":5,`))
	assert.Len(t, b, 7)
}

func FuzzParse(f *testing.F) {
	f.Add(fixture(f, Path))
	f.Add([]byte(`{"filter":{"a":{"drop_records":1}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err != nil {
			return
		}
		_ = m.Totals()
		_ = PluginRates(&Reading{Metrics: m}, Reading{At: time.Unix(1, 0), Metrics: m})
	})
}
