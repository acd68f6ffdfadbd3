package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kfield "k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

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
	assert.Equal(t, fCPU, m.form.focus, "replicas, storage and autoscaling are skipped for a DaemonSet")
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

// tabsFrom lists the fields tab visits after the focused one, up to the image.
func tabsFrom(t *testing.T, m Model) (Model, []field) {
	t.Helper()
	var seen []field
	for range numFields {
		m = feed(t, m, keyMsg("tab"))
		seen = append(seen, m.form.focus)
		if m.form.focus == fImage {
			return m, seen
		}
	}
	t.Fatalf("tab never reached the image: %v", seen)
	return m, nil
}

// toWorkload moves the focus to the workload picker and chooses kind.
func toWorkload(t *testing.T, m Model, kind v1alpha1.WorkloadKind) Model {
	t.Helper()
	for m.form.focus != fWorkload {
		m = feed(t, m, keyMsg("tab"))
	}
	for m.form.kind() != kind {
		m = feed(t, m, keyMsg("right"))
	}
	return m
}

// Storage is a StatefulSet's, autoscaling a Deployment's: the form shows
// and focuses each only with its kind.
func TestFormFieldsPerKind(t *testing.T) {
	m := formAt(t, emptyCluster(t))
	m = typeInto(t, m, "k")
	m = toWorkload(t, m, v1alpha1.WorkloadDeployment)
	_, order := tabsFrom(t, m)
	assert.Equal(t, []field{fReplicas, fMinReplicas, fMaxReplicas, fTargetCPU, fCPU, fImage}, order)
	v := m.View().Content
	assert.Contains(t, v, "Max replicas")
	assert.Contains(t, v, "Target CPU %")
	assert.NotContains(t, v, "Storage")

	m = toWorkload(t, m, v1alpha1.WorkloadStatefulSet)
	_, order = tabsFrom(t, m)
	assert.Equal(t, []field{fReplicas, fStorageSize, fStorageClass, fCPU, fImage}, order)
	v = m.View().Content
	assert.Contains(t, v, "Storage class")
	assert.NotContains(t, v, "Max replicas")

	m = toWorkload(t, m, v1alpha1.WorkloadDaemonSet)
	_, order = tabsFrom(t, m)
	assert.Equal(t, []field{fCPU, fImage}, order)
	v = m.View().Content
	assert.NotContains(t, v, "Storage")
	assert.NotContains(t, v, "Max replicas")

	// Autoscaling hides the replicas, which it sets.
	m = toWorkload(t, m, v1alpha1.WorkloadDeployment)
	m = feed(t, m, keyMsg("tab"))
	m = typeInto(t, m, "3")
	for m.form.focus != fMaxReplicas {
		m = feed(t, m, keyMsg("tab"))
	}
	m = typeInto(t, m, "4")
	assert.False(t, m.form.focusable(fReplicas))
	assert.Contains(t, m.View().Content, "set by the autoscaler: replicas and autoscaling exclude each other")
	assert.Nil(t, m.form.change().Replicas, "the replicas typed before are not sent")
	assert.Contains(t, m.form.problems, "autoscaling needs a cpu request (--cpu, such as --cpu 100m): the autoscaler's target is a percentage of it")
}

// A size outside the CRD's bounds, or not a size, is refused as typed.
func TestFormRefusesABadStorageSize(t *testing.T) {
	api := emptyCluster(t)
	m := formAt(t, api)
	m = typeInto(t, m, "buf")
	m = toWorkload(t, m, v1alpha1.WorkloadStatefulSet)
	m = feed(t, m, keyMsg("tab"), keyMsg("tab"))
	require.Equal(t, fStorageSize, m.form.focus)
	m = typeInto(t, m, "lots")
	assert.Equal(t, `--storage-size "lots": not a size such as 5Gi or 500Mi`, m.form.errs[fStorageSize])
	m = feed(t, m, keyMsg("ctrl+u"))
	m = typeInto(t, m, "500Ki")
	assert.Equal(t, "--storage-size 500Ki: must be at least 1Mi and at most 64Ti", m.form.errs[fStorageSize])
	assert.False(t, m.form.valid())
	requireScreen(t, m.View().Content)
	next, cmd := m.Update(keyMsg("ctrl+s"))
	m = next.(Model)
	assert.Nil(t, cmd, "nothing is sent")
	assert.Nil(t, api.Pipeline("buf"))

	// A class alone is not storage: manage says what is missing.
	m = feed(t, m, keyMsg("ctrl+u"), keyMsg("tab"))
	m = typeInto(t, m, "fast")
	assert.Empty(t, m.form.errs)
	assert.Contains(t, m.form.problems, "storage needs a size (--storage-size, such as 5Gi)")
}

