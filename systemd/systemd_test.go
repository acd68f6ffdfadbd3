package systemd

import (
	"context"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenderAddsMarkerInsideUnitSection(t *testing.T) {
	out, err := Render([]*unit.UnitOption{
		Opt("Unit", "Description", "demo"),
		Opt("Unit", "After", "network-online.target"),
		Opt("Service", "ExecStart", "/bin/true"),
		Opt("Install", "WantedBy", "multi-user.target"),
	})
	require.NoError(t, err)
	assert.Equal(t, header+`[Unit]
Description=demo
X-Tpctl-Managed=true
After=network-online.target

[Service]
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
`, string(out))
	assert.True(t, IsManaged(out))
	opts, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/true"}, Values(opts, "Service", "ExecStart"))
}

func TestRenderWithoutUnitSectionStillMarks(t *testing.T) {
	out, err := Render([]*unit.UnitOption{Opt("Service", "ExecStart", "/bin/true")})
	require.NoError(t, err)
	assert.True(t, IsManaged(out))
	assert.Contains(t, string(out), "[Unit]\nX-Tpctl-Managed=true\n\n[Service]")
}

func TestRenderRejectsLineBreaksAndEmptyNames(t *testing.T) {
	_, err := Render([]*unit.UnitOption{Opt("Service", "ExecStart", "/bin/true\nExecStartPost=/bin/evil")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Service.ExecStart holds a line break")
	_, err = Render([]*unit.UnitOption{Opt("", "X", "y")})
	require.Error(t, err)
}

func TestIsManaged(t *testing.T) {
	assert.False(t, IsManaged([]byte("[Unit]\nDescription=someone else's k3s\n[Service]\nExecStart=/usr/local/bin/k3s server\n")))
	assert.False(t, IsManaged([]byte("[Unit]\nX-Tpctl-Managed=false\n")))
	assert.False(t, IsManaged([]byte("[Service]\nX-Tpctl-Managed=true\n")), "the marker counts only in [Unit]")
	assert.False(t, IsManaged([]byte("[Unit\nbroken")))
	assert.True(t, IsManaged([]byte("# comment\n[Unit]\nX-Tpctl-Managed=true\n")))
}

func TestJobResult(t *testing.T) {
	require.NoError(t, jobResult("start", "k3s.service", "done"))
	err := jobResult("start", "k3s.service", "failed")
	var je *JobError
	require.ErrorAs(t, err, &je)
	assert.Equal(t, "start k3s.service: the unit failed (see `journalctl -u k3s.service`)", err.Error())
	assert.Contains(t, jobResult("stop", "k3s.service", "weird").Error(), "result weird")
}

func TestWaitJobIsBoundedByContext(t *testing.T) {
	ch := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := waitJob(ctx, "start", "k3s.service", ch)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "start k3s.service")
	// The buffered channel still takes the late result without blocking.
	select {
	case ch <- "done":
	default:
		t.Fatal("job channel would block systemd's signal")
	}
	ch2 := make(chan string, 1)
	ch2 <- "timeout"
	assert.ErrorContains(t, waitJob(context.Background(), "start", "k3s.service", ch2), "timed out")
}

func TestStateFromProperties(t *testing.T) {
	st := stateFromProperties("k3s.service", map[string]any{
		"LoadState": "loaded", "ActiveState": "active", "SubState": "running",
		"UnitFileState": "enabled", "FragmentPath": "/etc/systemd/system/k3s.service",
	}, map[string]any{"MainPID": uint32(42), "NRestarts": uint32(3), "Result": "success"})
	assert.Equal(t, UnitState{Name: "k3s.service", LoadState: "loaded", ActiveState: "active", SubState: "running",
		UnitFileState: "enabled", FragmentPath: "/etc/systemd/system/k3s.service", MainPID: 42, NRestarts: 3, Result: "success"}, st)
	assert.True(t, st.Installed())
	assert.True(t, st.Active())
	assert.True(t, st.Enabled())
	assert.Equal(t, "k3s.service: active/running (loaded), enabled", st.String())

	gone := stateFromProperties("k3s.service", map[string]any{"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}, map[string]any{})
	assert.False(t, gone.Installed())
	assert.False(t, gone.Active())
	assert.False(t, gone.Enabled())
}
