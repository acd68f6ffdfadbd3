package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one component the harness started; it is stopped by its PID.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// startProcess runs bin with args, output appended to logDir/<name>.log. The
// child gets its own process group and SIGKILL when the test process dies.
func startProcess(name, logDir, bin string, args, env []string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(cleanEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// cleanEnv is the test process's environment without variables that would
// change the components' behaviour (proxies, systemd notification).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "NOTIFY_SOCKET", "KUBECONFIG":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, with its wait error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM, then SIGKILL to the process group after grace.
func (p *process) stop(grace time.Duration) {
	if done, _ := p.exited(); done {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.logPath, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// group is the set of processes of one harness.
type group struct {
	mu    sync.Mutex
	procs []*process
}

func (g *group) add(p *process) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.procs = append(g.procs, p)
}

// remove forgets the processes of that name (after they were stopped).
func (g *group) remove(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	kept := g.procs[:0]
	for _, p := range g.procs {
		if p.name != name {
			kept = append(kept, p)
		}
	}
	g.procs = kept
}

func (g *group) list() []*process {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*process(nil), g.procs...)
}

// check returns an error naming the first process that has exited.
func (g *group) check() error {
	for _, p := range g.list() {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited (%v); last log lines:\n%s", p.name, err, p.tail(30)) //nolint:errorlint // exit status only described
		}
	}
	return nil
}

// dumpLogs writes the last lines of every component's log to w.
func (g *group) dumpLogs(w io.Writer, lines int) {
	for _, p := range g.list() {
		state := "running"
		if done, err := p.exited(); done {
			state = fmt.Sprintf("exited: %v", err)
		}
		fmt.Fprintf(w, "===== %s (pid %d, %s) %s =====\n%s\n", p.name, p.pid(), state, p.logPath, p.tail(lines))
	}
}

// stop stops the named processes in parallel (all when names is empty).
func (g *group) stop(grace time.Duration, names ...string) {
	var wg sync.WaitGroup
	for _, p := range g.list() {
		if len(names) > 0 && !contains(names, p.name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(grace)
		}()
	}
	wg.Wait()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitUntil polls cond every interval until it returns nil, ctx ends, or a
// process of g exits.
func waitUntil(ctx context.Context, g *group, what string, cond func(context.Context) error) error {
	var last error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if last = cond(ctx); last == nil {
			return nil
		}
		if g != nil {
			if err := g.check(); err != nil {
				return fmt.Errorf("wait for %s: %w", what, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %w)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Harness components get ports from [portFloor, min(portCeiling, the
// kernel's ephemeral floor)). A port is only checked free when it is picked
// and bound seconds later by the component; a port from the ephemeral range
// (what listening on port 0 returns) can meanwhile be taken as the source port
// of any outgoing connection on the machine — the kubelet's and the API
// server's own, which is how a controller manager once failed with "bind:
// address already in use". Below the ephemeral range only another listener
// can take it. The ceiling keeps clear of the NodePort range (30000-32767).
const (
	portFloor   = 20000
	portCeiling = 30000
)

// ephemeralFloor is the first port the kernel hands out to outgoing
// connections (net.ipv4.ip_local_port_range; 32768 when unreadable).
func ephemeralFloor() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// freePorts returns n distinct ports on host that were free when checked,
// picked at random below the ephemeral range (see portFloor).
func freePorts(host string, n int) ([]int, error) {
	hi := min(portCeiling, ephemeralFloor())
	if hi-portFloor < n {
		return nil, fmt.Errorf("find %d free ports on %s: the ephemeral range starts at %d, leaving too few below it", n, host, hi)
	}
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("find a free port on %s: none of 1000 random ports in [%d,%d) was free", host, portFloor, hi)
		}
		port := portFloor + rand.IntN(hi-portFloor)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	return ports, nil
}

// tcpReady succeeds once addr accepts connections.
func tcpReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		return c.Close()
	}
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
