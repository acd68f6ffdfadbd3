package tui

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

// Screens are compared with testdata/<TestName>.golden (go test -update
// rewrites them), drawn without colours at a fixed size.
const (
	screenW = 100
	screenH = 30
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// plain are the colours of a terminal without any: screens are plain text,
// what a dumb terminal shows.
var plain = &Colours{Profile: colorprofile.ASCII, Dark: true}

func now() time.Time { return t0.Add(10 * time.Minute) }

func tcp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
}
func udp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: n}
}

// ready marks p Ready with all replicas.
func ready(p *v1alpha1.Pipeline) {
	p.Status.ReadyReplicas = p.Spec.ReplicaCount()
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonAvailable, Message: "all pods ready", ObservedGeneration: p.Generation, LastTransitionTime: metav1.NewTime(t0)})
}

// emptyCluster has a core instance and no pipelines; its fake operator
// assigns frontends like the real one for explicit ports.
func emptyCluster(t testing.TB) *managetest.Memory {
	t.Helper()
	m := managetest.NewMemory("tp")
	m.Now = func() time.Time { return t0 }
	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core"},
		Spec: v1alpha1.CoreInstanceSpec{HTTPSProxy: "http://proxy.test:3128", NoProxy: "localhost,.svc"},
		Status: v1alpha1.CoreInstanceStatus{PipelineCount: 3, FrontendPorts: []v1alpha1.FrontendPort{
			{Protocol: "TCP", Port: 2200, Pipeline: "a", Backend: 2200}, {Protocol: "TCP", Port: 2201, Pipeline: "b", Backend: 2200}}}})
	m.Assign = m.AssignAsOperator(nil)
	return m
}

// sampleCluster holds the seed's reassignment example: a has tcp/2200, b
// asked for tcp/2200 later and got frontend 2201; plus a health-check
// pipeline and one the operator has not reached yet.
func sampleCluster(t testing.TB) *managetest.Memory {
	t.Helper()
	m := emptyCluster(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ch   manage.PipelineChange
	}{
		{"a", manage.PipelineChange{Ports: &[]v1alpha1.PipelinePort{tcp(2200)}, ServiceType: ptr.To(v1alpha1.ServiceTypeLoadBalancer)}},
		{"b", manage.PipelineChange{Ports: &[]v1alpha1.PipelinePort{tcp(2200), udp(5140)}, ServiceType: ptr.To(v1alpha1.ServiceTypeNodePort),
			WorkloadKind: ptr.To(v1alpha1.WorkloadStatefulSet), Replicas: ptr.To(int32(2)), Image: ptr.To("fluent/fluent-bit:4.0"),
			Config: &v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic, Content: "[INPUT]\n    Name syslog\n    Mode udp\n    Port 5140\n"}}},
	} {
		_, err := m.CreatePipeline(ctx, manage.NewPipeline("tp", c.name, "core", c.ch), nil, manage.WriteOptions{})
		require.NoError(t, err)
	}
	a, b := m.Pipeline("a"), m.Pipeline("b")
	ready(a)
	b.Status.ReadyReplicas = 1
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonProgressing, Message: "1/2 pod(s) ready, rolling out", ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(t0)})
	m.AddPipeline(a)
	m.AddPipeline(b)
	health := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "core-health", Generation: 1,
		Labels: map[string]string{v1alpha1.LabelRole: v1alpha1.RoleHealthCheck}},
		Spec: v1alpha1.PipelineSpec{Instance: "core", Ports: []v1alpha1.PipelinePort{{Protocol: "TCP", Port: 2020, Name: "health"}}}}
	m.AssignAsOperator(nil)(health)
	ready(health)
	m.AddPipeline(health)
	m.AddPipeline(&v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "new", Generation: 1},
		Spec: v1alpha1.PipelineSpec{Instance: "core", Ports: []v1alpha1.PipelinePort{tcp(5170)}, Workload: v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadDaemonSet}}})
	m.SetEndpoints("b", []manage.Endpoint{
		{Protocol: "TCP", Frontend: 2201, Backend: 2200, Reassigned: true, ServiceType: "NodePort", Address: "192.0.2.1:30201", NodePort: 30201},
		{Protocol: "UDP", Frontend: 5140, Backend: 5140, ServiceType: "NodePort", Address: "192.0.2.1:30140", NodePort: 30140},
	})
	m.SetEvents(v1alpha1.KindPipeline, "b", []manage.Event{
		{Type: "Normal", Reason: "Reassigned", Message: "frontend tcp/2200 → 2201: tcp/2200 is held by pipeline a ports[0]", Count: 1, Last: t0.Add(-2 * time.Minute)},
		{Type: "Warning", Reason: "Unavailable", Message: "0/2 pod(s) ready", Count: 3, Last: t0.Add(-time.Hour)},
	})
	return m
}

