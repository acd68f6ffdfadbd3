package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// LoadBalancer is K3s's agent load balancer
// (pkg/agent/loadbalancer/loadbalancer.go, servers.go, config.go): a TCP
// proxy on 127.0.0.1:6444 (lb-server-port) to the servers, the one of
// --server first, then the addresses /v1-k3s/apiservers reports. The
// agent's supervisor requests, kubelet and kube-proxy all go through it.
// Its state is kept in agent/etc/k3s-agent-load-balancer.json (ServerURL,
// ServerAddresses), reused when ServerURL is unchanged.
type LoadBalancer struct {
	ServerURL       string
	ServerAddresses []string

	configFile string
	ln         net.Listener
	mu         sync.Mutex
	current    string
	wg         sync.WaitGroup
	logf       func(string, ...any)
}

// DefaultLBPort is K3s's lb-server-port default.
const DefaultLBPort = 6444

// NewLoadBalancer listens on addr and forwards to serverAddr (host:port)
// and the servers of an earlier run's state file.
func NewLoadBalancer(addr, serverURL, serverAddr, configFile string, logf func(string, ...any)) (*LoadBalancer, error) {
	lb := &LoadBalancer{ServerURL: serverURL, ServerAddresses: []string{serverAddr}, configFile: configFile, current: serverAddr, logf: logf}
	if b, err := os.ReadFile(configFile); err == nil {
		var old LoadBalancer
		if json.Unmarshal(b, &old) == nil && old.ServerURL == serverURL {
			lb.addServers(old.ServerAddresses)
		}
	}
	if err := lb.writeConfig(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("load balancer: listen on %s: %w", addr, err)
	}
	lb.ln = ln
	lb.wg.Add(1)
	go lb.serve()
	return lb, nil
}

// Addr is the listening address.
func (lb *LoadBalancer) Addr() string { return lb.ln.Addr().String() }

func (lb *LoadBalancer) writeConfig() error {
	lb.mu.Lock()
	b, err := json.MarshalIndent(struct {
		ServerURL       string
		ServerAddresses []string
	}{lb.ServerURL, lb.ServerAddresses}, "", "  ")
	lb.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode load balancer state: %w", err)
	}
	return writeFileAtomic(lb.configFile, b, 0o600)
}

func (lb *LoadBalancer) addServers(addrs []string) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	changed := false
	for _, a := range addrs {
		if a != "" && !slices.Contains(lb.ServerAddresses, a) {
			lb.ServerAddresses = append(lb.ServerAddresses, a)
			changed = true
		}
	}
	return changed
}

// Update adds the servers /v1-k3s/apiservers reported (the --server
// address stays first, as K3s keeps its default server).
func (lb *LoadBalancer) Update(addrs []string) error {
	if lb.addServers(addrs) {
		lb.logf("load balancer servers: %v", lb.servers())
		return lb.writeConfig()
	}
	return nil
}

func (lb *LoadBalancer) servers() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := []string{lb.current}
	for _, a := range lb.ServerAddresses {
		if a != lb.current {
			out = append(out, a)
		}
	}
	return out
}

func (lb *LoadBalancer) serve() {
	defer lb.wg.Done()
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		lb.wg.Add(1)
		go func() {
			defer lb.wg.Done()
			lb.forward(c)
		}()
	}
}

// forward dials the current server, else the next that answers (K3s
// fails over the same way), and copies both ways.
func (lb *LoadBalancer) forward(c net.Conn) {
	defer c.Close()
	var up net.Conn
	var errs []error
	for _, s := range lb.servers() {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(context.Background(), "tcp", s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lb.mu.Lock()
		lb.current = s
		lb.mu.Unlock()
		up = conn
		break
	}
	if up == nil {
		lb.logf("load balancer: no server answers: %s", errors.Join(errs...))
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}

// Close stops listening and waits for the connections to end.
func (lb *LoadBalancer) Close() {
	_ = lb.ln.Close()
}
