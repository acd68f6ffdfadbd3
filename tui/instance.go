package tui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

// instanceModel lists the core instances and describes the selected one:
// proxies, health check, defaults and the frontend ports in use.
type instanceModel struct {
	env    *env
	st     Styles
	keys   keys
	items  []v1alpha1.CoreInstance
	cursor int
	loaded bool
	err    error
	width  int
}

func (m *instanceModel) set(items []v1alpha1.CoreInstance, err error) {
	m.loaded = true
	m.err = err
	if err == nil {
		m.items = items
	}
	m.cursor = min(m.cursor, max(len(m.items)-1, 0))
}

func (m *instanceModel) selected() *v1alpha1.CoreInstance {
	if m.cursor < len(m.items) {
		return &m.items[m.cursor]
	}
	return nil
}

// names are the instances' names, in order.
func (m *instanceModel) names() []string {
	names := make([]string, len(m.items))
	for i, inst := range m.items {
		names[i] = inst.Name
	}
	return names
}

// none reports a namespace known to have no core instance.
func (m *instanceModel) none() bool { return m.loaded && len(m.items) == 0 && m.err == nil }

// SetSize implements page.
func (m *instanceModel) SetSize(w, _ int) { m.width = w }

// Title implements page.
func (m *instanceModel) Title() string { return "Core instances" }

// Typing implements page.
func (m *instanceModel) Typing() bool { return false }

// ShortHelp implements help.KeyMap.
func (m *instanceModel) ShortHelp() []key.Binding { return m.keys.instanceHelp().ShortHelp() }

// FullHelp implements help.KeyMap.
func (m *instanceModel) FullHelp() [][]key.Binding { return m.keys.instanceHelp().FullHelp() }

// Update implements page.
func (m *instanceModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil, nil
	}
	k := m.keys
	switch {
	case key.Matches(km, k.Back):
		return nil, navBack{}
	case key.Matches(km, k.Refresh):
		return loadInstances(m.env.ctx, m.env.api), nil
	case key.Matches(km, k.Edit):
		if inst := m.selected(); inst != nil {
			return nil, navEditInstance{inst: inst.DeepCopy()}
		}
	case key.Matches(km, k.Nodes):
		return nil, navNodes{}
	case key.Matches(km, k.Up):
		m.cursor = max(m.cursor-1, 0)
	case key.Matches(km, k.Down):
		m.cursor = min(m.cursor+1, max(len(m.items)-1, 0))
	}
	return nil, nil
}