// saveForm presses ctrl+s and runs what it starts.
func saveForm(t *testing.T, m Model) Model {
	t.Helper()
	next, cmd := m.Update(keyMsg("ctrl+s"))
	m = next.(Model)
	require.NotNil(t, cmd, "errs %v problems %v", m.form.errs, m.form.problems)
	return feed(t, m, cmd())
}

func TestFormCreatesStorageAndAutoscaling(t *testing.T) {
	api := emptyCluster(t)
	m := formAt(t, api)
	m = typeInto(t, m, "buf")
	m = toWorkload(t, m, v1alpha1.WorkloadStatefulSet)
	m = feed(t, m, keyMsg("tab"), keyMsg("tab"))
	m = typeInto(t, m, "5Gi")
	m = feed(t, m, keyMsg("tab"))
	m = typeInto(t, m, "fast")
	m = saveForm(t, m)
	assert.Contains(t, m.View().Content, "pipeline buf created")
	p := api.Pipeline("buf")
	require.NotNil(t, p)
	require.NotNil(t, p.Spec.Workload.Storage)
	assert.Equal(t, "5Gi", p.Spec.Workload.Storage.Size.String())
	assert.Equal(t, "fast", p.Spec.Workload.Storage.StorageClassName)
	assert.Equal(t, v1alpha1.WorkloadStatefulSet, p.Spec.WorkloadKind())
	assert.Nil(t, p.Spec.Workload.Autoscaling)

	m = feed(t, m, keyMsg("esc"), keyMsg("n"))
	require.Equal(t, viewForm, m.view)
	m = typeInto(t, m, "web")
	m = toWorkload(t, m, v1alpha1.WorkloadDeployment)
	m = feed(t, m, keyMsg("tab"), keyMsg("tab"))
	require.Equal(t, fMinReplicas, m.form.focus)
	m = typeInto(t, m, "x")
	assert.Equal(t, `--min-replicas "x": want a whole number`, m.form.errs[fMinReplicas])
	m = feed(t, m, keyMsg("backspace"))
	m = typeInto(t, m, "5")
	m = feed(t, m, keyMsg("tab"))
	m = typeInto(t, m, "2")
	m = feed(t, m, keyMsg("tab"))
	m = typeInto(t, m, "2000")
	assert.Equal(t, "--target-cpu 2000: must be from 1 to 1000", m.form.errs[fTargetCPU])
	m = feed(t, m, keyMsg("backspace"), keyMsg("backspace"))
	assert.Empty(t, m.form.errs)
	m = feed(t, m, keyMsg("tab"))
	m = typeInto(t, m, "100m")
	assert.Equal(t, []string{"autoscaling: --min-replicas 5 is greater than --max-replicas 2"}, m.form.problems)
	m = feed(t, m, keyMsg("shift+tab"), keyMsg("shift+tab"), keyMsg("backspace"))
	m = typeInto(t, m, "6")
	m = saveForm(t, m)
	assert.Contains(t, m.View().Content, "pipeline web created")
	w := api.Pipeline("web")
	require.NotNil(t, w)
	a := w.Spec.Workload.Autoscaling
	require.NotNil(t, a)
	assert.Equal(t, v1alpha1.AutoscalingSpec{MinReplicas: ptr.To(int32(5)), MaxReplicas: 6, TargetCPUUtilizationPercentage: ptr.To(int32(20))}, *a)
	assert.Nil(t, w.Spec.Workload.Replicas)
	assert.Nil(t, w.Spec.Workload.Storage)
	assert.Equal(t, "100m", ptr.To(w.Spec.Resources.Requests[corev1.ResourceCPU]).String())
}

