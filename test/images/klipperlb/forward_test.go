package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"SRC_PORT": "80", "SRC_RANGES": "10.0.0.0/8,192.0.2.1/32", "DEST_PROTO": "TCP",
		"DEST_PORT": "8080", "DEST_IPS": "10.43.0.7"}))
	require.NoError(t, err)
	assert.Equal(t, 80, c.SrcPort)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.43.0.7")}, c.DestIPs)
	assert.True(t, c.Allowed(netip.MustParseAddr("10.1.2.3")))
	assert.True(t, c.Allowed(netip.MustParseAddr("::ffff:192.0.2.1")))
	assert.False(t, c.Allowed(netip.MustParseAddr("192.0.2.2")))

	// status.hostIPs, space separated; SRC_RANGES empty means everyone.
	c, err = FromEnv(env(map[string]string{"SRC_PORT": "53", "DEST_PROTO": "UDP", "DEST_PORT": "31000", "DEST_IPS": "10.99.0.1 fd00::1"}))
	require.NoError(t, err)
	assert.Len(t, c.DestIPs, 2)
	assert.True(t, c.Allowed(netip.MustParseAddr("203.0.113.9")))

	for name, m := range map[string]map[string]string{
		"no port":  {"DEST_PROTO": "TCP", "DEST_PORT": "1", "DEST_IPS": "10.0.0.1"},
		"bad prot": {"SRC_PORT": "1", "DEST_PROTO": "SCTP", "DEST_PORT": "1", "DEST_IPS": "10.0.0.1"},
		"no dest":  {"SRC_PORT": "1", "DEST_PROTO": "TCP", "DEST_PORT": "1"},
		"bad rng":  {"SRC_PORT": "1", "DEST_PROTO": "TCP", "DEST_PORT": "1", "DEST_IPS": "10.0.0.1", "SRC_RANGES": "x"},
	} {
		_, err := FromEnv(env(m))
		assert.Error(t, err, name)
	}
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

// Bytes sent to the source port reach the destination and the reply comes
// back, for TCP and UDP; a client outside SRC_RANGES gets nothing through.
func TestForwards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	uecho, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer uecho.Close()
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := uecho.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = uecho.WriteTo(b[:n], from)
		}
	}()

	start := func(proto string, dest int, ranges string) int {
		ips := "127.0.0.2,127.0.0.1" // TCP tries each in turn
		if proto == "UDP" {
			ips = "::1,127.0.0.1" // UDP takes the client's family
		}
		src := freePort(t, map[string]string{"TCP": "tcp", "UDP": "udp"}[proto])
		c, err := FromEnv(env(map[string]string{"SRC_PORT": strconv.Itoa(src), "DEST_PROTO": proto, "DEST_PORT": strconv.Itoa(dest),
			"DEST_IPS": ips, "SRC_RANGES": ranges}))
		require.NoError(t, err)
		go func() { _ = Run(ctx, c, "127.0.0.1") }()
		return src
	}
	tcpSrc := start("TCP", echo.Addr().(*net.TCPAddr).Port, "127.0.0.0/8")
	udpSrc := start("UDP", uecho.LocalAddr().(*net.UDPAddr).Port, "")
	denied := start("TCP", echo.Addr().(*net.TCPAddr).Port, "192.0.2.0/24")

	var conn net.Conn
	require.Eventually(t, func() bool {
		conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(tcpSrc))
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	_, err = conn.Write([]byte("hello"))
	require.NoError(t, err)
	buf := make([]byte, 5)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(conn, buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf))
	conn.Close()

	uc, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(udpSrc))
	require.NoError(t, err)
	defer uc.Close()
	require.Eventually(t, func() bool {
		_, _ = uc.Write([]byte("ping"))
		_ = uc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := uc.Read(buf)
		return err == nil && string(buf[:n]) == "ping"
	}, 5*time.Second, 50*time.Millisecond)

	var dc net.Conn
	require.Eventually(t, func() bool {
		dc, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(denied))
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	defer dc.Close()
	_, _ = dc.Write([]byte("x"))
	require.NoError(t, dc.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, err := dc.Read(buf)
	assert.Equal(t, 0, n)
	assert.Error(t, err, "a client outside SRC_RANGES is disconnected (EOF or reset), never forwarded")
}

// What the forwarder drops it says, so a svclb pod's log tells a lost
// byte's fate: a client outside SRC_RANGES, a Service nothing answers on.
func TestLogsWhatItDrops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logs := make(chan string, 16)
	start := func(ranges string) int {
		src := freePort(t, "tcp")
		c, err := FromEnv(env(map[string]string{"SRC_PORT": strconv.Itoa(src), "DEST_PROTO": "TCP",
			"DEST_PORT": strconv.Itoa(freePort(t, "tcp")), "DEST_IPS": "127.0.0.1", "SRC_RANGES": ranges}))
		require.NoError(t, err)
		c.Logf = func(format string, args ...any) { logs <- fmt.Sprintf(format, args...) }
		go func() { _ = Run(ctx, c, "127.0.0.1") }()
		return src
	}
	for _, c := range []struct{ ranges, want string }{
		{"127.0.0.0/8", "dropped, no destination reachable"},
		{"192.0.2.0/24", "refused (outside SRC_RANGES)"},
	} {
		src := start(c.ranges)
		var conn net.Conn
		var err error
		require.Eventually(t, func() bool {
			conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(src))
			return err == nil
		}, 5*time.Second, 50*time.Millisecond)
		_, _ = conn.Write([]byte("lost"))
		select {
		case l := <-logs:
			assert.Contains(t, l, c.want)
		case <-ctx.Done():
			t.Fatalf("nothing logged for SRC_RANGES %s", c.ranges)
		}
		conn.Close()
	}
}
