// Command tcpprobe checks TCP reachability between test hosts: `listen
// ADDR` accepts connections and writes its host name and the peer's
// address to each; `dial ADDR [TIMEOUT]` connects and prints what it
// received (exit status 1 when it could not connect).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tcpprobe:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: tcpprobe listen ADDR | dial ADDR [TIMEOUT]")
	}
	switch args[0] {
	case "listen":
		l, err := net.Listen("tcp", args[1])
		if err != nil {
			return err
		}
		host, _ := os.Hostname()
		fmt.Println("listening on", l.Addr())
		for {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(c, "%s %s\n", host, c.RemoteAddr())
			_ = c.Close()
		}
	case "dial":
		timeout := 3 * time.Second
		if len(args) > 2 {
			d, err := time.ParseDuration(args[2])
			if err != nil {
				return err
			}
			timeout = d
		}
		c, err := net.DialTimeout("tcp", args[1], timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		data, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(data)
		return err
	}
	return fmt.Errorf("unknown mode %q", args[0])
}
