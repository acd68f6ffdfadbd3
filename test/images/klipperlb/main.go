// Command klipperlb is the stand-in for K3s's klipper-lb image, the
// container of every svclb pod: it listens on SRC_PORT (the pod's port,
// which the pod also holds as hostPort) and forwards each TCP connection or
// UDP flow to DEST_PORT on the first reachable address of DEST_IPS (the
// Service's cluster IPs, or the host's addresses for externalTrafficPolicy
// Local). Clients outside SRC_RANGES are refused. K3s's image programs
// iptables DNAT instead; what reaches the node's port is the same.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "klipperlb:", err)
		os.Exit(2)
	}
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "klipperlb: "+format+"\n", args...) }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintf(os.Stderr, "klipperlb: %s %d -> %v port %d (sources %v)\n", cfg.Proto, cfg.SrcPort, cfg.DestIPs, cfg.DestPort, cfg.SrcRanges)
	if err := Run(ctx, cfg, ":"); err != nil {
		fmt.Fprintln(os.Stderr, "klipperlb:", err)
		os.Exit(1)
	}
}
