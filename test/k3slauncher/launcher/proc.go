package launcher

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one component process. It runs in its own process group and is
// killed by the kernel when the launcher dies (so a `kill -9` of the
// launcher leaves no component behind; containerd's shims, which detach
// themselves, keep the pods running).
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// ChildEnv is the launcher's environment for its children, without
// NOTIFY_SOCKET: only the launcher tells systemd that the node is ready
// (containerd would send its own READY=1).
func ChildEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// lineWriter prefixes every line of a child's output with its name.
type lineWriter struct {
	mu  *sync.Mutex
	out io.Writer
}

func (w lineWriter) pipe(name string) (io.WriteCloser, <-chan struct{}) {
	r, wr := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			w.mu.Lock()
			fmt.Fprintf(w.out, "[%s] %s\n", name, sc.Text())
			w.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return wr, done
}

func startChild(lw lineWriter, name, bin string, args []string, dir string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = ChildEnv(os.Environ())
	cmd.Dir = dir
	out, copied := lw.pipe(name)
	cmd.Stdout, cmd.Stderr = out, out
	// Output may be held open by grandchildren (containerd's shims): do
	// not wait for it past the child's own exit.
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		_ = out.Close()
		<-copied
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL to the child's process group after grace.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// children are the running components, stopped in stages.
type children struct {
	mu   sync.Mutex
	list []*child
	exit chan *child // receives each child that exits
}

func newChildren() *children { return &children{exit: make(chan *child, 32)} }

func (cs *children) add(c *child) {
	cs.mu.Lock()
	cs.list = append(cs.list, c)
	cs.mu.Unlock()
	go func() {
		<-c.done
		cs.exit <- c
	}()
}

// stop stops the named children in parallel.
func (cs *children) stop(grace time.Duration, names ...string) {
	cs.mu.Lock()
	list := append([]*child(nil), cs.list...)
	cs.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range list {
		match := len(names) == 0
		for _, n := range names {
			match = match || n == c.name
		}
		if !match {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(grace)
		}()
	}
	wg.Wait()
}

// StopOrder is the order components stop in: node agents, then the
// control plane (and the container runtime, whose shims and pods stay), then
// the datastore.
func StopOrder() [][]string {
	return [][]string{
		{"kubelet", "kube-proxy"},
		{"kube-controller-manager", "kube-scheduler", "containerd"},
		{"kube-apiserver"},
		{"kine", "etcd"},
	}
}

// stopAll stops every child in StopOrder, then anything left.
func (cs *children) stopAll() {
	for _, stage := range StopOrder() {
		cs.stop(10*time.Second, stage...)
	}
	cs.stop(5 * time.Second)
}
