package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// Messages. Each says what happened; the model decides what it means.
type (
	// watchStartedMsg: a watch is open; gen tells stale watches apart.
	watchStartedMsg struct {
		ch  <-chan manage.PipelineEvent
		gen int
	}
	// watchEventsMsg: the events that were waiting, in order.
	watchEventsMsg struct {
		events []manage.PipelineEvent
		gen    int
	}
	// watchEndedMsg: the watch closed (err says why, when known).
	watchEndedMsg struct {
		err error
		gen int
	}
	// rewatchMsg: time to open a new watch.
	rewatchMsg   struct{ gen int }
	instancesMsg struct {
		items []v1alpha1.CoreInstance
		err   error
	}
	detailDataMsg struct {
		seq       int
		name      string
		endpoints []manage.Endpoint
		events    []manage.Event
		err       error
	}
	pipelineSavedMsg struct {
		p    *v1alpha1.Pipeline
		verb string
	}
	pipelineDeletedMsg struct{ name string }
	instanceSavedMsg   struct{ inst *v1alpha1.CoreInstance }
	// formErrMsg: a write of the form failed; the form stays open.
	formErrMsg struct{ err error }
	// errMsg: an operation failed; op says which.
	errMsg struct {
		op  string
		err error
	}
	configLoadedMsg struct {
		path string
		data []byte
		err  error
	}
	editorReadyMsg struct{ path string }
	editorDoneMsg  struct {
		data []byte
		err  error
	}
)

// maxBatch bounds the events handed over in one message.
const maxBatch = 512

// rewatchAfter is the pause before a failed watch is opened again.
const rewatchAfter = 2 * time.Second

func startWatch(ctx context.Context, api manage.API, gen int) tea.Cmd {
	return func() tea.Msg {
		ch, err := api.WatchPipelines(ctx)
		if err != nil {
			return watchEndedMsg{err: err, gen: gen}
		}
		return watchStartedMsg{ch: ch, gen: gen}
	}
}

// nextEvents waits for one event, then takes the ones already waiting.
func nextEvents(ch <-chan manage.PipelineEvent, gen int) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return watchEndedMsg{gen: gen}
		}
		if ev.Type == manage.EventError {
			return watchEndedMsg{err: ev.Err, gen: gen}
		}
		batch := []manage.PipelineEvent{ev}
		for len(batch) < maxBatch {
			select {
			case ev, ok := <-ch:
				if !ok || ev.Type == manage.EventError {
					return watchEventsMsg{events: batch, gen: gen}
				}
				batch = append(batch, ev)
			default:
				return watchEventsMsg{events: batch, gen: gen}
			}
		}
		return watchEventsMsg{events: batch, gen: gen}
	}
}

func rewatchLater(gen int) tea.Cmd {
	return tea.Tick(rewatchAfter, func(time.Time) tea.Msg { return rewatchMsg{gen: gen} })
}

func loadInstances(ctx context.Context, api manage.API) tea.Cmd {
	return func() tea.Msg {
		items, err := api.ListInstances(ctx)
		return instancesMsg{items: items, err: err}
	}
}

// loadDetail reads a pipeline's endpoints and events; seq tells a newer
// load from an older one that finishes later.
func loadDetail(ctx context.Context, api manage.API, name string, seq int) tea.Cmd {
	return func() tea.Msg {
		eps, err := api.Endpoints(ctx, name)
		if err != nil {
			return detailDataMsg{seq: seq, name: name, err: err}
		}
		events, err := api.Events(ctx, v1alpha1.KindPipeline, name)
		return detailDataMsg{seq: seq, name: name, endpoints: eps, events: events, err: err}
	}
}

func createPipeline(ctx context.Context, api manage.API, p *v1alpha1.Pipeline, texts []string) tea.Cmd {
	return func() tea.Msg {
		got, err := api.CreatePipeline(ctx, p, texts, manage.WriteOptions{})
		if err != nil {
			return formErrMsg{err: err}
		}
		return pipelineSavedMsg{p: got, verb: "created"}
	}
}

func updatePipeline(ctx context.Context, api manage.API, name string, ch manage.PipelineChange) tea.Cmd {
	return func() tea.Msg {
		got, err := api.UpdatePipeline(ctx, name, ch, manage.WriteOptions{})
		if err != nil {
			return formErrMsg{err: err}
		}
		return pipelineSavedMsg{p: got, verb: "updated"}
	}
}

func deletePipeline(ctx context.Context, api manage.API, name string) tea.Cmd {
	return func() tea.Msg {
		if _, err := api.DeletePipeline(ctx, name, manage.WriteOptions{}); err != nil {
			return errMsg{op: "delete pipeline " + name, err: err}
		}
		return pipelineDeletedMsg{name: name}
	}
}

func updateInstance(ctx context.Context, api manage.API, name string, ch manage.InstanceChange) tea.Cmd {
	return func() tea.Msg {
		got, err := api.UpdateInstance(ctx, name, ch, manage.WriteOptions{})
		if err != nil {
			return formErrMsg{err: err}
		}
		return instanceSavedMsg{inst: got}
	}
}

func readConfigFile(read func(string) ([]byte, error), path string) tea.Cmd {
	return func() tea.Msg {
		data, err := read(path)
		if err != nil {
			err = fmt.Errorf("read %s: %w", path, err)
		}
		return configLoadedMsg{path: path, data: data, err: err}
	}
}

// editorCommand is $VISUAL, else $EDITOR, else vi, split into words (no
// shell is involved).
func editorCommand(getenv func(string) string) []string {
	for _, v := range []string{"VISUAL", "EDITOR"} {
		if f := strings.Fields(getenv(v)); len(f) > 0 {
			return f
		}
	}
	return []string{"vi"}
}

// prepareEditor writes content to a private temporary file for the editor.
func prepareEditor(content []byte, ext string) tea.Cmd {
	return func() tea.Msg {
		f, err := os.CreateTemp("", "tpctl-pipeline-*"+ext)
		if err != nil {
			return editorDoneMsg{err: fmt.Errorf("create a file for the editor: %w", err)}
		}
		path := f.Name()
		_, werr := f.Write(content)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			os.Remove(path)
			return editorDoneMsg{err: fmt.Errorf("write %s: %w", path, err)}
		}
		return editorReadyMsg{path: path}
	}
}

// runEditor runs the editor on path with the terminal handed over, then
// reads the file back and removes it.
func runEditor(editor []string, path string) tea.Cmd {
	args := append(append([]string(nil), editor[1:]...), path)
	c := exec.Command(editor[0], args...)
	return tea.ExecProcess(c, func(err error) tea.Msg {
		defer os.Remove(path)
		if err != nil {
			return editorDoneMsg{err: fmt.Errorf("run %s: %w", editor[0], err)}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return editorDoneMsg{err: fmt.Errorf("read %s: %w", path, err)}
		}
		return editorDoneMsg{data: data}
	})
}
