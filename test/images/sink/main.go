// Command sink is the stand-in data plane of the end-to-end tests: it listens
// on the TCP and UDP ports it is given, logs and keeps what it receives, and
// reports it over HTTP.
//
//	sink --tcp 5170,24224 --udp 5140 --http :8080
//
// GET /healthz and GET /api/v1/health (Fluent Bit's) answer "ok"; GET /received returns JSON with the bytes,
// message count and last payloads per port, plus the HTTP_PROXY, HTTPS_PROXY
// and NO_PROXY the process was started with. SINK_TCP, SINK_UDP, SINK_HTTP and
// SINK_HOST set the same as the flags. Fluent Bit's own -H -P PORT (or
// --http_server --http_port=PORT), which the operator passes to every pipeline,
// serve Fluent Bit's /api/v1/health, /api/v1/uptime and /api/v1/metrics on
// PORT in Fluent Bit's shapes, the listeners counting as inputs "tcp.0",
// "udp.1"… and one output "null.N" taking every message; the --http endpoint
// answers them too. Fluent Bit's -b DIR (storage.path, passed for a pipeline
// with storage) makes the sink record its start in DIR/sink-starts and log
// "storage DIR: start N (M before)", so a kept buffer directory shows.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func newFlagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func main() {
	cfg, err := ParseArgs(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(2)
	}
	if cfg.Storage != "" {
		before, err := RecordStart(cfg.Storage, time.Now())
		if err != nil {
			fmt.Fprintln(os.Stderr, "sink: storage:", err)
			os.Exit(1)
		}
		logger().Printf("storage %s: start %d (%d before)", cfg.Storage, before+1, before)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, cfg, New(os.Getenv, logger()), nil); err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
}
