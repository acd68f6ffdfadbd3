package systemd

import (
	"context"
	"fmt"

	"github.com/coreos/go-systemd/v22/dbus"
)

// DBus is the Manager over systemd's D-Bus API.
type DBus struct {
	conn *dbus.Conn
}

// Connect opens a connection to the system bus (or, as root without a bus,
// to systemd's private socket).
func Connect(ctx context.Context) (*DBus, error) {
	conn, err := dbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &DBus{conn: conn}, nil
}

// Close closes the connection.
func (d *DBus) Close() { d.conn.Close() }

// Reload is `systemctl daemon-reload`.
func (d *DBus) Reload(ctx context.Context) error {
	if err := d.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return nil
}

// EnableAndStart enables the unit (links it into its WantedBy targets) and
// starts it, waiting for the start job: for Type=notify until the service
// reports READY=1, bounded by ctx.
func (d *DBus) EnableAndStart(ctx context.Context, unit string) error {
	if _, _, err := d.conn.EnableUnitFilesContext(ctx, []string{unit}, false, true); err != nil {
		return fmt.Errorf("enable %s: %w", unit, err)
	}
	ch := make(chan string, 1)
	if _, err := d.conn.StartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("start %s: %w", unit, err)
	}
	return waitJob(ctx, "start", unit, ch)
}

// Restart restarts the unit and waits for the job.
func (d *DBus) Restart(ctx context.Context, unit string) error {
	ch := make(chan string, 1)
	if _, err := d.conn.RestartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("restart %s: %w", unit, err)
	}
	return waitJob(ctx, "restart", unit, ch)
}

// ResetFailed clears the unit's failed state, so that systemd forgets a
// unit whose file is gone.
func (d *DBus) ResetFailed(ctx context.Context, unit string) error {
	st, err := d.State(ctx, unit)
	if err != nil {
		return err
	}
	if st.LoadState == "not-found" && st.ActiveState != "failed" {
		return nil
	}
	if err := d.conn.ResetFailedUnitContext(ctx, unit); err != nil {
		return fmt.Errorf("reset-failed %s: %w", unit, err)
	}
	return nil
}

// StopAndDisable stops the unit, waits for the stop job, and disables it. A
// unit systemd does not know is already stopped and disabled.
func (d *DBus) StopAndDisable(ctx context.Context, unit string) error {
	st, err := d.State(ctx, unit)
	if err != nil {
		return err
	}
	if st.LoadState == "not-found" {
		return nil
	}
	ch := make(chan string, 1)
	if _, err := d.conn.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("stop %s: %w", unit, err)
	}
	if err := waitJob(ctx, "stop", unit, ch); err != nil {
		return err
	}
	if _, err := d.conn.DisableUnitFilesContext(ctx, []string{unit}, false); err != nil {
		return fmt.Errorf("disable %s: %w", unit, err)
	}
	return nil
}

// State reads the unit's load, active and file states and its restart count.
func (d *DBus) State(ctx context.Context, unit string) (UnitState, error) {
	props, err := d.conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, fmt.Errorf("read state of %s: %w", unit, err)
	}
	svc, err := d.conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		// A unit that is not loaded has no service properties.
		svc = map[string]any{}
	}
	return stateFromProperties(unit, props, svc), nil
}

var _ Manager = (*DBus)(nil)
