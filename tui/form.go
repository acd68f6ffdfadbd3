package tui

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/pipeline"
)

// field is a focusable part of the pipeline form.
type field int

const (
	fName field = iota
	fInstance
	fConfig
	fAutoPorts
	fPorts
	fService
	fWorkload
	fReplicas
	fStorageSize
	fStorageClass
	fMinReplicas
	fMaxReplicas
	fTargetCPU
	fCPU
	fImage
	fSubmit
	numFields
)

// formAction is what the root should do after a key in the form.
type formAction int

const (
	formNone formAction = iota
	formCancel
	formSubmit
	formEditor
	formLoadConfig
)

// picker is a choice among fixed options.
type picker struct {
	options []string
	i       int
}

func (p *picker) value() string { return p.options[p.i] }
func (p *picker) move(d int)    { p.i = (p.i + d + len(p.options)) % len(p.options) }
func (p *picker) set(v string) {
	for i, o := range p.options {
		if o == v {
			p.i = i
		}
	}
}

const defaultServiceOption = "instance default"

// formModel creates a pipeline or edits one (orig != nil), validating as
// the user types: names, ports (each line, and backends listed twice), the
// configuration and what it makes the operator detect.
type formModel struct {
	env       *env
	st        Styles
	orig      *v1alpha1.Pipeline
	namespace string
	focus     field

	name, configPath, replicas, image textinput.Model
	storageSize, storageClass         textinput.Model
	minReplicas, maxReplicas, target  textinput.Model
	cpu                               textinput.Model
	origCPU                           string
	instance, service, workload       picker
	autoPorts                         bool
	ports                             portsEditor

	config     *v1alpha1.PipelineConfig
	configNote string
	configErr  string
	loadedPath string

	detected []pipeline.PortEntry
	warnings []string
	errs     map[field]string
	problems []string
	saving   bool
	saveErr  string
	width    int
}

func newForm(e *env, instances []string, orig *v1alpha1.Pipeline) *formModel {
	st := e.st
	m := &formModel{env: e, st: st, orig: orig, namespace: e.api.Namespace(), autoPorts: true}
	m.name = st.newInput("lowercase letters, digits and -", 54)
	m.configPath = st.newInput("path of a Fluent Bit configuration (YAML or classic)", 512)
	m.replicas = st.newInput("1", 6)
	m.image = st.newInput("instance default", 256)
	m.storageSize = st.newInput("none, or a size per pod for the filesystem buffer (e.g. 5Gi)", 64)
	m.storageClass = st.newInput("cluster default", 253)
	m.minReplicas = st.newInput("1", 32)
	m.maxReplicas = st.newInput("none: no autoscaling (on cpu use)", 32)
	m.target = st.newInput(strconv.Itoa(int(v1alpha1.DefaultTargetCPUUtilization))+" (percent of the cpu request)", 32)
	m.cpu = st.newInput("none (REQUEST[:LIMIT], e.g. 100m or 100m:1)", 32)
	m.instance = picker{options: append([]string(nil), instances...)}
	if len(m.instance.options) == 0 {
		m.instance.options = []string{""}
	}
	svc := []string{defaultServiceOption}
	for _, t := range manage.ServiceTypes() {
		svc = append(svc, string(t))
	}
	m.service = picker{options: svc}
	kinds := make([]string, 0, 3)
	for _, k := range manage.WorkloadKinds() {
		kinds = append(kinds, string(k))
	}
	m.workload = picker{options: kinds}
	var texts []string
	if orig != nil {
		m.name.SetValue(orig.Name)
		m.instance = picker{options: []string{orig.Spec.Instance}}
		for _, p := range orig.Spec.Ports {
			texts = append(texts, pipeline.FormatPortFlag(p))
		}
		if orig.Spec.ServiceType != "" {
			m.service.set(string(orig.Spec.ServiceType))
		}
		m.workload.set(string(orig.Spec.WorkloadKind()))
		if orig.Spec.Workload.Replicas != nil {
			m.replicas.SetValue(strconv.Itoa(int(*orig.Spec.Workload.Replicas)))
		}
		m.image.SetValue(orig.Spec.Image)
		if sto := orig.Spec.Workload.Storage; sto != nil {
			m.storageSize.SetValue(sto.Size.String())
			m.storageClass.SetValue(sto.StorageClassName)
		}
		if a := orig.Spec.Workload.Autoscaling; a != nil {
			if a.MinReplicas != nil {
				m.minReplicas.SetValue(strconv.Itoa(int(*a.MinReplicas)))
			}
			m.maxReplicas.SetValue(strconv.Itoa(int(a.MaxReplicas)))
			if a.TargetCPUUtilizationPercentage != nil {
				m.target.SetValue(strconv.Itoa(int(*a.TargetCPUUtilizationPercentage)))
			}
		}
		m.origCPU = cpuText(orig.Spec.Resources)
		m.cpu.SetValue(m.origCPU)
		m.autoPorts = orig.Spec.AutoDetect()
		cfg := orig.Spec.Config
		m.config = &cfg
		m.configNote = "current configuration"
		m.focus = fConfig
	}
	m.ports = newPortsEditor(st, texts)
	m.validate()
	return m
}

