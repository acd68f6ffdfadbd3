package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage/fbmetrics"
)

// realFluentBit is what Fluent Bit 5.1.1 answered, per endpoint.
func realFluentBit(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../../../manage/fbmetrics/testdata/fluent-bit-5.1.1-http-api.txt")
	require.NoError(t, err)
	return fbmetrics.FixtureBlocks(string(data))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	return string(body)
}

// shape is the structure of a JSON document: object keys (recursively, with
// plugin instance names replaced by their kind's placeholder) and value types.
func shape(t *testing.T, body string) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	var walk func(v any, depth int, parent string) string
	walk = func(v any, depth int, parent string) string {
		switch x := v.(type) {
		case map[string]any:
			var parts []string
			seen := map[string]bool{}
			for k, e := range x {
				name := k
				if depth == 1 && (parent == "input" || parent == "output" || parent == "filter") {
					name = "<plugin>"
				}
				p := name + ":" + walk(e, depth+1, k)
				if !seen[p] {
					seen[p] = true
					parts = append(parts, p)
				}
			}
			sort.Strings(parts)
			return "{" + strings.Join(parts, ",") + "}"
		case float64:
			return "number"
		case string:
			return "string"
		default:
			return fmt.Sprintf("%T", v)
		}
	}
	return walk(v, 0, "")
}

func TestSinkAnswersFluentBitShapesOnTheMetricsPort(t *testing.T) {
	real := realFluentBit(t)
	tcp, udp, mport := freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp")
	cfg := Config{TCP: []int{tcp}, UDP: []int{udp}, Host: "127.0.0.1",
		HTTP: fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")), Metrics: fmt.Sprintf("127.0.0.1:%d", mport)}
	startSink(t, cfg, nil)
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)

	assert.Equal(t, strings.TrimSpace(real["/api/v1/health"]), strings.TrimSpace(get(t, base+"/api/v1/health")))
	up := get(t, base+"/api/v1/uptime")
	assert.Equal(t, shape(t, real["/api/v1/uptime"]), shape(t, up))
	assert.Contains(t, up, `"uptime_hr":"Fluent Bit has been running:  0 day, 0 hour, 0 minute and `)

	first := get(t, base+fbmetrics.Path)
	// The same keys and types as real Fluent Bit (whose filter map is empty too).
	assert.Equal(t, shape(t, real[fbmetrics.Path]), shape(t, first))
	m, err := fbmetrics.Parse([]byte(first))
	require.NoError(t, err)
	assert.Equal(t, fbmetrics.Totals{}, m.Totals())

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcp))
	require.NoError(t, err)
	_, err = c.Write([]byte("hello metrics"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	require.NoError(t, err)
	_, err = u.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, u.Close())

	require.Eventually(t, func() bool {
		m, err = fbmetrics.Parse([]byte(get(t, base+fbmetrics.Path)))
		return err == nil && m.Totals().BytesIn == 16
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, fbmetrics.Totals{RecordsIn: 2, BytesIn: 16, RecordsOut: 2, BytesOut: 16}, m.Totals())
	names := []string{}
	for _, p := range m.Plugins {
		names = append(names, string(p.Kind)+"/"+p.Name)
	}
	assert.Equal(t, []string{"input/tcp.0", "input/udp.1", "output/null.2"}, names)

	// The main HTTP endpoint answers the same API; the metrics port has no /received.
	assert.Contains(t, get(t, "http://"+cfg.HTTP+fbmetrics.Path), `"bytes":13`)
	resp, err := http.Get(base + "/received")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// -P equal to --http's port: one listener serves both (no bind clash).
func TestSinkMetricsOnTheHTTPPort(t *testing.T) {
	port := freePort(t, "tcp")
	cfg := Config{HTTP: fmt.Sprintf("127.0.0.1:%d", port), Metrics: fmt.Sprintf(":%d", port)}
	base, _ := startSink(t, cfg, nil)
	_, err := fbmetrics.Parse([]byte(get(t, base+fbmetrics.Path)))
	require.NoError(t, err)
}

func TestParseArgsFluentBitHTTPFlags(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := ParseArgs([]string{"--http=:2020", "-H", "-P", "2022"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":2022", cfg.Metrics)
	cfg, err = ParseArgs([]string{"--http_server", "--http_port=2030"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":2030", cfg.Metrics)
	cfg, err = ParseArgs([]string{"-H"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":2020", cfg.Metrics, "Fluent Bit's default port")
	cfg, err = ParseArgs([]string{"-P", "2022"}, none, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, cfg.Metrics, "-P alone does not start the server")
	_, err = ParseArgs([]string{"-H", "-P", "0"}, none, io.Discard)
	assert.ErrorContains(t, err, "out of range")
}

func TestUptimeHR(t *testing.T) {
	assert.Equal(t, "Fluent Bit has been running:  0 day, 0 hour, 0 minute and 5 seconds", uptimeHR(5*time.Second))
	assert.Equal(t, "Fluent Bit has been running:  1 day, 2 hour, 3 minute and 4 seconds",
		uptimeHR(26*time.Hour+3*time.Minute+4*time.Second))
}
