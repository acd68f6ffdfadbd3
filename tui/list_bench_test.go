package tui

import (
	"context"
	"fmt"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

// manyPipelines builds n pipelines with assigned ports, every tenth one
// reassigned, as the operator would leave them.
func manyPipelines(n int) []v1alpha1.Pipeline {
	out := make([]v1alpha1.Pipeline, n)
	for i := range out {
		p := &out[i]
		p.Name = fmt.Sprintf("pipeline-%05d", i)
		p.Generation = 1
		p.Spec = v1alpha1.PipelineSpec{Instance: "core", ServiceType: v1alpha1.ServiceTypeNodePort,
			Ports: []v1alpha1.PipelinePort{tcp(int32(10000 + i)), udp(int32(20000 + i))}}
		managetestAssign(p)
		if i%10 == 0 {
			p.Status.Ports[0].Frontend++
			p.Status.Ports[0].Reassigned = true
		}
		ready(p)
	}
	return out
}

func benchModel(b *testing.B, n int) Model {
	b.Helper()
	m := New(context.Background(), managetest.NewMemory("tp"), options())
	next, _ := m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	m = next.(Model)
	next, _ = m.Update(watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventReset, Pipelines: manyPipelines(n)}}})
	return next.(Model)
}

// BenchmarkListRender draws one frame of the list with 2,000 pipelines.
func BenchmarkListRender(b *testing.B) {
	m := benchModel(b, 2000)
	m.list.cursor = 1000
	m.list.clamp()
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkListUpdate applies one watch event (a pipeline's status changed)
// to a list of 2,000 and draws the frame.
func BenchmarkListUpdate(b *testing.B) {
	m := benchModel(b, 2000)
	items := manyPipelines(2000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := items[i%len(items)].DeepCopy()
		p.Status.ReadyReplicas = int32(i % 3)
		p.ResourceVersion = fmt.Sprint(i)
		next, _ := m.Update(watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventModified, Pipeline: p}}})
		m = next.(Model)
		_ = m.View()
		i++
	}
}

// BenchmarkListFilterKey types one filter character over 2,000 pipelines
// and draws the frame.
func BenchmarkListFilterKey(b *testing.B) {
	m := benchModel(b, 2000)
	next, _ := m.Update(keyMsg("/"))
	m = next.(Model)
	b.ReportAllocs()
	for b.Loop() {
		next, _ = m.Update(keyMsg("7"))
		m = next.(Model)
		_ = m.View()
		next, _ = m.Update(keyMsg("backspace"))
		m = next.(Model)
	}
}

// BenchmarkListReset replaces the whole list (a new watch) of 2,000.
func BenchmarkListReset(b *testing.B) {
	m := benchModel(b, 2000)
	items := manyPipelines(2000)
	b.ReportAllocs()
	for b.Loop() {
		next, _ := m.Update(watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventReset, Pipelines: items}}})
		m = next.(Model)
		_ = m.View()
	}
}
