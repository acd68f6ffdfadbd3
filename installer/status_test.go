package installer

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/systemd"
)

func TestStatusAfterInstall(t *testing.T) {
	ti := newTestInstall(t, Config{})
	_, err := ti.run(t)
	require.NoError(t, err)
	rep := Status(context.Background(), ti.opts)
	assert.True(t, rep.Installed)
	assert.True(t, rep.Completed)
	require.NotNil(t, rep.Unit)
	assert.True(t, rep.Unit.Active())
	require.NotNil(t, rep.Node)
	assert.Equal(t, NodeStatus{Name: "node-1", Ready: true, Reason: "Ready"}, *rep.Node)
	assert.Equal(t, "v1.36.3+k3s1", rep.K3s.Version)
	assert.Contains(t, rep.Unavailable, "operator")
	var b bytes.Buffer
	require.NoError(t, WriteStatus(&b, rep))
	golden(t, "status.txt", b.Bytes())
}

func TestStatusNothingInstalled(t *testing.T) {
	ti := newTestInstall(t, Config{})
	ti.opts.Systemd = func(context.Context) (systemd.Manager, error) { return nil, errors.New("no D-Bus here") }
	rep := Status(context.Background(), ti.opts)
	assert.False(t, rep.Installed)
	assert.Nil(t, rep.Unit)
	assert.Equal(t, "no D-Bus here", rep.UnitError)
	assert.Equal(t, "not installed", rep.NodeError)
	var b bytes.Buffer
	require.NoError(t, WriteStatus(&b, rep))
	assert.Contains(t, b.String(), "installed:  no")
	assert.Contains(t, b.String(), "unit:       unknown (no D-Bus here)")
}