func (m *formModel) editing() bool { return m.orig != nil }

// cpuText is the cpu request and limit as --cpu takes them: REQUEST[:LIMIT].
func cpuText(r corev1.ResourceRequirements) string {
	var s string
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		s = q.String()
	}
	if q, ok := r.Limits[corev1.ResourceCPU]; ok {
		s += ":" + q.String()
	}
	return s
}

func (m *formModel) kind() v1alpha1.WorkloadKind { return v1alpha1.WorkloadKind(m.workload.value()) }

// storageFixed reports whether the storage cannot change: the pipeline is
// a StatefulSet and stays one, and Kubernetes keeps a StatefulSet's volume
// claim templates (the CRD refuses adding, changing or removing them).
func (m *formModel) storageFixed() bool {
	return m.editing() && m.orig.Spec.WorkloadKind() == v1alpha1.WorkloadStatefulSet && m.kind() == v1alpha1.WorkloadStatefulSet
}

// autoscaled reports whether the form asks for autoscaling: a Deployment
// with any of its settings given. The autoscaler then sets the replicas.
func (m *formModel) autoscaled() bool {
	if m.kind() != v1alpha1.WorkloadDeployment {
		return false
	}
	for _, in := range []*textinput.Model{&m.minReplicas, &m.maxReplicas, &m.target} {
		if strings.TrimSpace(in.Value()) != "" {
			return true
		}
	}
	return false
}

// texts are the form's text inputs.
func (m *formModel) texts() []*textinput.Model {
	return []*textinput.Model{&m.name, &m.configPath, &m.replicas, &m.storageSize, &m.storageClass,
		&m.minReplicas, &m.maxReplicas, &m.target, &m.cpu, &m.image}
}

// setInstances takes the core instances that were loaded after the create
// form opened; the chosen one stays chosen while it exists.
func (m *formModel) setInstances(names []string) {
	if m.editing() {
		return
	}
	cur := m.instance.value()
	m.instance = picker{options: append([]string(nil), names...)}
	if len(m.instance.options) == 0 {
		m.instance.options = []string{""}
	}
	m.instance.set(cur)
	m.validate()
}

// focusable reports whether f can take the focus now.
func (m *formModel) focusable(f field) bool {
	switch f {
	case fName, fInstance:
		return !m.editing()
	case fReplicas:
		return m.kind() != v1alpha1.WorkloadDaemonSet && !m.autoscaled()
	case fStorageSize, fStorageClass:
		return m.kind() == v1alpha1.WorkloadStatefulSet && !m.storageFixed()
	case fMinReplicas, fMaxReplicas, fTargetCPU:
		return m.kind() == v1alpha1.WorkloadDeployment
	}
	return true
}

// SetSize implements page.
func (m *formModel) SetSize(w, _ int) {
	m.width = w
	iw := min(max(w-24, 20), 60)
	for _, in := range m.texts() {
		in.SetWidth(iw)
	}
	m.ports.setWidth(iw)
	m.ports.lineWidth = w
}

// init focuses the first field.
func (m *formModel) init() tea.Cmd { return m.setFocus(m.focus, false) }

func (m *formModel) setFocus(f field, fromBelow bool) tea.Cmd {
	for _, in := range m.texts() {
		in.Blur()
	}
	if m.focus == fPorts && f != fPorts {
		m.ports.blur()
	}
	m.focus = f
	switch f {
	case fPorts:
		return m.ports.focus(fromBelow)
	case fInstance, fAutoPorts, fService, fWorkload, fSubmit:
		return nil
	}
	return m.input().Focus()
}

