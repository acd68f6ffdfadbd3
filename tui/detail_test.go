package tui

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

func TestDetailScreen(t *testing.T) {
	tm := start(t, sampleCluster(t), options())
	waitFor(t, tm, "core-health")
	send(tm, "down", "enter")
	waitFor(t, tm, "Reassigned: frontend tcp/2200")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "2201 (moved)", "the reassigned frontend is marked")
	assert.Contains(t, s, "192.0.2.1:30201")
	assert.Contains(t, s, "Name syslog", "the configuration is shown")
}

func TestDetailScreenLoadError(t *testing.T) {
	api := sampleCluster(t)
	api.Fail(managetest.OpEndpoints, errors.New("services \"b\" is forbidden"))
	tm := start(t, api, options())
	waitFor(t, tm, "core-health")
	send(tm, "down", "enter")
	waitFor(t, tm, "cannot load")
	requireScreen(t, screen(t, tm))
}

func TestDetailFollowsTheWatch(t *testing.T) {
	api := sampleCluster(t)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("down"), keyMsg("enter"))
	require.Equal(t, viewDetail, m.view)
	require.Equal(t, "b", m.detail.name())

	b := api.Pipeline("b")
	ready(b)
	m = feed(t, m, watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventModified, Pipeline: b}}})
	assert.Contains(t, m.View().Content, "2/2 · Available", "a newer version replaces the shown one")

	m = feed(t, m, watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventDeleted, Pipeline: b}}})
	assert.Contains(t, m.View().Content, "This pipeline was deleted.")
	m = feed(t, m, keyMsg("e"))
	assert.Equal(t, viewDetail, m.view, "a deleted pipeline cannot be edited")
	m = feed(t, m, keyMsg("esc"))
	assert.Equal(t, viewList, m.view)
}

func TestDetailScrolls(t *testing.T) {
	api := sampleCluster(t)
	b := api.Pipeline("b")
	for i := 0; i < 60; i++ {
		b.Spec.Config.Content += "# line\n"
	}
	api.AddPipeline(b)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("down"), keyMsg("enter"))
	top := m.View().Content
	m = feed(t, m, keyMsg("G"))
	assert.NotEqual(t, top, m.View().Content)
	assert.Contains(t, m.View().Content, "# line")
	assert.NotContains(t, m.View().Content, "Instance          core", "scrolled past the top")
}
