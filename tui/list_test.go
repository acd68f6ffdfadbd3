package tui

import (
	"context"
	"errors"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

func TestListScreen(t *testing.T) {
	tm := start(t, sampleCluster(t), options())
	waitFor(t, tm, "tcp/2201->2200", "core-health")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "tcp/2201->2200", "the reassigned frontend shows frontend->backend")
}

func TestListScreenEmptyCluster(t *testing.T) {
	tm := start(t, emptyCluster(t), options())
	waitFor(t, tm, "Press n to create one")
	requireScreen(t, screen(t, tm))
}

func TestListScreenNoInstance(t *testing.T) {
	tm := start(t, managetest.NewMemory("tp"), options())
	waitFor(t, tm, "install one (tpctl install)")
	requireScreen(t, screen(t, tm))
}

func TestListScreenWatchError(t *testing.T) {
	m := sampleCluster(t)
	m.Fail(managetest.OpWatch, errors.New("pipelines.telemetry.tpctl.dev is forbidden: User \"dev\" cannot watch"))
	tm := start(t, m, options())
	waitFor(t, tm, "live refresh stopped")
	requireScreen(t, screen(t, tm))
}

// feed runs a model through messages without a program: Update, then the
// commands it returns, until nothing is left (watch commands that block
// are not run).
func feed(t *testing.T, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

// loaded returns a model that has seen the sample cluster's pipelines.
func loaded(t *testing.T, api *managetest.Memory) Model {
	t.Helper()
	m := New(context.Background(), api, options())
	items, err := api.ListPipelines(context.Background())
	require.NoError(t, err)
	inst, err := api.ListInstances(context.Background())
	require.NoError(t, err)
	return feed(t, m, tea.WindowSizeMsg{Width: screenW, Height: screenH},
		watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventReset, Pipelines: items}}},
		instancesMsg{items: inst})
}

func names(m Model) []string {
	var out []string
	for _, r := range m.list.visible {
		out = append(out, r.name)
	}
	return out
}

func TestListFilterAndSort(t *testing.T) {
	m := loaded(t, sampleCluster(t))
	assert.Equal(t, []string{"a", "b", "core-health", "new"}, names(m))

	m = feed(t, m, keyMsg("/"), keyMsg("5"), keyMsg("1"), keyMsg("4"))
	assert.True(t, m.list.filtering)
	assert.Equal(t, []string{"b"}, names(m), "filters as you type, on the ports too")
	m = feed(t, m, keyMsg("enter"))
	assert.False(t, m.list.filtering)
	assert.Contains(t, m.View().Content, "1 of 4 pipelines")
	assert.Contains(t, m.View().Content, "filter: 514")
	m = feed(t, m, keyMsg("esc"))
	assert.Len(t, names(m), 4, "esc clears the filter")

	m = feed(t, m, keyMsg("/"), keyMsg("p"), keyMsg("e"), keyMsg("n"), keyMsg("d"))
	assert.Equal(t, []string{"new"}, names(m), "the status column matches")
	m = feed(t, m, keyMsg("esc"))
	assert.Len(t, names(m), 4, "esc while typing clears it as well")

	m = feed(t, m, keyMsg("s"), keyMsg("s"))
	assert.Equal(t, sortWorkload, m.list.sortBy)
	assert.Equal(t, []string{"new", "a", "core-health", "b"}, names(m), "DaemonSet, Deployment…, StatefulSet")
	m = feed(t, m, keyMsg("S"))
	assert.Equal(t, []string{"b", "a", "core-health", "new"}, names(m), "reversed; ties stay by name")
	assert.Contains(t, m.View().Content, "sort: workload v")
}

func TestListCursorFollowsThePipeline(t *testing.T) {
	api := sampleCluster(t)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("down"))
	require.Equal(t, "b", m.list.selected().Name)
	m = feed(t, m, keyMsg("S"))
	assert.Equal(t, "b", m.list.selected().Name, "a new order keeps the selected pipeline")
	m = feed(t, m, keyMsg("G"))
	assert.Equal(t, "a", m.list.selected().Name)
	m = feed(t, m, keyMsg("g"), keyMsg("up"))
	assert.Equal(t, 0, m.list.cursor, "the cursor stops at the top")
}

func TestListLiveRefresh(t *testing.T) {
	api := sampleCluster(t)
	tm := start(t, api, options())
	waitFor(t, tm, "core-health")

	p := api.Pipeline("new")
	managetestAssign(p)
	api.AddPipeline(p)
	waitFor(t, tm, "DaemonSet    LoadBalancer  0")
	_, err := api.DeletePipeline(context.Background(), "a", manage.WriteOptions{})
	require.NoError(t, err)
	api.AddPipeline(&v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "zz-late"}, Spec: v1alpha1.PipelineSpec{Instance: "core"}})
	waitFor(t, tm, "zz-late")
	s := screen(t, tm)
	assert.NotContains(t, s, "Available    tcp/2200 ", "a is gone")
	assert.Contains(t, s, "4 pipelines")
}

func TestListResize(t *testing.T) {
	m := loaded(t, sampleCluster(t))
	for _, size := range []tea.WindowSizeMsg{{Width: 60, Height: 12}, {Width: 140, Height: 40}} {
		m = feed(t, m, size)
		lines := strings.Split(m.View().Content, "\n")
		assert.Len(t, lines, size.Height, "%v", size)
		for _, l := range lines {
			assert.LessOrEqual(t, lipglossWidth(l), size.Width, "%v: %q", size, l)
		}
	}
	assert.Contains(t, m.View().Content, "tcp/2201->2200, udp/5140", "wide enough for every port")
}

func TestHelpToggles(t *testing.T) {
	m := loaded(t, sampleCluster(t))
	assert.NotContains(t, m.View().Content, "pgup")
	m = feed(t, m, keyMsg("?"))
	assert.Contains(t, m.View().Content, "pgup", "? shows every key")
	assert.Contains(t, m.View().Content, "reverse")
	m = feed(t, m, keyMsg("?"))
	assert.NotContains(t, m.View().Content, "pgup")
}

// The Ready reasons the operator reads from the pods show whole in the
// status column, in the warning colour's place.
func TestListShowsPodReasonsWhole(t *testing.T) {
	api := sampleCluster(t)
	for _, reason := range []string{v1alpha1.ReasonCrashLoopBackOff, v1alpha1.ReasonImagePullError,
		v1alpha1.ReasonContainerConfigError, v1alpha1.ReasonUnschedulable} {
		a := api.Pipeline("a")
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: reason, Message: "0/1 pod(s) ready; pod a-1: ...", ObservedGeneration: a.Generation})
		api.AddPipeline(a)
		m := loaded(t, api)
		assert.Contains(t, m.View().Content, " "+reason+" ", reason)
	}
}