// move shifts the focus by d focusable fields, wrapping around.
func (m *formModel) move(d int) (tea.Cmd, formAction) {
	leaving := m.focus
	f := m.focus
	for {
		f = (f + field(d) + numFields) % numFields
		if m.focusable(f) {
			break
		}
	}
	cmd := m.setFocus(f, d < 0)
	if leaving == fConfig && m.pathChanged() {
		return cmd, formLoadConfig
	}
	return cmd, formNone
}

func (m *formModel) pathChanged() bool {
	p := strings.TrimSpace(m.configPath.Value())
	return p != "" && p != m.loadedPath
}

// Title implements page.
func (m *formModel) Title() string { return "Pipelines" }

// Typing implements page: every key goes to the form.
func (m *formModel) Typing() bool { return true }

// ShortHelp implements help.KeyMap.
func (m *formModel) ShortHelp() []key.Binding {
	return m.env.keys.formHelp(m.focus == fPorts).ShortHelp()
}

// FullHelp implements help.KeyMap.
func (m *formModel) FullHelp() [][]key.Binding {
	return m.env.keys.formHelp(m.focus == fPorts).FullHelp()
}

// Update implements page.
func (m *formModel) Update(msg tea.Msg) (tea.Cmd, nav) {
	switch msg := msg.(type) {
	case formErrMsg:
		m.saving, m.saveErr = false, msg.err.Error()
	case configLoadedMsg:
		m.configLoaded(msg)
	case editorReadyMsg:
		return runEditor(m.env.opts.Editor, msg.path), nil
	case editorDoneMsg:
		m.edited(msg)
	case tea.KeyPressMsg:
		cmd, act := m.update(msg)
		return m.act(cmd, act)
	case tea.PasteMsg:
		return m.paste(msg), nil
	}
	return nil, nil
}

// paste puts pasted text into the field that has the focus, if it takes text.
func (m *formModel) paste(msg tea.PasteMsg) tea.Cmd {
	if m.saving {
		return nil
	}
	var cmd tea.Cmd
	switch m.focus {
	case fPorts:
		cmd = m.ports.paste(msg)
	case fName, fConfig, fReplicas, fStorageSize, fStorageClass, fMinReplicas, fMaxReplicas, fTargetCPU, fCPU, fImage:
		in := m.input()
		*in, cmd = in.Update(msg)
	}
	m.validate()
	return cmd
}

// act does what a key asked of the form.
func (m *formModel) act(cmd tea.Cmd, act formAction) (tea.Cmd, nav) {
	switch act {
	case formCancel:
		return nil, navBack{status: "nothing saved"}
	case formLoadConfig:
		path := strings.TrimSpace(m.configPath.Value())
		return tea.Batch(cmd, readConfigFile(m.env.opts.ReadFile, path)), nil
	case formEditor:
		content, ext := m.editorContent()
		return prepareEditor(content, ext), nil
	case formSubmit:
		m.saving, m.saveErr = true, ""
		ch := m.change()
		if m.editing() {
			if ch.IsEmpty() {
				m.saving, m.saveErr = false, "nothing changed yet"
				return nil, nil
			}
			return updatePipeline(m.env.ctx, m.env.api, m.orig.Name, ch), nil
		}
		return createPipeline(m.env.ctx, m.env.api, m.candidate(), ch.PortTexts), nil
	}
	return cmd, nil
}

func (m *formModel) update(msg tea.KeyPressMsg) (tea.Cmd, formAction) {
	if m.saving {
		return nil, formNone
	}
	switch msg.String() {
	case "esc":
		return nil, formCancel
	case "ctrl+s":
		return m.trySubmit()
	case "tab":
		cmd, act := m.move(1)
		return cmd, act
	case "shift+tab":
		cmd, act := m.move(-1)
		return cmd, act
	case "ctrl+e":
		return nil, formEditor
	case "ctrl+n":
		if m.focus != fPorts {
			cmd := m.setFocus(fPorts, true)
			if strings.TrimSpace(m.ports.entries[m.ports.cursor].Value()) == "" {
				m.validate()
				return cmd, formNone // focusing gave an empty line already
			}
		}
		cmd := m.ports.add()
		m.validate()
		return cmd, formNone
	}
	var cmd tea.Cmd
	act := formNone
	switch m.focus {
	case fPorts:
		var leave int
		m.ports, cmd, leave = m.ports.update(msg)
		if leave != 0 {
			cmd, act = m.move(leave)
		}
	case fInstance, fService, fWorkload, fAutoPorts, fSubmit:
		cmd, act = m.choiceKey(msg)
	default:
		switch msg.String() {
		case "up":
			cmd, act = m.move(-1)
		case "down", "enter":
			cmd, act = m.move(1)
		default:
			in := m.input()
			*in, cmd = in.Update(msg)
		}
	}
	m.validate()
	return cmd, act
}

