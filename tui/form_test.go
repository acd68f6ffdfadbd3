package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kfield "k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

func typeText(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

const syslogConf = "[INPUT]\n    Name syslog\n    Mode udp\n    Port 5140\n"

func TestCreateThroughTheForm(t *testing.T) {
	api := emptyCluster(t)
	path := filepath.Join(t.TempDir(), "syslog.conf")
	require.NoError(t, os.WriteFile(path, []byte(syslogConf), 0o600))
	tm := start(t, api, options())
	waitFor(t, tm, "Press n to create one")

	send(tm, "n")
	waitFor(t, tm, "Create a pipeline in namespace tp")
	send(tm, typeText("syslog-in")...)
	send(tm, "tab", "tab") // instance (the only one) → configuration
	send(tm, typeText(path)...)
	send(tm, "tab") // loads the file
	waitFor(t, tm, "udp/5140 (inputs[0] syslog)")
	send(tm, "tab") // auto ports → ports
	send(tm, typeText("tcp/5170")...)
	send(tm, "enter")
	send(tm, typeText("metrics=tcp/2021")...)
	send(tm, "tab", "right", "tab", "tab") // ports → service (ClusterIP) → workload → replicas
	send(tm, "backspace")
	send(tm, typeText("2")...)
	send(tm, "ctrl+s")
	waitFor(t, tm, "pipeline syslog-in created")

	p := api.Pipeline("syslog-in")
	require.NotNil(t, p, "the pipeline exists")
	assert.Equal(t, "core", p.Spec.Instance)
	assert.Equal(t, []v1alpha1.PipelinePort{tcp(5170), {Protocol: v1alpha1.ProtocolTCP, Port: 2021, Name: "metrics"}}, p.Spec.Ports)
	assert.Equal(t, v1alpha1.ServiceTypeClusterIP, p.Spec.ServiceType)
	assert.Equal(t, int32(2), p.Spec.ReplicaCount())
	assert.Equal(t, v1alpha1.ConfigFormatClassic, p.Spec.Config.Format)
	assert.Equal(t, syslogConf, p.Spec.Config.Content)
	assert.True(t, p.Spec.AutoDetect())
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "Pipeline syslog-in")
}

// formAt opens the create form on a loaded model.
func formAt(t *testing.T, api *managetest.Memory) Model {
	t.Helper()
	m := loaded(t, api)
	m = feed(t, m, keyMsg("n"))
	require.Equal(t, viewForm, m.view)
	return m
}

func typeInto(t *testing.T, m Model, s string) Model {
	t.Helper()
	for _, k := range typeText(s) {
		m = feed(t, m, keyMsg(k))
	}
	return m
}

// The instances may arrive after the form opened (a quick n after start):
// its picker takes them instead of saying there is none.
func TestFormTakesInstancesLoadedLater(t *testing.T) {
	api := emptyCluster(t)
	m := feed(t, New(context.Background(), api, options()), tea.WindowSizeMsg{Width: screenW, Height: screenH},
		watchEventsMsg{events: []manage.PipelineEvent{{Type: manage.EventReset}}}, keyMsg("n"))
	require.Equal(t, viewForm, m.view)
	assert.Contains(t, m.form.errs[fInstance], "no core instance")
	inst, err := api.ListInstances(context.Background())
	require.NoError(t, err)
	m = feed(t, m, instancesMsg{items: inst})
	assert.Equal(t, "core", m.form.instance.value())
	assert.Empty(t, m.form.errs[fInstance])
	assert.Contains(t, m.View().Content, "< core >")
}

// Pasted text (a message of its own since Bubble Tea v2) lands in the
// focused field, the port line and the list's filter.
func TestPasteGoesWhereKeysAreTyped(t *testing.T) {
	m := formAt(t, emptyCluster(t))
	m = feed(t, m, tea.PasteMsg{Content: "pasted-name"})
	assert.Equal(t, "pasted-name", m.form.name.Value())
	assert.Empty(t, m.form.errs[fName])
	m = feed(t, m, keyMsg("ctrl+n"), tea.PasteMsg{Content: "udp/514"})
	assert.Equal(t, []string{"udp/514"}, m.form.ports.values())

	m = loaded(t, sampleCluster(t))
	m = feed(t, m, tea.PasteMsg{Content: "5140"})
	assert.Len(t, names(m), 4, "not filtering: a paste does nothing")
	m = feed(t, m, keyMsg("/"), tea.PasteMsg{Content: "5140"})
	assert.Equal(t, []string{"b"}, names(m))
}

