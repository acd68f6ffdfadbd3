package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePorts(t *testing.T) {
	cases := []struct {
		in      string
		want    []int
		wantErr string
	}{
		{"", nil, ""},
		{"  ", nil, ""},
		{"5170", []int{5170}, ""},
		{"5170, 24224", []int{5170, 24224}, ""},
		{"1,65535", []int{1, 65535}, ""},
		{"0", nil, "out of range"},
		{"65536", nil, "out of range"},
		{"5170,5170", nil, "twice"},
		{"a", nil, "parse port"},
		{"5170,", nil, "parse port"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParsePorts(c.in)
			if c.wantErr != "" {
				assert.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"", "5170,24224", "1,65535", "0", "x,1", " 7 , 8 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParsePorts(s)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, p := range ports {
			require.True(t, p >= 1 && p <= 65535, "port %d", p)
			require.False(t, seen[p], "duplicate %d", p)
			seen[p] = true
		}
	})
}

func TestParseArgs(t *testing.T) {
	env := map[string]string{"SINK_TCP": "1000", "SINK_UDP": "2000", "SINK_HTTP": ":9000"}
	getenv := func(k string) string { return env[k] }

	cfg, err := ParseArgs(nil, getenv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, Config{TCP: []int{1000}, UDP: []int{2000}, HTTP: ":9000"}, cfg)

	cfg, err = ParseArgs([]string{"--tcp", "5170,24224", "--udp", "5140", "--http", "127.0.0.1:8081", "--host", "127.0.0.1"}, getenv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, Config{TCP: []int{5170, 24224}, UDP: []int{5140}, HTTP: "127.0.0.1:8081", Host: "127.0.0.1"}, cfg)

	cfg, err = ParseArgs(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":8080", cfg.HTTP)

	_, err = ParseArgs([]string{"--tcp", "x"}, getenv, io.Discard)
	assert.ErrorContains(t, err, "--tcp")
	_, err = ParseArgs([]string{"--udp", "70000"}, getenv, io.Discard)
	assert.ErrorContains(t, err, "--udp")
	_, err = ParseArgs([]string{"extra"}, getenv, io.Discard)
	assert.ErrorContains(t, err, "unexpected arguments")
	_, err = ParseArgs([]string{"--nope"}, getenv, io.Discard)
	assert.Error(t, err)
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSink runs the sink on loopback and returns its HTTP base URL.
func startSink(t *testing.T, cfg Config, env map[string]string) (string, *syncWriter) {
	t.Helper()
	logs := &syncWriter{}
	s := New(func(k string) string { return env[k] }, log.New(logs, "", 0))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, s, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("sink did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("sink did not stop")
		}
	})
	return "http://" + cfg.HTTP, logs
}

func getReport(t *testing.T, base string) Report {
	t.Helper()
	resp, err := http.Get(base + "/received")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var rep Report
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	return rep
}

func TestSinkReceivesTCPAndUDP(t *testing.T) {
	tcp1, tcp2, udp := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	cfg := Config{TCP: []int{tcp1, tcp2}, UDP: []int{udp}, HTTP: fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")), Host: "127.0.0.1"}
	base, logs := startSink(t, cfg, map[string]string{"HTTP_PROXY": "http://proxy.example:3128", "NO_PROXY": ".svc"})

	for _, path := range []string{"/healthz", "/api/v1/health"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, "ok\n", string(body), path)
	}

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcp1))
	require.NoError(t, err)
	_, err = c.Write([]byte("hello tcp"))
	require.NoError(t, err)
	require.NoError(t, c.Close())

	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	require.NoError(t, err)
	_, err = u.Write([]byte("one"))
	require.NoError(t, err)
	_, err = u.Write([]byte("two"))
	require.NoError(t, err)
	require.NoError(t, u.Close())

	var rep Report
	require.Eventually(t, func() bool {
		rep = getReport(t, base)
		return len(rep.Ports) == 3 && rep.Ports[0].Bytes+rep.Ports[1].Bytes+rep.Ports[2].Bytes == 15
	}, 5*time.Second, 20*time.Millisecond)

	byKey := map[string]PortReport{}
	for _, p := range rep.Ports {
		byKey[key(p.Protocol, p.Port)] = p
	}
	assert.Equal(t, PortReport{Protocol: "tcp", Port: tcp1, Bytes: 9, Messages: 1, Last: []string{"hello tcp"}}, byKey[key("tcp", tcp1)])
	assert.Equal(t, PortReport{Protocol: "tcp", Port: tcp2, Last: []string{}}, byKey[key("tcp", tcp2)])
	assert.Equal(t, PortReport{Protocol: "udp", Port: udp, Bytes: 6, Messages: 2, Last: []string{"one", "two"}}, byKey[key("udp", udp)])
	assert.Equal(t, map[string]string{"HTTP_PROXY": "http://proxy.example:3128", "HTTPS_PROXY": "", "NO_PROXY": ".svc"}, rep.Env)
	assert.Contains(t, logs.String(), `"hello tcp"`)
}

func TestSinkKeepsOnlyRecentTruncatedPayloads(t *testing.T) {
	s := New(func(string) string { return "" }, log.New(io.Discard, "", 0))
	s.register("udp", 9)
	for i := 0; i < maxPayloads+5; i++ {
		s.record("udp", 9, "test", []byte(fmt.Sprintf("m%d", i)))
	}
	big := strings.Repeat("x", maxPayloadBytes+100)
	s.record("udp", 9, "test", []byte(big))
	rep := s.Snapshot()
	require.Len(t, rep.Ports, 1)
	p := rep.Ports[0]
	assert.Equal(t, int64(maxPayloads+6), p.Messages)
	assert.Len(t, p.Last, maxPayloads)
	assert.Equal(t, "m6", p.Last[0])
	assert.Len(t, p.Last[maxPayloads-1], maxPayloadBytes)
	assert.Equal(t, int64(len(big)), p.Bytes-int64(len("m0"))*10-int64(len("m10"))*15)
}

func TestRunFailsOnBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	s := New(func(string) string { return "" }, log.New(io.Discard, "", 0))
	err = Run(context.Background(), Config{TCP: []int{busy}, Host: "127.0.0.1", HTTP: "127.0.0.1:0"}, s, nil)
	assert.ErrorContains(t, err, fmt.Sprintf("listen tcp/%d", busy))
}

// syncWriter serialises writes from the sink's goroutines for the test's buffer.
type syncWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func TestStoragePathRecordsStarts(t *testing.T) {
	cfg, err := ParseArgs([]string{"--tcp=5170", "-H", "-P", "2020", "-b", "/fluent-bit/storage"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "/fluent-bit/storage", cfg.Storage)

	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	for want := 0; want < 3; want++ {
		before, err := RecordStart(dir, now)
		require.NoError(t, err)
		assert.Equal(t, want, before, "a kept directory counts the earlier starts")
	}
	_, err = RecordStart(filepath.Join(dir, "missing"), now)
	assert.Error(t, err)
}