func (m *formModel) input() *textinput.Model {
	switch m.focus {
	case fName:
		return &m.name
	case fConfig:
		return &m.configPath
	case fReplicas:
		return &m.replicas
	case fStorageSize:
		return &m.storageSize
	case fStorageClass:
		return &m.storageClass
	case fMinReplicas:
		return &m.minReplicas
	case fMaxReplicas:
		return &m.maxReplicas
	case fTargetCPU:
		return &m.target
	case fCPU:
		return &m.cpu
	}
	return &m.image
}

func (m *formModel) choiceKey(msg tea.KeyPressMsg) (tea.Cmd, formAction) {
	switch msg.String() {
	case "up", "k":
		return m.move(-1)
	case "down", "j", "tab":
		return m.move(1)
	case "enter":
		if m.focus == fSubmit {
			return nil, formSubmit
		}
		return m.move(1)
	case "left", "h":
		m.choose(-1)
	case "right", "l", "space":
		m.choose(1)
	}
	return nil, formNone
}

func (m *formModel) choose(d int) {
	switch m.focus {
	case fInstance:
		m.instance.move(d)
	case fService:
		m.service.move(d)
	case fWorkload:
		m.workload.move(d)
	case fAutoPorts:
		m.autoPorts = !m.autoPorts
	}
}

func (m *formModel) trySubmit() (tea.Cmd, formAction) {
	if m.focus == fConfig && m.pathChanged() {
		return nil, formLoadConfig // load first; the user saves again
	}
	m.validate()
	if !m.valid() {
		return nil, formNone
	}
	return nil, formSubmit
}

// configLoaded takes the file the user named.
func (m *formModel) configLoaded(msg configLoadedMsg) {
	m.loadedPath = msg.path
	if msg.err != nil {
		m.configErr = msg.err.Error()
		m.validate()
		return
	}
	cfg, err := manage.ConfigFromBytes(msg.path, "", msg.data)
	if err != nil {
		m.configErr = err.Error()
	} else {
		m.config, m.configErr = &cfg, ""
		m.configNote = "from " + filepath.Base(msg.path)
	}
	m.validate()
}

// edited takes the configuration back from the editor.
func (m *formModel) edited(msg editorDoneMsg) {
	if msg.err != nil {
		m.configErr = msg.err.Error()
		m.validate()
		return
	}
	format := ""
	if m.config != nil && m.config.Format != "" {
		format = string(m.config.Format)
	}
	cfg, err := manage.ConfigFromBytes(m.configPath.Value(), format, msg.data)
	if err != nil {
		m.configErr = err.Error()
	} else {
		m.config, m.configErr = &cfg, ""
		m.configNote = "edited"
	}
	m.validate()
}

// editorContent is what the editor opens with, and the file suffix that
// tells editors the syntax.
func (m *formModel) editorContent() ([]byte, string) {
	if m.config == nil {
		return []byte("pipeline:\n  inputs:\n    - name: forward\n  outputs:\n    - name: stdout\n      match: '*'\n"), ".yaml"
	}
	if m.config.Format == v1alpha1.ConfigFormatClassic {
		return []byte(m.config.Content), ".conf"
	}
	return []byte(m.config.Content), ".yaml"
}

func (m *formModel) valid() bool { return len(m.errs) == 0 && len(m.problems) == 0 }

