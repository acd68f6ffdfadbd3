package hosttest

import (
	"context"
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// Systemd connects to the container's systemd over its system bus (the
// socket below the container's /run, reached from the host), for asserting
// unit state through systemd itself. The caller closes the connection.
func (h *Host) Systemd(ctx context.Context) (*sddbus.Conn, error) {
	addr := "unix:path=" + h.Path("/run/dbus/system_bus_socket")
	conn, err := sddbus.NewConnection(func() (*godbus.Conn, error) {
		c, err := godbus.Dial(addr, godbus.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if err := c.Auth(nil); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("authenticate on %s: %w", addr, err)
		}
		if err := c.Hello(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("hello on %s: %w", addr, err)
		}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the systemd of %s: %w", h.opts.Name, err)
	}
	return conn, nil
}
