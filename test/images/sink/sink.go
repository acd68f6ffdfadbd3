package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	maxPayloads     = 20   // payloads kept per port
	maxPayloadBytes = 4096 // bytes kept per payload
)

// proxyEnv lists the environment variables reported by /received, so tests
// can check that proxy settings reach the workload.
func proxyEnv() []string { return []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} }

// ParsePorts parses a comma-separated list of ports ("5170,24224"); empty
// input yields no ports.
func ParsePorts(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	seen := map[int]bool{}
	var ports []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse port %q: %w", f, err)
		}
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %d out of range 1-65535", p)
		}
		if seen[p] {
			return nil, fmt.Errorf("port %d given twice", p)
		}
		seen[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// PortReport is what one listener has received.
type PortReport struct {
	Protocol string   `json:"protocol"`
	Port     int      `json:"port"`
	Bytes    int64    `json:"bytes"`
	Messages int64    `json:"messages"`
	Last     []string `json:"last"`
}

// Report is the body of GET /received.
type Report struct {
	Ports []PortReport      `json:"ports"`
	Env   map[string]string `json:"env"`
}

// Sink records what its listeners receive.
type Sink struct {
	mu      sync.Mutex
	ports   map[string]*PortReport // key "tcp/5170"
	order   []string               // keys of ports, in registration order
	env     map[string]string
	log     *log.Logger
	now     func() time.Time
	started time.Time
}

// New returns a sink reporting the given environment (see proxyEnv).
func New(getenv func(string) string, logger *log.Logger) *Sink {
	env := map[string]string{}
	for _, k := range proxyEnv() {
		env[k] = getenv(k)
	}
	return &Sink{ports: map[string]*PortReport{}, env: env, log: logger, now: time.Now, started: time.Now()}
}

func key(proto string, port int) string { return proto + "/" + strconv.Itoa(port) }

func (s *Sink) register(proto string, port int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ports[key(proto, port)]; !ok {
		s.order = append(s.order, key(proto, port))
	}
	s.ports[key(proto, port)] = &PortReport{Protocol: proto, Port: port, Last: []string{}}
}

func (s *Sink) record(proto string, port int, from string, data []byte) {
	s.mu.Lock()
	r := s.ports[key(proto, port)]
	r.Bytes += int64(len(data))
	r.Messages++
	kept := data
	if len(kept) > maxPayloadBytes {
		kept = kept[:maxPayloadBytes]
	}
	r.Last = append(r.Last, string(kept))
	if len(r.Last) > maxPayloads {
		r.Last = r.Last[len(r.Last)-maxPayloads:]
	}
	s.mu.Unlock()
	s.log.Printf("%s/%d from %s: %d bytes: %q", proto, port, from, len(data), kept)
}

// Snapshot returns a copy of what was received, ports sorted.
func (s *Sink) Snapshot() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := Report{Env: map[string]string{}}
	for _, p := range s.ports {
		c := *p
		c.Last = append([]string{}, p.Last...)
		rep.Ports = append(rep.Ports, c)
	}
	sort.Slice(rep.Ports, func(i, j int) bool {
		if rep.Ports[i].Port != rep.Ports[j].Port {
			return rep.Ports[i].Port < rep.Ports[j].Port
		}
		return rep.Ports[i].Protocol < rep.Ports[j].Protocol
	})
	for k, v := range s.env {
		rep.Env[k] = v
	}
	return rep
}

// ServeTCP accepts connections on l until ctx ends, recording every read.
func (s *Sink) ServeTCP(ctx context.Context, l net.Listener, port int) error {
	s.register("tcp", port)
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept on tcp/%d: %w", port, err)
		}
		go s.readConn(ctx, c, port)
	}
}

func (s *Sink) readConn(ctx context.Context, c net.Conn, port int) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	buf := make([]byte, 64*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			s.record("tcp", port, c.RemoteAddr().String(), buf[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.log.Printf("tcp/%d read from %s: %v", port, c.RemoteAddr(), err)
			}
			return
		}
	}
}

// ServeUDP reads datagrams from pc until ctx ends.
func (s *Sink) ServeUDP(ctx context.Context, pc net.PacketConn, port int) error {
	s.register("udp", port)
	go func() {
		<-ctx.Done()
		_ = pc.Close()
	}()
	buf := make([]byte, 64*1024)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read on udp/%d: %w", port, err)
		}
		s.record("udp", port, from.String(), buf[:n])
	}
}

// Handler serves GET /healthz, Fluent Bit's GET /api/v1/health (the URL
// tpctl's install summary prints for the health-check pipeline),
// /api/v1/uptime and /api/v1/metrics, and GET /received.
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	s.fluentBitRoutes(mux)
	mux.HandleFunc("GET /received", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.Snapshot()); err != nil {
			s.log.Printf("encode /received: %v", err)
		}
	})
	return mux
}