func TestFormValidatesAsYouType(t *testing.T) {
	m := formAt(t, emptyCluster(t))
	assert.Contains(t, m.form.errs[fName], "name is required")

	m = typeInto(t, m, "Bad_")
	assert.Contains(t, m.form.errs[fName], `name "Bad_"`)
	for range 4 {
		m = feed(t, m, keyMsg("backspace"))
	}
	m = typeInto(t, m, "good")
	assert.Empty(t, m.form.errs[fName])

	m = feed(t, m, keyMsg("ctrl+n"))
	require.Equal(t, fPorts, m.form.focus, "ctrl+n jumps to the port list")
	m = typeInto(t, m, "tcp/80")
	m = feed(t, m, keyMsg("enter"))
	m = typeInto(t, m, "udp/80")
	m = feed(t, m, keyMsg("enter"))
	m = typeInto(t, m, "80")
	assert.Equal(t, "duplicate backend tcp/80: port 1 (tcp/80) and port 3 (80) both use it; each protocol/port may appear once in a pipeline (TCP and UDP may share a number)",
		m.form.ports.dup, "both entries are named")
	assert.False(t, m.form.valid())
	m = feed(t, m, keyMsg("enter"))
	m = typeInto(t, m, "tcp/99999")
	assert.Contains(t, m.form.ports.errs[3], `port "tcp/99999"`)
	requireScreen(t, m.View().Content)

	m = feed(t, m, keyMsg("ctrl+x"), keyMsg("ctrl+x"))
	assert.Empty(t, m.form.ports.dup)
	assert.True(t, m.form.valid(), "%v %v", m.form.errs, m.form.problems)
	assert.Equal(t, []string{"tcp/80", "udp/80"}, m.form.ports.values())
}

func TestFormDaemonSetHasNoReplicas(t *testing.T) {
	m := formAt(t, emptyCluster(t))
	m = typeInto(t, m, "ds")
	for range 6 { // name → … → workload
		m = feed(t, m, keyMsg("tab"))
	}
	require.Equal(t, fWorkload, m.form.focus)
	m = feed(t, m, keyMsg("right"))
	assert.Equal(t, string(v1alpha1.WorkloadDaemonSet), m.form.workload.value())
	m = feed(t, m, keyMsg("tab"))
	assert.Equal(t, fImage, m.form.focus, "replicas are skipped for a DaemonSet")
	ch := m.form.change()
	assert.Nil(t, ch.Replicas)
	assert.Contains(t, m.View().Content, "one pod per node (DaemonSet)")
}

func TestFormConfigProblems(t *testing.T) {
	api := emptyCluster(t)
	o := options()
	o.ReadFile = func(p string) ([]byte, error) {
		if p == "twice.conf" {
			return []byte("[INPUT]\n    Name forward\n[INPUT]\n    Name forward\n"), nil
		}
		return nil, os.ErrNotExist
	}
	tm := start(t, api, o)
	waitFor(t, tm, "Press n")
	send(tm, "n")
	send(tm, typeText("x")...)
	send(tm, "tab", "tab")
	send(tm, typeText("missing.conf")...)
	send(tm, "tab")
	waitFor(t, tm, "read missing.conf: file does not exist")
	send(tm, "shift+tab", "ctrl+u")
	send(tm, typeText("twice.conf")...)
	send(tm, "tab")
	waitFor(t, tm, "share a backend")
	fm := screen(t, tm)
	assert.Contains(t, fm, "inputs[0] forward (default port) tcp/24224 and inputs[1] forward (default port) tcp/24224\n  share a backend",
		"both plugins are named; long messages wrap")
	assert.Nil(t, api.Pipeline("x"), "nothing is created while the form has errors")
}