// View implements page.
func (m *instanceModel) View() string {
	namespace := m.env.api.Namespace()
	st := m.st
	var b strings.Builder
	b.WriteString(st.Dim.Render(plural(len(m.items), "core instance")+" in namespace "+namespace) + "\n")
	switch {
	case !m.loaded:
		return b.String() + "Loading core instances…\n"
	case m.err != nil:
		return b.String() + st.Error.Render("cannot list core instances: "+m.err.Error()) + "\n"
	case len(m.items) == 0:
		return b.String() + st.Warn.Render("No core instance in namespace "+namespace+": tpctl install creates one.") + "\n"
	}
	for i := range m.items {
		c := &m.items[i]
		mark := "  "
		if i == m.cursor {
			mark = st.Cursor.Render(st.marker("> ", "▸ "))
		}
		b.WriteString(mark + pad(c.Name, 20) + "  " + strconv.Itoa(int(c.Status.PipelineCount)) + " pipelines · health " +
			manage.HealthCheckText(c) + " · ready " + manage.InstanceReadyText(c) + "\n")
	}
	c := m.selected()
	kv := func(k, v string) { b.WriteString(st.Label.Render(pad(k, 22)) + v + "\n") }
	b.WriteString("\n" + st.Header.Render(c.Name) + "\n")
	// Proxy credentials are never shown: they live in a Secret (an
	// instance written before that may still hold some in its spec).
	kv("HTTP proxy", proxyText(&c.Spec, v1alpha1.ProxySecretKeyHTTP))
	kv("HTTPS proxy", proxyText(&c.Spec, v1alpha1.ProxySecretKeyHTTPS))
	kv("No proxy", dashIfEmpty(c.Spec.NoProxy, "none"))
	hc := manage.HealthCheckText(c)
	if c.Spec.HealthCheckEnabled() {
		hc += " · " + string(c.Spec.HealthCheckServiceType())
	}
	kv("Health check", hc)
	kv("Default Service type", string(c.Spec.DefaultServiceType()))
	kv("Default image", dashIfEmpty(c.Spec.PipelineDefaults.Image, "operator default"))
	b.WriteString("\n" + st.Header.Render("Frontend ports in use") + "\n")
	if len(c.Status.FrontendPorts) == 0 {
		b.WriteString(st.Dim.Render("none") + "\n")
	}
	for _, f := range c.Status.FrontendPorts {
		line := pad(pipeline.Port{Protocol: f.Protocol, Number: f.Port}.String(), 12) + " " + pad(f.Pipeline, 24) +
			" backend " + strconv.Itoa(int(f.Backend))
		if f.Port != f.Backend {
			line = st.Reassigned.Render(line + st.marker(" (moved)", " ↑"))
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// instance form fields.
const (
	iHTTP = iota
	iHTTPS
	iNoProxy
	iHealth
	iPort
	iSubmit
	numInstanceFields
)

// instanceForm edits an instance's proxies and health check.
type instanceForm struct {
	env                       *env
	st                        Styles
	orig                      *v1alpha1.CoreInstance
	focus                     int
	http, https, noProxy, hcp textinput.Model
	health                    bool
	errs                      map[int]string
	saving                    bool
	saveErr                   string
	width                     int
}

// proxyText is manage.ProxyText with "(none)" for no proxy.
func proxyText(spec *v1alpha1.CoreInstanceSpec, key string) string {
	if t := manage.ProxyText(spec, key); t != "-" {
		return t
	}
	return dashIfEmpty("", "none")
}

func newInstanceForm(e *env, inst *v1alpha1.CoreInstance) *instanceForm {
	st := e.st
	f := &instanceForm{env: e, st: st, orig: inst, health: inst.Spec.HealthCheckEnabled()}
	f.http = st.newInput("http://proxy.example:3128", 512)
	f.https = st.newInput("http://proxy.example:3128", 512)
	f.noProxy = st.newInput("localhost,.svc,10.0.0.0/8", 1024)
	f.hcp = st.newInput(strconv.Itoa(int(v1alpha1.DefaultHealthCheckPort)), 5)
	// The form shows proxies redacted; an untouched field is no change.
	f.http.SetValue(manage.RedactProxyURL(inst.Spec.HTTPProxy))
	f.https.SetValue(manage.RedactProxyURL(inst.Spec.HTTPSProxy))
	f.noProxy.SetValue(inst.Spec.NoProxy)
	f.hcp.SetValue(strconv.Itoa(int(inst.Spec.HealthCheckPort())))
	f.validate()
	return f
}

func (f *instanceForm) inputs() []*textinput.Model {
	return []*textinput.Model{iHTTP: &f.http, iHTTPS: &f.https, iNoProxy: &f.noProxy, iPort: &f.hcp}
}

// SetSize implements page.
func (f *instanceForm) SetSize(w, _ int) {
	f.width = w
	for _, in := range f.inputs() {
		if in != nil {
			in.SetWidth(min(max(w-26, 20), 60))
		}
	}
}

func (f *instanceForm) setFocus(i int) tea.Cmd {
	for _, in := range f.inputs() {
		if in != nil {
			in.Blur()
		}
	}
	f.focus = i
	if i < len(f.inputs()) && f.inputs()[i] != nil {
		return f.inputs()[i].Focus()
	}
	return nil
}

func (f *instanceForm) move(d int) tea.Cmd {
	i := f.focus
	for {
		i = (i + d + numInstanceFields) % numInstanceFields
		if i != iPort || f.health {
			break
		}
	}
	return f.setFocus(i)
}

// Title implements page.
func (f *instanceForm) Title() string { return "Core instances" }

// Typing implements page: every key goes to the form.
func (f *instanceForm) Typing() bool { return true }

// ShortHelp implements help.KeyMap.
func (f *instanceForm) ShortHelp() []key.Binding { return f.env.keys.instanceFormHelp().ShortHelp() }

// FullHelp implements help.KeyMap.
func (f *instanceForm) FullHelp() [][]key.Binding { return f.env.keys.instanceFormHelp().FullHelp() }

// Update implements page.
func (f *instanceForm) Update(msg tea.Msg) (tea.Cmd, nav) {
	switch msg := msg.(type) {
	case formErrMsg:
		f.saving, f.saveErr = false, msg.err.Error()
	case tea.KeyPressMsg:
		return f.key(msg)
	case tea.PasteMsg:
		var cmd tea.Cmd
		if !f.saving && f.focus < len(f.inputs()) && f.inputs()[f.focus] != nil {
			in := f.inputs()[f.focus]
			*in, cmd = in.Update(msg)
			f.validate()
		}
		return cmd, nil
	}
	return nil, nil
}

func (f *instanceForm) key(msg tea.KeyPressMsg) (tea.Cmd, nav) {
	if f.saving {
		return nil, nil
	}
	var cmd tea.Cmd
	switch s := msg.String(); {
	case s == "esc":
		return nil, navBack{status: "nothing saved"}
	case s == "ctrl+s" || (s == "enter" && f.focus == iSubmit):
		f.validate()
		if len(f.errs) > 0 {
			return nil, nil
		}
		f.saving, f.saveErr = true, ""
		return updateInstance(f.env.ctx, f.env.api, f.orig.Name, f.change()), nil
	case s == "tab" || s == "down" || s == "enter":
		cmd = f.move(1)
	case s == "shift+tab" || s == "up":
		cmd = f.move(-1)
	case f.focus == iHealth && (s == "space" || s == "left" || s == "right"):
		f.health = !f.health
	case f.focus < len(f.inputs()) && f.inputs()[f.focus] != nil:
		in := f.inputs()[f.focus]
		*in, cmd = in.Update(msg)
	}
	f.validate()
	return cmd, nil
}

// change is what differs from the instance as it was.
func (f *instanceForm) change() manage.InstanceChange {
	var c manage.InstanceChange
	str := func(in textinput.Model, was string) *string {
		if v := strings.TrimSpace(in.Value()); v != was {
			return &v
		}
		return nil
	}
	c.HTTPProxy = str(f.http, manage.RedactProxyURL(f.orig.Spec.HTTPProxy))
	c.HTTPSProxy = str(f.https, manage.RedactProxyURL(f.orig.Spec.HTTPSProxy))
	c.NoProxy = str(f.noProxy, f.orig.Spec.NoProxy)
	if f.health != f.orig.Spec.HealthCheckEnabled() {
		h := f.health
		c.HealthCheck = &h
	}
	if f.health {
		if p, err := pipeline.ParsePortNumber(f.hcp.Value()); err == nil && p != f.orig.Spec.HealthCheckPort() {
			c.HealthCheckPort = &p
		}
	}
	return c
}

func (f *instanceForm) validate() {
	f.errs = map[int]string{}
	was := map[int]string{iHTTP: manage.RedactProxyURL(f.orig.Spec.HTTPProxy), iHTTPS: manage.RedactProxyURL(f.orig.Spec.HTTPSProxy)}
	for i, in := range map[int]textinput.Model{iHTTP: f.http, iHTTPS: f.https} {
		v := strings.TrimSpace(in.Value())
		switch {
		case v == "" || v == was[i]:
		case strings.Contains(v, "***@"):
			// Saving the placeholder would replace the real credentials.
			f.errs[i] = "the credentials are hidden (***): retype them or remove them"
		default:
			if err := manage.ValidateProxyURL(v); err != nil {
				f.errs[i] = err.Error()
			}
		}
	}
	if strings.ContainsAny(strings.TrimSpace(f.noProxy.Value()), " \t") {
		f.errs[iNoProxy] = "a comma-separated list without spaces"
	}
	if f.health {
		if _, err := pipeline.ParsePortNumber(f.hcp.Value()); err != nil {
			f.errs[iPort] = err.Error()
		}
	}
	if len(f.errs) == 0 && f.change().IsEmpty() {
		f.errs[iSubmit] = "nothing changed yet"
	}
}

// View implements page.
func (f *instanceForm) View() string {
	st := f.st
	var b strings.Builder
	b.WriteString(st.Title.Render("Edit core instance "+f.orig.Name) + "\n")
	b.WriteString(st.Dim.Render("Proxies reach every pipeline of the instance; its pods restart with them.") + "\n\n")
	label := func(i int, text string) {
		mark := "  "
		style := st.Label
		if f.focus == i {
			mark, style = st.Cursor.Render(st.marker("> ", "▸ ")), st.Focused
		}
		b.WriteString(mark + style.Render(pad(text, 20)))
	}
	errLine := func(i int) {
		if e := f.errs[i]; e != "" && i != iSubmit {
			b.WriteString(st.errorBlock(e, f.width, strings.Repeat(" ", 22)))
		}
	}
	label(iHTTP, "HTTP proxy")
	b.WriteString(f.http.View() + "\n")
	errLine(iHTTP)
	label(iHTTPS, "HTTPS proxy")
	b.WriteString(f.https.View() + "\n")
	errLine(iHTTPS)
	label(iNoProxy, "No proxy")
	b.WriteString(f.noProxy.View() + "\n")
	errLine(iNoProxy)
	label(iHealth, "Health check")
	box := "[ ]"
	if f.health {
		box = "[x]"
	}
	b.WriteString(box + " run the health-check pipeline\n")
	label(iPort, "Health-check port")
	if f.health {
		b.WriteString(f.hcp.View() + st.Dim.Render("  TCP") + "\n")
	} else {
		b.WriteString(st.Dim.Render("off") + "\n")
	}
	errLine(iPort)
	b.WriteString("\n  ")
	if f.focus == iSubmit {
		b.WriteString(st.ButtonFocused.Render("[ Save ]"))
	} else {
		b.WriteString(st.Button.Render("[ Save ]"))
	}
	switch {
	case f.saving:
		b.WriteString(st.Dim.Render("  saving…"))
	case f.errs[iSubmit] != "":
		b.WriteString(st.Dim.Render("  " + f.errs[iSubmit]))
	case len(f.errs) > 0:
		b.WriteString(st.Dim.Render("  fix the errors to save"))
	}
	b.WriteString("\n")
	if f.saveErr != "" {
		b.WriteString(st.errorBlock(f.saveErr, f.width, ""))
	}
	return b.String()
}

// plural renders "1 core instance", "2 core instances".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
