// Package tui holds the Bubble Tea models of tpctl's terminal UI: the
// pipelines manager (`tpctl tui`) and the install progress screen.
//
// The manager is one root model (Model) over pages (page, shaped like
// soft-serve's common.Component: Update, View, SetSize and a help.KeyMap):
// the pipelines list, a pipeline's detail, its logs, its secrets, the create/edit form,
// the core-instance view and its form, the cluster's nodes, and the delete
// confirmation. The root keeps only the navigation between them, the watch
// and the status line;
// a page asks to go elsewhere by returning a nav from Update. Messages are
// small types named after what happened (pipelineSavedMsg, watchEventsMsg,
// …). Every cluster call goes through a manage.API inside a tea.Cmd, so
// tests drive the models with an in-memory API.
//
// Live refresh: a watch (manage.API.WatchPipelines) runs in a command that
// hands over the events waiting at that moment as one message; the model
// applies them and asks for the next batch. When the watch ends it is
// restarted after a pause, and the first event of a new watch replaces the
// whole list.
//
// Logs: the logs page reads a pipeline's pods with a LogReader
// (Options.Logs; manage.LogReader on a cluster) in a command of its own,
// following; the lines go through a bounded channel and come to the page
// in batches, as the watch's events do, so the update loop never waits for
// the cluster. The page keeps the last logBufferLines lines in a ring and
// counts the ones it dropped; leaving it cancels the read's context.
//
// Secrets: the secrets page lists a pipeline's secret names and sizes
// (manage.API.PipelineSecrets) and changes them with
// manage.API.ChangePipelineSecrets. A value is typed into a masked input
// (textinput.EchoPassword): no view, status or error holds it.
//
// Nodes: the nodes page (N) reads the cluster's nodes with the namespace's
// pipeline pods on each (manage.API.ListNodes) when it opens and again
// every Options.NodesInterval while it is open, one read at a time: each
// answer asks for a tick, and a tick or answer of a closed page or of a
// replaced read is dropped. A refused list (no permission for nodes, which
// belong to no namespace) is said as such.
//
// The models are Bubble Tea v2 models drawn with Lip Gloss v2 styles and
// Bubbles v2 components. Colours (Colours: a colour profile and whether the
// background is dark) are found once, before the program starts; on a
// terminal without colours (TERM=dumb, NO_COLOR) the screens are plain text
// and the views mark selection, reassigned ports and states with
// characters instead.
//
// The install screen (InstallModel, RunInstall) consumes the installer's
// event stream: each step with its state, a byte progress bar while the
// payload is staged, a scrolling log and a final summary.
package tui