func TestEditKeepsTheServiceType(t *testing.T) {
	api := sampleCluster(t)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("down"), keyMsg("e"))
	require.Equal(t, viewForm, m.view)
	require.True(t, m.form.editing())
	assert.Equal(t, "NodePort", m.form.service.value(), "the form starts from the pipeline")
	assert.Equal(t, []string{"tcp/2200", "udp/5140"}, m.form.ports.values())
	requireScreen(t, m.View().Content)

	for m.form.focus != fImage {
		m = feed(t, m, keyMsg("tab"))
	}
	for range len("fluent/fluent-bit:4.0") {
		m = feed(t, m, keyMsg("backspace"))
	}
	m = typeInto(t, m, "fluent/fluent-bit:4.1")
	ch := m.form.change()
	assert.Nil(t, ch.ServiceType, "an edit of the image does not send the Service type")
	assert.Nil(t, ch.Ports)
	assert.Nil(t, ch.Config)
	require.NotNil(t, ch.Image)

	next, cmd := m.Update(keyMsg("ctrl+s"))
	m = next.(Model)
	require.NotNil(t, cmd)
	m = feed(t, m, cmd())
	assert.Equal(t, viewDetail, m.view)
	assert.Contains(t, m.View().Content, "pipeline b updated")
	b := api.Pipeline("b")
	assert.Equal(t, "fluent/fluent-bit:4.1", b.Spec.Image)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, b.Spec.ServiceType)
	assert.Equal(t, int64(2), b.Generation)
}

func TestFormShowsTheServersRejection(t *testing.T) {
	api := emptyCluster(t)
	gk := schema.GroupKind{Group: v1alpha1.Group, Kind: v1alpha1.KindPipeline}
	api.Fail(managetest.OpCreate, &manage.APIError{Op: `create pipeline "x"`, Reason: "Invalid", Code: 422,
		Message: `Pipeline.telemetry.tpctl.dev "x" is invalid: spec.image: Invalid value: "": image is not allowed`,
		Err:     apierrors.NewInvalid(gk, "x", kfield.ErrorList{kfield.Invalid(kfield.NewPath("spec", "image"), "", "image is not allowed")})})
	m := formAt(t, api)
	m = typeInto(t, m, "x")
	next, cmd := m.Update(keyMsg("ctrl+s"))
	m = next.(Model)
	require.NotNil(t, cmd)
	assert.True(t, m.form.saving)
	m = feed(t, m, cmd())
	assert.Equal(t, viewForm, m.view, "the form stays open")
	assert.False(t, m.form.saving)
	assert.Contains(t, m.View().Content, `the API server refused it (Invalid, 422)`)
	requireScreen(t, m.View().Content)

	api.Fail(managetest.OpCreate, nil)
	m = feed(t, m, keyMsg("esc"))
	assert.Equal(t, viewList, m.view)
	assert.Contains(t, m.View().Content, "nothing saved")
	list, err := api.ListPipelines(context.Background())
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestFormEditor(t *testing.T) {
	api := emptyCluster(t)
	o := options()
	// The "editor" replaces the file it is given with a configuration.
	o.Editor = []string{"sh", "-c", `printf '[INPUT]\n    Name tcp\n    Port 6000\n' > "$1"`, "editor"}
	tm := start(t, api, o)
	waitFor(t, tm, "Press n")
	send(tm, "n")
	send(tm, typeText("edited")...)
	send(tm, "ctrl+e")
	waitFor(t, tm, "classic, 35 bytes, edited", "tcp/6000 (inputs[0] tcp)")
	send(tm, "ctrl+s")
	waitFor(t, tm, "pipeline edited created")
	p := api.Pipeline("edited")
	require.NotNil(t, p)
	assert.Equal(t, "[INPUT]\n    Name tcp\n    Port 6000\n", p.Spec.Config.Content)
	assert.Equal(t, v1alpha1.ConfigFormatClassic, p.Spec.Config.Format)
	assert.True(t, strings.HasPrefix(editorCommand(func(k string) string {
		return map[string]string{"EDITOR": "code -w"}[k]
	})[0], "code"))
	assert.Equal(t, []string{"vi"}, editorCommand(func(string) string { return "" }))
}