// Config is the sink's command line.
type Config struct {
	TCP, UDP []int
	HTTP     string // listen address of the HTTP endpoint
	Host     string // address the data listeners bind, "" for all
	// Metrics is the listen address of Fluent Bit's HTTP API alone (set by
	// Fluent Bit's -H/--http_server and -P/--http_port flags, which the
	// operator passes); "" for none. On HTTP's port, HTTP serves it.
	Metrics string
	// Storage is Fluent Bit's storage.path (-b/--storage_path, which the
	// operator passes to a pipeline with storage); "" for none. See
	// RecordStart.
	Storage string
}

// StartsFile is the file in Config.Storage where the sink records its starts.
const StartsFile = "sink-starts"

// RecordStart appends a line to dir/StartsFile and returns how many lines
// were there before: a buffer directory that survives a pod restart shows
// the earlier starts. The sink logs "storage DIR: start N (M before)".
func RecordStart(dir string, now time.Time) (before int, err error) {
	path := filepath.Join(dir, StartsFile)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	before = bytes.Count(data, []byte("\n"))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := fmt.Fprintf(f, "%s\n", now.UTC().Format(time.RFC3339Nano)); err != nil {
		_ = f.Close()
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return before, nil
}

// Run listens as configured until ctx ends. ready, if not nil, is called once
// every listener is bound.
func Run(ctx context.Context, cfg Config, s *Sink, ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lc net.ListenConfig
	errs := make(chan error, len(cfg.TCP)+len(cfg.UDP)+1)
	var wg sync.WaitGroup
	start := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	for _, p := range cfg.TCP {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("listen tcp/%d: %w", p, err)
		}
		start(func() error { return s.ServeTCP(ctx, l, p) })
	}
	for _, p := range cfg.UDP {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(cfg.Host, strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("listen udp/%d: %w", p, err)
		}
		start(func() error { return s.ServeUDP(ctx, pc, p) })
	}
	hl, err := lc.Listen(ctx, "tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", cfg.HTTP, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{srv}
	start(func() error {
		if err := srv.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	if cfg.Metrics != "" && !samePort(cfg.Metrics, cfg.HTTP) {
		ml, err := lc.Listen(ctx, "tcp", cfg.Metrics)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen metrics %s: %w", cfg.Metrics, err)
		}
		msrv := &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		start(func() error {
			if err := msrv.Serve(ml); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve metrics: %w", err)
			}
			return nil
		})
		servers = append(servers, msrv)
		s.log.Printf("sink Fluent Bit API on %s", ml.Addr())
	}
	s.log.Printf("sink listening: tcp %v udp %v http %s", cfg.TCP, cfg.UDP, hl.Addr())
	if ready != nil {
		ready()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx) //nolint:contextcheck // the run context is already over
	}
	wg.Wait()
	return runErr
}

// envOr returns the environment variable k or def.
func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// ParseArgs reads the command line; flags win over SINK_TCP, SINK_UDP,
// SINK_HTTP and SINK_HOST.
func ParseArgs(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := newFlagSet(stderr)
	tcp := fs.String("tcp", envOr(getenv, "SINK_TCP", ""), "comma-separated TCP ports to receive on")
	udp := fs.String("udp", envOr(getenv, "SINK_UDP", ""), "comma-separated UDP ports to receive on")
	httpAddr := fs.String("http", envOr(getenv, "SINK_HTTP", ":8080"), "listen address of /healthz and /received")
	host := fs.String("host", envOr(getenv, "SINK_HOST", ""), "address the TCP/UDP listeners bind (default all)")
	// Fluent Bit's flags for its HTTP server, as the operator passes them.
	var httpServer bool
	var httpPort int
	fs.BoolVar(&httpServer, "H", false, "serve Fluent Bit's HTTP API (as fluent-bit -H)")
	fs.BoolVar(&httpServer, "http_server", false, "same as -H")
	fs.IntVar(&httpPort, "P", DefaultMetricsPort, "port of Fluent Bit's HTTP API (as fluent-bit -P)")
	fs.IntVar(&httpPort, "http_port", DefaultMetricsPort, "same as -P")
	var storage string
	fs.StringVar(&storage, "b", "", "Fluent Bit's storage.path (as fluent-bit -b): the sink records its starts there")
	fs.StringVar(&storage, "storage_path", "", "same as -b")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("parse arguments: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := Config{HTTP: *httpAddr, Host: *host, Storage: storage}
	if httpServer {
		if httpPort < 1 || httpPort > 65535 {
			return Config{}, fmt.Errorf("-P: port %d out of range 1-65535", httpPort)
		}
		cfg.Metrics = ":" + strconv.Itoa(httpPort)
	}
	var err error
	if cfg.TCP, err = ParsePorts(*tcp); err != nil {
		return Config{}, fmt.Errorf("--tcp: %w", err)
	}
	if cfg.UDP, err = ParsePorts(*udp); err != nil {
		return Config{}, fmt.Errorf("--udp: %w", err)
	}
	return cfg, nil
}

func logger() *log.Logger { return log.New(os.Stdout, "sink: ", log.LstdFlags|log.Lmicroseconds) }