// validate recomputes every error and the ports the configuration adds.
func (m *formModel) validate() {
	m.errs = map[field]string{}
	m.problems, m.detected, m.warnings = nil, nil, nil
	if !m.editing() {
		if err := pipeline.ValidatePipelineName(strings.TrimSpace(m.name.Value())); err != nil {
			m.errs[fName] = err.Error()
		}
		if m.instance.value() == "" {
			m.errs[fInstance] = "no core instance in namespace " + m.namespace + ": install one first (tpctl install)"
		}
	}
	if m.configErr != "" {
		m.errs[fConfig] = m.configErr
	}
	if !m.ports.valid() {
		m.errs[fPorts] = "fix the ports above"
	}
	if m.focusable(fReplicas) && strings.TrimSpace(m.replicas.Value()) != "" {
		if _, err := manage.ParseReplicas(m.replicas.Value()); err != nil {
			m.errs[fReplicas] = err.Error()
		}
	}
	if m.focusable(fStorageSize) && strings.TrimSpace(m.storageSize.Value()) != "" {
		if _, _, err := manage.ParseStorageSize(m.storageSize.Value()); err != nil {
			m.errs[fStorageSize] = err.Error()
		}
	}
	for _, a := range m.autoscalingInputs() {
		if strings.TrimSpace(a.in.Value()) != "" {
			if _, err := manage.ParseAutoscaling(a.flag, a.in.Value()); err != nil {
				m.errs[a.f] = err.Error()
			}
		}
	}
	if _, err := manage.ParseResource("cpu", m.cpu.Value(), manage.MaxCPU); err != nil {
		m.errs[fCPU] = err.Error()
	}
	if len(m.errs) > 0 {
		return
	}
	p := m.candidate()
	if res, err := manage.EffectivePorts(&p.Spec); err == nil {
		for _, e := range res.Ports {
			if !strings.HasPrefix(e.Source, "ports[") {
				m.detected = append(m.detected, e)
			}
		}
		m.warnings = res.Warnings
	}
	if err := manage.ValidatePipeline(p, m.ports.values()); err != nil {
		var inv *manage.InvalidError
		if ok := asInvalid(err, &inv); ok {
			m.problems = inv.Problems
		} else {
			m.problems = []string{err.Error()}
		}
	}
}

// candidate is the pipeline the form describes.
func (m *formModel) candidate() *v1alpha1.Pipeline {
	if m.editing() {
		p := m.orig.DeepCopy()
		m.change().ApplyTo(&p.Spec)
		return p
	}
	return manage.NewPipeline(m.namespace, strings.TrimSpace(m.name.Value()), m.instance.value(), m.change())
}

// change is what the form sets: everything for a create, only what
// differs from the original for an edit (so the Service type is never
// reset by an edit of something else).
func (m *formModel) change() manage.PipelineChange {
	var c manage.PipelineChange
	if m.config != nil && (!m.editing() || !reflect.DeepEqual(*m.config, m.orig.Spec.Config)) {
		cfg := *m.config
		c.Config = &cfg
	}
	if ports, ok := m.ports.ports(); ok {
		if !m.editing() || !samePorts(ports, m.orig.Spec.Ports) {
			c.Ports, c.PortTexts = &ports, m.ports.values()
		}
	}
	if !m.editing() || m.autoPorts != m.orig.Spec.AutoDetect() {
		auto := m.autoPorts
		c.AutoDetectPorts = &auto
	}
	svc := v1alpha1.ServiceType("")
	if v := m.service.value(); v != defaultServiceOption {
		svc = v1alpha1.ServiceType(v)
	}
	if (!m.editing() && svc != "") || (m.editing() && svc != m.orig.Spec.ServiceType) {
		c.ServiceType = &svc
	}
	kind := v1alpha1.WorkloadKind(m.workload.value())
	if !m.editing() || kind != m.orig.Spec.WorkloadKind() {
		c.WorkloadKind = &kind
	}
	c.Storage = m.storageChange()
	c.Autoscaling = m.autoscalingChange()
	if cpu := strings.TrimSpace(m.cpu.Value()); (!m.editing() && cpu != "") || (m.editing() && cpu != m.origCPU) {
		if rc, err := manage.ParseResource("cpu", cpu, manage.MaxCPU); err == nil {
			c.CPU = &rc
		}
	}
	if kind != v1alpha1.WorkloadDaemonSet && !m.autoscaled() {
		if r, err := manage.ParseReplicas(m.replicas.Value()); err == nil && strings.TrimSpace(m.replicas.Value()) != "" {
			if !m.editing() || m.orig.Spec.Workload.Replicas == nil || *m.orig.Spec.Workload.Replicas != r {
				c.Replicas = &r
			}
		}
	}
	img := strings.TrimSpace(m.image.Value())
	if (!m.editing() && img != "") || (m.editing() && img != m.orig.Spec.Image) {
		c.Image = &img
	}
	return c
}