// bufferedCluster holds a StatefulSet pipeline with storage and an
// autoscaled Deployment.
func bufferedCluster(t *testing.T) *managetest.Memory {
	t.Helper()
	api := emptyCluster(t)
	cpu := resource.MustParse("100m")
	size := resource.MustParse("5Gi")
	for _, c := range []struct {
		name string
		ch   manage.PipelineChange
	}{
		{"s", manage.PipelineChange{WorkloadKind: ptr.To(v1alpha1.WorkloadStatefulSet), Storage: &manage.StorageChange{Size: &size, Class: ptr.To("fast")}}},
		{"w", manage.PipelineChange{CPU: &manage.ResourceChange{Request: &cpu},
			Autoscaling: &manage.AutoscalingChange{Min: ptr.To(int32(2)), Max: ptr.To(int32(6)), TargetCPU: ptr.To(int32(70))}}},
	} {
		_, err := api.CreatePipeline(context.Background(), manage.NewPipeline("tp", c.name, "core", c.ch), nil, manage.WriteOptions{})
		require.NoError(t, err)
	}
	return api
}

// An edit starts from the pipeline's storage and autoscaling; a
// StatefulSet's storage is shown but cannot change, as the CRD says.
func TestFormEditPrefillsStorageAndAutoscaling(t *testing.T) {
	api := bufferedCluster(t)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("e"))
	require.Equal(t, viewForm, m.view)
	require.Equal(t, "s", m.form.orig.Name)
	assert.Equal(t, "5Gi", m.form.storageSize.Value())
	assert.Equal(t, "fast", m.form.storageClass.Value())
	assert.False(t, m.form.focusable(fStorageSize), "fixed once the StatefulSet exists")
	assert.False(t, m.form.focusable(fStorageClass))
	assert.Contains(t, m.View().Content, "5Gi  (cannot change: fixed once the StatefulSet exists)")
	requireScreen(t, m.View().Content)
	for m.form.focus != fImage {
		m = feed(t, m, keyMsg("tab"))
	}
	m = typeInto(t, m, "fluent/fluent-bit:4.1")
	assert.Nil(t, m.form.change().Storage, "the storage is not sent")
	m = saveForm(t, m)
	s := api.Pipeline("s")
	assert.Equal(t, "fluent/fluent-bit:4.1", s.Spec.Image)
	assert.Equal(t, "5Gi", s.Spec.Workload.Storage.Size.String())

	m = feed(t, m, keyMsg("esc"), keyMsg("down"), keyMsg("e"))
	require.Equal(t, viewForm, m.view)
	require.Equal(t, "w", m.form.orig.Name)
	assert.Equal(t, []string{"2", "6", "70", "100m"},
		[]string{m.form.minReplicas.Value(), m.form.maxReplicas.Value(), m.form.target.Value(), m.form.cpu.Value()})
	assert.False(t, m.form.focusable(fReplicas))
	assert.True(t, m.form.change().IsEmpty(), "%+v", m.form.change())
	for m.form.focus != fMaxReplicas {
		m = feed(t, m, keyMsg("tab"))
	}
	m = feed(t, m, keyMsg("backspace"))
	m = typeInto(t, m, "10")
	ch := m.form.change()
	require.NotNil(t, ch.Autoscaling)
	assert.Equal(t, manage.AutoscalingChange{Max: ptr.To(int32(10))}, *ch.Autoscaling, "only the maximum changed")
	assert.Nil(t, ch.CPU)
	m = saveForm(t, m)
	assert.Equal(t, v1alpha1.AutoscalingSpec{MinReplicas: ptr.To(int32(2)), MaxReplicas: 10, TargetCPUUtilizationPercentage: ptr.To(int32(70))},
		*api.Pipeline("w").Spec.Workload.Autoscaling)

	// Clearing every setting removes the autoscaling; replicas come back.
	m = feed(t, m, keyMsg("e"))
	require.Equal(t, "w", m.form.orig.Name)
	for _, in := range []*textinput.Model{&m.form.minReplicas, &m.form.maxReplicas, &m.form.target} {
		in.SetValue("")
	}
	m.form.validate()
	assert.True(t, m.form.focusable(fReplicas))
	ch = m.form.change()
	require.NotNil(t, ch.Autoscaling)
	assert.True(t, ch.Autoscaling.Remove)
}