func options() Options {
	return Options{Now: now, Editor: []string{"false"}, Colours: plain}
}

// term is a test program, every frame its model drew and every byte it
// wrote to the terminal so far.
type term struct {
	*teatest.TestModel
	frames *frames
	drawn  bytes.Buffer
}

// frames keep every view a model drew. The program writes only the cells
// that changed, so the terminal's bytes need not hold a text whole; the
// frames do.
type frames struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (f *frames) contains(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Contains(f.buf.Bytes(), []byte(s))
}

func (f *frames) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

// recorder is a model that keeps the frames of the model it wraps.
type recorder struct {
	tea.Model
	frames *frames
}

func (r recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.Model.Update(msg)
	r.Model = m
	return r, cmd
}

func (r recorder) View() tea.View {
	v := r.Model.View()
	r.frames.mu.Lock()
	r.frames.buf.WriteString(v.Content + "\n")
	r.frames.mu.Unlock()
	return v
}

// start runs the manager in a test program at the fixed size.
func start(t *testing.T, api manage.API, o Options) *term {
	t.Helper()
	f := &frames{}
	tm := teatest.NewTestModel(t, recorder{Model: New(t.Context(), api, o), frames: f}, teatest.WithInitialTermSize(screenW, screenH))
	t.Cleanup(func() { _ = tm.Quit() })
	return &term{TestModel: tm, frames: f}
}

// waitFor waits until every part has been drawn (now or earlier: one
// frame may not hold them all). The terminal's bytes are kept in drawn.
func waitFor(t *testing.T, tm *term, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 64<<10)
	for {
		for {
			n, _ := tm.Output().Read(buf)
			if n == 0 {
				break
			}
			tm.drawn.Write(buf[:n])
		}
		missing := ""
		for _, p := range parts {
			if !tm.frames.contains(p) {
				missing = p
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not drawn within 10s; drawn so far:\n%s", missing, tm.frames.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// screen quits the program and returns the last screen it drew.
func screen(t *testing.T, tm *term) string {
	t.Helper()
	tm.Send(keyMsg("ctrl+c"))
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second))
	return fm.View().Content
}

// requireScreen compares a screen with its golden file and checks its size.
func requireScreen(t *testing.T, s string) {
	t.Helper()
	lines := strings.Split(s, "\n")
	require.Len(t, lines, screenH, "a screen fills the terminal's height")
	for i, l := range lines {
		require.LessOrEqual(t, lipgloss.Width(l), screenW, "line %d is wider than the terminal: %q", i+1, l)
	}
	golden.RequireEqual(t, []byte(s))
}

func keyMsg(s string) tea.KeyPressMsg {
	special := map[string]tea.KeyPressMsg{
		"enter":     {Code: tea.KeyEnter},
		"esc":       {Code: tea.KeyEscape},
		"tab":       {Code: tea.KeyTab},
		"shift+tab": {Code: tea.KeyTab, Mod: tea.ModShift},
		"up":        {Code: tea.KeyUp},
		"down":      {Code: tea.KeyDown},
		"left":      {Code: tea.KeyLeft},
		"right":     {Code: tea.KeyRight},
		"space":     {Code: tea.KeySpace, Text: " "},
		"backspace": {Code: tea.KeyBackspace},
	}
	if k, ok := special[s]; ok {
		return k
	}
	if c, ok := strings.CutPrefix(s, "ctrl+"); ok {
		return tea.KeyPressMsg{Code: []rune(c)[0], Mod: tea.ModCtrl}
	}
	r := []rune(s)
	return tea.KeyPressMsg{Code: r[0], Text: s}
}

// send types keys one by one.
func send(tm *term, keys ...string) {
	for _, k := range keys {
		tm.Send(keyMsg(k))
	}
}

func lipglossWidth(s string) int { return lipgloss.Width(s) }

// managetestAssign gives p's ports frontends as the operator does in an
// instance where nothing else holds any.
func managetestAssign(p *v1alpha1.Pipeline) {
	m := managetest.NewMemory("tp")
	m.Now = func() time.Time { return t0 }
	m.AssignAsOperator(nil)(p)
}