// storageChange is the storage a create, or an edit to a StatefulSet, sets.
func (m *formModel) storageChange() *manage.StorageChange {
	if m.kind() != v1alpha1.WorkloadStatefulSet || m.storageFixed() {
		return nil
	}
	var sc manage.StorageChange
	if q, remove, err := manage.ParseStorageSize(m.storageSize.Value()); err == nil && !remove {
		sc.Size = &q
	}
	if class := strings.TrimSpace(m.storageClass.Value()); class != "" {
		sc.Class = &class
	}
	if sc.Size == nil && sc.Class == nil {
		return nil
	}
	return &sc
}

type autoscalingInput struct {
	f    field
	flag string
	in   *textinput.Model
}

// autoscalingInputs are the autoscaling settings shown now, named by the
// flags of pipeline create and update.
func (m *formModel) autoscalingInputs() []autoscalingInput {
	if m.kind() != v1alpha1.WorkloadDeployment {
		return nil
	}
	return []autoscalingInput{{fMinReplicas, "min-replicas", &m.minReplicas}, {fMaxReplicas, "max-replicas", &m.maxReplicas}, {fTargetCPU, "target-cpu", &m.target}}
}

// autoscalingChange is what the autoscaling settings change: all of them
// for a create; for an edit, those that differ (a cleared minimum or
// target goes back to its default, a cleared maximum is refused as
// missing), or the autoscaling's removal when all are cleared.
func (m *formModel) autoscalingChange() *manage.AutoscalingChange {
	ins := m.autoscalingInputs()
	if ins == nil {
		return nil
	}
	var orig *v1alpha1.AutoscalingSpec
	if m.editing() && m.orig.Spec.WorkloadKind() == v1alpha1.WorkloadDeployment {
		orig = m.orig.Spec.Workload.Autoscaling
	}
	if !m.autoscaled() {
		if orig != nil {
			return &manage.AutoscalingChange{Remove: true}
		}
		return nil
	}
	var ac manage.AutoscalingChange
	var old [3]*int32
	if orig != nil {
		old = [3]*int32{orig.MinReplicas, &orig.MaxReplicas, orig.TargetCPUUtilizationPercentage}
	}
	defaults := [3]int32{1, 0, v1alpha1.DefaultTargetCPUUtilization}
	for i, dst := range []**int32{&ac.Min, &ac.Max, &ac.TargetCPU} {
		var v *int32
		if n, err := manage.ParseAutoscaling(ins[i].flag, ins[i].in.Value()); err == nil {
			v = &n
		}
		switch {
		case orig == nil:
			*dst = v
		case v == nil && old[i] != nil:
			d := defaults[i]
			*dst = &d
		case v != nil && (old[i] == nil || *old[i] != *v):
			*dst = v
		}
	}
	if ac.Min == nil && ac.Max == nil && ac.TargetCPU == nil && orig != nil {
		return nil
	}
	return &ac
}

