package tui

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage/managetest"
)

func TestDeleteAsksFirst(t *testing.T) {
	api := sampleCluster(t)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("down"), keyMsg("d"))
	require.Equal(t, "b", m.confirming())
	requireScreen(t, m.View().Content)

	m = feed(t, m, keyMsg("n"))
	assert.Empty(t, m.confirming())
	assert.Contains(t, m.View().Content, "delete cancelled")
	assert.NotNil(t, api.Pipeline("b"))

	m = feed(t, m, keyMsg("d"))
	next, cmd := m.Update(keyMsg("y"))
	m = next.(Model)
	require.NotNil(t, cmd)
	m = feed(t, m, cmd())
	assert.Nil(t, api.Pipeline("b"), "deleted after y")
	assert.Contains(t, m.View().Content, "pipeline b deleted")
}

func TestDeleteFromDetailAndFailure(t *testing.T) {
	api := sampleCluster(t)
	api.Fail(managetest.OpDelete, errors.New(`pipelines.telemetry.tpctl.dev "a" is forbidden`))
	m := loaded(t, api)
	m = feed(t, m, keyMsg("enter"), keyMsg("d"))
	require.Equal(t, "a", m.confirming())
	next, cmd := m.Update(keyMsg("y"))
	m = next.(Model)
	m = feed(t, m, cmd())
	assert.Contains(t, m.View().Content, `delete pipeline a: pipelines.telemetry.tpctl.dev "a" is forbidden`)
	assert.NotNil(t, api.Pipeline("a"))
	assert.Equal(t, viewDetail, m.view)
}
