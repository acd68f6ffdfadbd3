package tui

import (
	"context"

	"charm.land/bubbles/v2/help"
	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// page is one screen of the manager, shaped like soft-serve's
// common.Component: it takes messages, draws its body at the size it is
// given and names its keys (help.KeyMap). The root model keeps only the
// navigation between pages, the watch and the status line.
//
// Update returns where the page asks to go (nil: stay) instead of sending
// it as a message, so the root moves in the same update as the key that
// asked for it.
type page interface {
	help.KeyMap
	// Update handles a key or a message meant for the page.
	Update(msg tea.Msg) (tea.Cmd, nav)
	// View draws the body; the root fits it to the size given last.
	View() string
	// SetSize gives the page the room of its body.
	SetSize(width, height int)
	// Title names the page in the title line.
	Title() string
	// Typing reports whether keys are text for the page (a field or the
	// filter has them): the global keys (?, q) then stay with the page.
	Typing() bool
}

// env is what every page shares: the manager's context, API, options,
// styles and keys. Pages never change it.
type env struct {
	ctx  context.Context
	api  manage.API
	opts Options
	st   Styles
	keys keys
	// metrics are the pipelines' last samples; nil without Options.Metrics.
	metrics *metricsState
}

// nav is a page's request to go somewhere; the root decides how.
type nav interface{ isNav() }

type (
	// navBack leaves the page for the one it was opened from; status, when
	// set, replaces the status line.
	navBack struct{ status string }
	// navOpen shows a pipeline's details.
	navOpen struct{ p *v1alpha1.Pipeline }
	// navEdit opens the pipeline form (p nil: create).
	navEdit struct{ p *v1alpha1.Pipeline }
	// navDelete asks to confirm the deletion of a pipeline.
	navDelete struct{ name string }
	// navDeleteConfirmed deletes it; navDeleteCancelled does not.
	navDeleteConfirmed struct{ name string }
	navDeleteCancelled struct{}
	// navInstances shows the core instances.
	navInstances struct{}
	// navEditInstance opens the core-instance form.
	navEditInstance struct{ inst *v1alpha1.CoreInstance }
	// navRefresh reopens the watch and reloads the instances.
	navRefresh struct{}
	// navLogs shows a pipeline's logs.
	navLogs struct{ name string }
	// navSecrets shows a pipeline's secrets.
	navSecrets struct{ name string }
	// navNodes shows the cluster's nodes.
	navNodes struct{}
)

func (navBack) isNav()            {}
func (navOpen) isNav()            {}
func (navEdit) isNav()            {}
func (navDelete) isNav()          {}
func (navDeleteConfirmed) isNav() {}
func (navDeleteCancelled) isNav() {}
func (navInstances) isNav()       {}
func (navEditInstance) isNav()    {}
func (navRefresh) isNav()         {}
func (navLogs) isNav()            {}
func (navSecrets) isNav()         {}
func (navNodes) isNav()           {}