func samePorts(a, b []v1alpha1.PipelinePort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if pipeline.Key(a[i]) != pipeline.Key(b[i]) || a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

const labelWidth = 16

// View implements page.
func (m *formModel) View() string {
	st := m.st
	var b strings.Builder
	title := "Create a pipeline in namespace " + m.namespace
	if m.editing() {
		title = "Edit pipeline " + m.orig.Name + " (namespace " + m.namespace + ")"
	}
	b.WriteString(st.Title.Render(title) + "\n\n")
	label := func(f field, text string) {
		mark := "  "
		style := st.Label
		if m.focus == f {
			mark = st.Cursor.Render(st.marker("> ", "▸ "))
			style = st.Focused
		}
		b.WriteString(mark + style.Render(pad(text, labelWidth-2)))
	}
	fieldErr := func(f field) {
		if e := m.errs[f]; e != "" && f != fPorts {
			b.WriteString(st.errorBlock(e, m.width, strings.Repeat(" ", labelWidth)))
		}
	}
	choice := func(p picker) string {
		return st.marker("< ", "‹ ") + p.value() + st.marker(" >", " ›")
	}
	if m.editing() {
		label(fName, "Name")
		b.WriteString(m.orig.Name + st.Dim.Render("  (cannot change)") + "\n")
		label(fInstance, "Instance")
		b.WriteString(m.orig.Spec.Instance + st.Dim.Render("  (cannot change)") + "\n")
	} else {
		label(fName, "Name")
		b.WriteString(m.name.View() + "\n")
		fieldErr(fName)
		label(fInstance, "Instance")
		b.WriteString(choice(m.instance) + "\n")
		fieldErr(fInstance)
	}
	label(fConfig, "Configuration")
	b.WriteString(m.configPath.View() + "\n")
	indent := strings.Repeat(" ", labelWidth)
	note := "none yet: enter a path, or ctrl+e to write one in $EDITOR"
	if m.config != nil {
		note = fmt.Sprintf("%s, %d bytes, %s", m.config.Format, len(m.config.Content), m.configNote)
	}
	b.WriteString(indent + st.Dim.Render(note) + "\n")
	fieldErr(fConfig)
	label(fAutoPorts, "Auto ports")
	box := "[ ]"
	if m.autoPorts {
		box = "[x]"
	}
	b.WriteString(box + " add the ports the configuration's plugins listen on\n")
	if len(m.detected) > 0 {
		parts := make([]string, len(m.detected))
		for i, d := range m.detected {
			parts[i] = d.Port.String() + " (" + d.Source + ")"
		}
		b.WriteString(indent + st.Dim.Render("detected: "+strings.Join(parts, ", ")) + "\n")
	}
	for _, w := range m.warnings {
		b.WriteString(indent + st.Warn.Render(w) + "\n")
	}
	label(fPorts, "Ports")
	b.WriteString(m.ports.view(labelWidth))
	label(fService, "Service type")
	b.WriteString(choice(m.service) + st.Dim.Render("  applies to every port") + "\n")
	label(fWorkload, "Workload")
	b.WriteString(choice(m.workload) + "\n")
	label(fReplicas, "Replicas")
	switch {
	case m.kind() == v1alpha1.WorkloadDaemonSet:
		b.WriteString(st.Dim.Render("one pod per node (DaemonSet)") + "\n")
	case m.autoscaled():
		b.WriteString(st.Dim.Render("set by the autoscaler: replicas and autoscaling exclude each other") + "\n")
	default:
		b.WriteString(m.replicas.View() + "\n")
	}
	fieldErr(fReplicas)
	text := func(f field, name string, in *textinput.Model) {
		label(f, name)
		b.WriteString(in.View() + "\n")
		fieldErr(f)
	}
	switch m.kind() {
	case v1alpha1.WorkloadStatefulSet:
		if m.storageFixed() {
			fixed := st.Dim.Render("  (cannot change: fixed once the StatefulSet exists)")
			label(fStorageSize, "Storage")
			sto := m.orig.Spec.Workload.Storage
			if sto == nil {
				b.WriteString("none" + st.Dim.Render("  (cannot add: fixed once the StatefulSet exists)") + "\n")
				break
			}
			b.WriteString(sto.Size.String() + fixed + "\n")
			class := sto.StorageClassName
			if class == "" {
				class = "cluster default"
			}
			label(fStorageClass, "Storage class")
			b.WriteString(class + fixed + "\n")
		} else {
			text(fStorageSize, "Storage", &m.storageSize)
			text(fStorageClass, "Storage class", &m.storageClass)
		}
	case v1alpha1.WorkloadDeployment:
		text(fMinReplicas, "Min replicas", &m.minReplicas)
		text(fMaxReplicas, "Max replicas", &m.maxReplicas)
		text(fTargetCPU, "Target CPU %", &m.target)
	}
	text(fCPU, "CPU", &m.cpu)
	label(fImage, "Image")
	b.WriteString(m.image.View() + "\n\n")

	verb := "Create"
	if m.editing() {
		verb = "Save"
	}
	btn := st.Button.Render("[ " + verb + " ]")
	if m.focus == fSubmit {
		btn = st.ButtonFocused.Render("[ " + verb + " ]")
	}
	b.WriteString("  " + btn)
	switch {
	case m.saving:
		b.WriteString(st.Dim.Render("  saving…"))
	case !m.valid():
		b.WriteString(st.Dim.Render("  fix the errors to save"))
	}
	b.WriteString("\n")
	for _, p := range m.problems {
		b.WriteString(st.errorBlock(p, m.width, ""))
	}
	if m.saveErr != "" {
		b.WriteString(st.errorBlock(m.saveErr, m.width, ""))
	}
	return b.String()
}

func asInvalid(err error, target **manage.InvalidError) bool { return errors.As(err, target) }
