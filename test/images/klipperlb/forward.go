package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is what the svclb pod's environment says.
type Config struct {
	Proto     string // TCP or UDP
	SrcPort   int
	SrcRanges []netip.Prefix
	DestPort  int
	DestIPs   []netip.Addr
	// Logf, when set, reports what is dropped (a refused client, a flow
	// no destination took): the svclb pod's log is where a lost byte is
	// looked for.
	Logf func(format string, args ...any)
}

func (c Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// FromEnv reads SRC_PORT, SRC_RANGES, DEST_PROTO, DEST_PORT and DEST_IPS,
// the variables K3s's servicelb gives each container.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	port := func(name string) int {
		p, err := strconv.Atoi(getenv(name))
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q is not a port", name, getenv(name)))
		}
		return p
	}
	c.SrcPort = port("SRC_PORT")
	c.DestPort = port("DEST_PORT")
	switch c.Proto = strings.ToUpper(getenv("DEST_PROTO")); c.Proto {
	case "TCP", "UDP":
	default:
		errs = append(errs, fmt.Errorf("DEST_PROTO=%q is not TCP or UDP", getenv("DEST_PROTO")))
	}
	ranges := getenv("SRC_RANGES")
	if ranges == "" {
		ranges = "0.0.0.0/0"
	}
	for _, r := range strings.Split(ranges, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err != nil {
			errs = append(errs, fmt.Errorf("SRC_RANGES: %q is not a network", r))
			continue
		}
		c.SrcRanges = append(c.SrcRanges, p.Masked())
	}
	// status.hostIPs reaches the environment as a space- or
	// comma-separated list.
	for _, f := range strings.FieldsFunc(getenv("DEST_IPS"), func(r rune) bool { return r == ',' || r == ' ' }) {
		a, err := netip.ParseAddr(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("DEST_IPS: %q is not an address", f))
			continue
		}
		c.DestIPs = append(c.DestIPs, a)
	}
	if len(c.DestIPs) == 0 {
		errs = append(errs, errors.New("DEST_IPS is empty"))
	}
	return c, errors.Join(errs...)
}

// Allowed reports whether a client address is within SRC_RANGES.
func (c Config) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.SrcRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c Config) dests() []string {
	out := make([]string, 0, len(c.DestIPs))
	for _, a := range c.DestIPs {
		out = append(out, net.JoinHostPort(a.String(), strconv.Itoa(c.DestPort)))
	}
	return out
}

// udpDest is where a UDP flow goes: no connection tells a dead address
// from a live one, so the first destination of the client's family (the
// Service's cluster IP of that family), else the first.
func (c Config) udpDest(client netip.Addr) string {
	for i, a := range c.DestIPs {
		if a.Is4() == client.Unmap().Is4() {
			return c.dests()[i]
		}
	}
	return c.dests()[0]
}

// Run forwards until ctx ends. host is the listen host ("" or ":" for all).
func Run(ctx context.Context, c Config, host string) error {
	addr := net.JoinHostPort(strings.TrimSuffix(host, ":"), strconv.Itoa(c.SrcPort))
	if c.Proto == "UDP" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", addr, err)
		}
		return serveUDP(ctx, c, pc)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	return serveTCP(ctx, c, l)
}

func serveTCP(ctx context.Context, c Config, l net.Listener) error {
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			forwardTCP(ctx, c, conn)
		}()
	}
}

func forwardTCP(ctx context.Context, c Config, in net.Conn) {
	defer in.Close()
	if ap, err := netip.ParseAddrPort(in.RemoteAddr().String()); err != nil || !c.Allowed(ap.Addr()) {
		c.logf("tcp from %s: refused (outside SRC_RANGES)", in.RemoteAddr())
		return
	}
	var out net.Conn
	var errs []error
	d := net.Dialer{Timeout: 5 * time.Second}
	for _, dst := range c.dests() {
		var err error
		if out, err = d.DialContext(ctx, "tcp", dst); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if out == nil {
		c.logf("tcp from %s: dropped, no destination reachable: %v", in.RemoteAddr(), errors.Join(errs...))
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// udpIdle is how long a UDP flow lives without traffic.
const udpIdle = 60 * time.Second

func serveUDP(ctx context.Context, c Config, pc net.PacketConn) error {
	go func() {
		<-ctx.Done()
		_ = pc.Close()
	}()
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	buf := make([]byte, 64*1024)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read udp: %w", err)
		}
		ap, err := netip.ParseAddrPort(from.String())
		if err != nil || !c.Allowed(ap.Addr()) {
			continue
		}
		mu.Lock()
		out, ok := flows[from.String()]
		if !ok {
			out, err = net.Dial("udp", c.udpDest(ap.Addr()))
			if err != nil {
				mu.Unlock()
				c.logf("udp from %s: dropped: %v", from, err)
				continue
			}
			flows[from.String()] = out
			go func(key string, from net.Addr, out net.Conn) {
				defer func() {
					mu.Lock()
					delete(flows, key)
					mu.Unlock()
					_ = out.Close()
				}()
				rb := make([]byte, 64*1024)
				for {
					_ = out.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := out.Read(rb)
					if err != nil {
						return
					}
					if _, err := pc.WriteTo(rb[:n], from); err != nil {
						return
					}
				}
			}(from.String(), from, out)
		}
		mu.Unlock()
		_, _ = out.Write(buf[:n])
	}
}
