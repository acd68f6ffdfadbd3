package operator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

func member(name string, created time.Time, ports ...v1alpha1.PipelinePort) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tp", Generation: 1, CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.PipelineSpec{Instance: "core", Ports: ports, AutoDetectPorts: ptr.To(false)},
	}
}

func tcp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
}

// feedBack stores each plan's wanted status in its pipeline, as the API
// server would after the write.
func feedBack(plans []*portPlan) {
	for _, pl := range plans {
		pl.p.Status.Ports = pl.want.Ports
		pl.p.Status.PortSummary = pl.want.PortSummary
		meta.SetStatusCondition(&pl.p.Status.Conditions, pl.want.Conditions[0])
	}
}

func byName(plans []*portPlan) map[string]*portPlan {
	out := map[string]*portPlan{}
	for _, pl := range plans {
		out[pl.p.Name] = pl
	}
	return out
}

func TestPlanSeedReassignment(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{Reserved: pipeline.NewPortSet(pipeline.TCP(6443))}
	inst := testInstance()
	a := member("a", t0, tcp(2200))
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{a}, r.Reserved, t0)
	feedBack(plans)

	// B and C arrive later, at the same moment: B wins the tie by name.
	b := member("b", t0.Add(time.Minute), tcp(2200))
	c := member("c", t0.Add(time.Minute), tcp(2200))
	members := []*v1alpha1.Pipeline{c, a, b}
	plans, assigned := r.plan(inst, members, r.Reserved, t0.Add(time.Minute))
	got := byName(plans)
	assert.Equal(t, int32(2200), got["a"].want.Ports[0].Frontend, "the older pipeline never moves")
	assert.Equal(t, int32(2201), got["b"].want.Ports[0].Frontend)
	assert.Equal(t, int32(2200), got["b"].want.Ports[0].Backend, "the backend stays")
	assert.True(t, got["b"].want.Ports[0].Reassigned)
	assert.Equal(t, int32(2202), got["c"].want.Ports[0].Frontend)
	assert.Equal(t, "tcp/2201->2200", got["b"].want.PortSummary)
	cond := got["b"].want.Conditions[0]
	assert.Equal(t, v1alpha1.ReasonReassigned, cond.Reason)
	assert.Contains(t, cond.Message, "held by pipeline a")
	assert.Equal(t, int64(1), cond.ObservedGeneration)
	assert.Len(t, assigned, 3)
	feedBack(plans)

	// Nothing changes on the next pass: statuses are stable.
	plans, _ = r.plan(inst, members, r.Reserved, t0.Add(time.Hour))
	for _, pl := range plans {
		assert.True(t, unchanged(pl), "pipeline %s would be rewritten", pl.p.Name)
	}

	// A goes away: B and C keep their frontends.
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{b, c}, r.Reserved, t0.Add(2*time.Hour))
	got = byName(plans)
	assert.Equal(t, int32(2201), got["b"].want.Ports[0].Frontend)
	assert.Equal(t, int32(2202), got["c"].want.Ports[0].Frontend)
}

func TestPlanReservedAndHealthCheck(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{Reserved: pipeline.NewPortSet(pipeline.TCP(6443))}
	inst := testInstance()
	inst.UID = "inst-uid"
	hc := member(HealthCheckPipelineName("core"), t0, v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: 2020, Name: "health"})
	hc.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CoreInstance",
		Name: "core", UID: "inst-uid", Controller: ptr.To(true)}}
	p := member("p", t0, tcp(2020), tcp(6443), v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: 2020})
	plans, assigned := r.plan(inst, []*v1alpha1.Pipeline{hc, p}, r.Reserved, t0)
	got := byName(plans)

	require.Len(t, got["core-health"].want.Ports, 1)
	assert.Equal(t, v1alpha1.PortStatus{Protocol: v1alpha1.ProtocolTCP, Frontend: 2020, Backend: 2020, Name: "health",
		Since: metav1.NewTime(t0), Source: "healthCheck.port"}, got["core-health"].want.Ports[0])
	ports := got["p"].want.Ports
	require.Len(t, ports, 3)
	assert.Equal(t, int32(2021), ports[0].Frontend, "tcp/2020 is the health check's")
	assert.Equal(t, int32(6444), ports[1].Frontend, "tcp/6443 is the node's")
	assert.Equal(t, int32(2020), ports[2].Frontend, "udp/2020 is free: TCP and UDP are independent")
	assert.Len(t, assigned, 3, "the health check is not a claimant")

	inst.Spec.HealthCheck.Enabled = ptr.To(false)
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{member("q", t0, tcp(2020))}, r.Reserved, t0)
	assert.Equal(t, int32(2020), plans[0].want.Ports[0].Frontend, "a disabled health check reserves nothing")
}

func TestPlanInvalidAndExhausted(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{Reserved: pipeline.NewPortSet(pipeline.TCP(65535))}
	inst := testInstance()
	dup := member("dup", t0, tcp(80), tcp(80))
	bad := member("bad", t0)
	bad.Spec.AutoDetectPorts = nil
	bad.Spec.Config = v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic, Content: "[INPUT]\n  Name tcp\n  Port ${MISSING}\n"}
	full := member("full", t0, tcp(65535))
	none := member("none", t0)
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{dup, bad, full, none}, r.Reserved, t0)
	got := byName(plans)

	c := got["dup"].want.Conditions[0]
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, v1alpha1.ReasonInvalidPorts, c.Reason)
	assert.Empty(t, got["dup"].want.Ports, "an invalid pipeline gets no ports")

	c = got["bad"].want.Conditions[0]
	assert.Equal(t, v1alpha1.ReasonInvalidConfig, c.Reason)
	assert.Contains(t, c.Message, "MISSING")

	c = got["full"].want.Conditions[0]
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, v1alpha1.ReasonPortsExhausted, c.Reason)
	require.Len(t, got["full"].want.Ports, 1)
	assert.Zero(t, got["full"].want.Ports[0].Frontend, "no wrap-around past 65535")

	c = got["none"].want.Conditions[0]
	assert.Equal(t, metav1.ConditionTrue, c.Status)
	assert.Equal(t, v1alpha1.ReasonNoPorts, c.Reason)
}

func TestWithTransition(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
	kept := withTransition(prev, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "X"}, t0.Add(time.Hour))
	assert.Equal(t, t0, kept.LastTransitionTime.Time.UTC())
	moved := withTransition(prev, metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "X"}, t0.Add(time.Hour))
	assert.Equal(t, t0.Add(time.Hour), moved.LastTransitionTime.Time.UTC())
}

func TestHealthCheckPipeline(t *testing.T) {
	inst := testInstance()
	inst.Spec.HealthCheck.Port = 2999
	inst.Spec.HealthCheck.ServiceType = v1alpha1.ServiceTypeNodePort
	u := HealthCheckPipeline(inst)
	p := &v1alpha1.Pipeline{}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p))
	assert.Equal(t, "core-health", p.Name)
	assert.True(t, metav1.IsControlledBy(p, inst))
	assert.Equal(t, RoleHealthCheck, p.Labels[LabelRole])
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, p.Spec.ServiceType)
	assert.Contains(t, p.Spec.Config.Content, "http_port: 2999")
	res, err := pipeline.ResolvePorts(&p.Spec)
	require.NoError(t, err, "the health-check pipeline must pass the API's own validation")
	require.Len(t, res.Ports, 1)
	assert.Equal(t, pipeline.TCP(2999), res.Ports[0].Port)
	assert.True(t, isHealthCheck(p, inst))
	assert.False(t, isHealthCheck(member("core-health", time.Time{}), inst), "a same-named pipeline the instance does not control")

	assert.True(t, healthUpToDate(p, inst), "freshly built: nothing to apply")
	inst.Spec.HealthCheck.Port = 3000
	assert.False(t, healthUpToDate(p, inst), "port changed")
	inst.Spec.HealthCheck.Port = 2999
	p.Spec.Image = "admin/choice:1"
	assert.True(t, healthUpToDate(p, inst), "fields the operator does not set are the administrator's")
	inst.Spec.HealthCheck.Enabled = ptr.To(false)
	assert.False(t, healthUpToDate(p, inst), "disabled: the pipeline must go")
}

func TestNodeReservedPorts(t *testing.T) {
	set, err := DefaultReservedPorts()
	require.NoError(t, err)
	assert.True(t, set.Has(pipeline.TCP(6443)), "API server")
	assert.True(t, set.Has(pipeline.TCP(10250)), "kubelet")
	assert.True(t, set.Has(pipeline.UDP(8472)), "flannel VXLAN, the default CNI")
	assert.False(t, set.Has(pipeline.TCP(10248)), "loopback-only rows do not clash with Services")
	assert.False(t, set.Has(pipeline.TCP(2379)), "etcd rows apply only with datastore=etcd")

	withEtcd, err := ReservedPorts([]string{"datastore=etcd"}, nil, []string{"udp/9999", "tcp/2020"})
	require.NoError(t, err)
	assert.True(t, withEtcd.Has(pipeline.TCP(2379)))
	assert.True(t, withEtcd.Has(pipeline.TCP(2380)), "ranges are expanded")
	assert.True(t, withEtcd.Has(pipeline.UDP(9999)))
	assert.False(t, withEtcd.Has(pipeline.TCP(80)), "no packaged component named")
	_, err = ReservedPorts(nil, nil, []string{"x=tcp/1"})
	assert.Error(t, err)

	withTraefik, err := ReservedPorts(nil, []string{"traefik"}, []string{"tcp/9100"})
	require.NoError(t, err)
	assert.Equal(t, pipeline.Hold{By: "Traefik (packaged K3s component)"}, withTraefik[pipeline.TCP(80)])
	assert.Equal(t, pipeline.Hold{By: "Traefik (packaged K3s component)"}, withTraefik[pipeline.TCP(443)])
	assert.Equal(t, pipeline.Hold{By: "the K3s node (kubelet)"}, withTraefik[pipeline.TCP(10250)])
	assert.Equal(t, pipeline.Hold{By: "the operator's --reserve list"}, withTraefik[pipeline.TCP(9100)])
	_, err = ReservedPorts(nil, []string{"nginx"}, nil)
	assert.ErrorContains(t, err, `packaged component "nginx"`)

	// What the installer passes: the program serving the port is named.
	withHost, err := ReservedPorts(nil, nil, []string{"tcp/22=sshd", "udp/53=dnsmasq"})
	require.NoError(t, err)
	assert.Equal(t, pipeline.Hold{By: "host program sshd (serves it on the node)"}, withHost[pipeline.TCP(22)])
	assert.Equal(t, pipeline.Hold{By: "host program dnsmasq (serves it on the node)"}, withHost[pipeline.UDP(53)])
	for _, bad := range []string{"tcp/22=", "tcp/22=a b", "tcp/22=sshd,udp/53=x", "=sshd", "tcp/0=sshd"} {
		_, err = ReservedPorts(nil, nil, []string{bad})
		assert.Error(t, err, bad)
	}
}

func lbService(ns, name string, created time.Time, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.ServiceSpec{Type: typ, Ports: ports}}
}

func TestLoadBalancerFrontends(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	inst := testInstance()
	inst.UID = "inst-uid"
	own := lbService(inst.Namespace, "mine", t0, corev1.ServiceTypeLoadBalancer, corev1.ServicePort{Port: 2200})
	own.Labels = map[string]string{LabelManagedBy: ManagedBy, LabelCore: inst.Name}
	own.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindPipeline,
		Name: "mine", UID: "p-uid", Controller: ptr.To(true)}}
	otherInst := own.DeepCopy()
	otherInst.Namespace, otherInst.Name = "elsewhere", "theirs"
	otherInst.Spec.Ports = []corev1.ServicePort{{Port: 2201}}
	forged := lbService(inst.Namespace, "forged", t0, corev1.ServiceTypeLoadBalancer, corev1.ServicePort{Port: 2202, Protocol: corev1.ProtocolUDP})
	forged.Labels = own.Labels // labels alone do not make a Service the instance's own
	got := LoadBalancerFrontends([]*corev1.Service{
		own, otherInst, forged,
		lbService("kube-system", "traefik", t0.Add(time.Minute), corev1.ServiceTypeLoadBalancer,
			corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolTCP}, corev1.ServicePort{Port: 443, Protocol: corev1.ProtocolTCP}),
		lbService("x", "cluster-ip", t0, corev1.ServiceTypeClusterIP, corev1.ServicePort{Port: 2300}),
		lbService("x", "sctp", t0, corev1.ServiceTypeLoadBalancer, corev1.ServicePort{Port: 2400, Protocol: corev1.ProtocolSCTP}),
	}, inst)
	assert.Equal(t, pipeline.PortSet{
		pipeline.TCP(2201): {By: "LoadBalancer Service elsewhere/theirs", Since: t0},
		pipeline.UDP(2202): {By: "LoadBalancer Service tp/forged", Since: t0},
		pipeline.TCP(80):   {By: "LoadBalancer Service kube-system/traefik", Since: t0.Add(time.Minute)},
		pipeline.TCP(443):  {By: "LoadBalancer Service kube-system/traefik", Since: t0.Add(time.Minute)},
	}, got)
}

func TestPlanSkipsOtherLoadBalancerFrontends(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	taken, err := ReservedPorts(nil, []string{ComponentTraefik}, nil)
	require.NoError(t, err)
	taken.Merge(LoadBalancerFrontends([]*corev1.Service{
		lbService("other", "web", t0, corev1.ServiceTypeLoadBalancer, corev1.ServicePort{Port: 2300, Protocol: corev1.ProtocolTCP}),
	}, inst))
	p := member("p", t0, tcp(2300), tcp(80), tcp(10250))
	p.Spec.Ports[0].Name = "web"
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{p}, taken, t0.Add(time.Minute))
	got := plans[0].want
	require.Len(t, got.Ports, 3)
	assert.Equal(t, []int32{2301, 81, 10251}, []int32{got.Ports[0].Frontend, got.Ports[1].Frontend, got.Ports[2].Frontend})
	c := got.Conditions[0]
	assert.Equal(t, v1alpha1.ReasonReassigned, c.Reason)
	assert.Contains(t, c.Message, "tcp/2300 is taken by LoadBalancer Service other/web; frontend 2301")
	assert.Contains(t, c.Message, "tcp/80 is taken by Traefik (packaged K3s component); frontend 81")
	assert.Contains(t, c.Message, "tcp/10250 is taken by the K3s node (kubelet); frontend 10251")

	// A LoadBalancer Service created after the pipeline took 2300 does not
	// move it; the condition names the newcomer.
	feedBack(plans)
	late := pipeline.NewPortSet().Merge(LoadBalancerFrontends([]*corev1.Service{
		lbService("other", "late", t0.Add(time.Hour), corev1.ServiceTypeLoadBalancer, corev1.ServicePort{Port: 2301, Protocol: corev1.ProtocolTCP}),
	}, inst))
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{p}, late, t0.Add(2*time.Hour))
	assert.Equal(t, int32(2301), plans[0].want.Ports[0].Frontend, "older components never move")
	assert.Contains(t, plans[0].want.Conditions[0].Message, "LoadBalancer Service other/late, which came later")
}

func TestPlanInvalidGenerationKeepsItsFrontends(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	a := member("a", t0, tcp(2200))
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{a}, nil, t0)
	feedBack(plans)
	require.Equal(t, int32(2200), a.Status.Ports[0].Frontend)

	// A bad edit: generation 2 lists tcp/2200 twice.
	a.Generation = 2
	a.Spec.Ports = []v1alpha1.PipelinePort{tcp(2200), tcp(2200)}
	b := member("b", t0.Add(time.Minute), tcp(2200))
	plans, assigned := r.plan(inst, []*v1alpha1.Pipeline{a, b}, nil, t0.Add(time.Minute))
	got := byName(plans)
	c := got["a"].want.Conditions[0]
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, v1alpha1.ReasonInvalidPorts, c.Reason)
	assert.Equal(t, int64(2), c.ObservedGeneration)
	assert.True(t, strings.HasPrefix(c.Message, "generation 2 is refused; generation 1 keeps its frontends (tcp/2200): "), c.Message)
	assert.Contains(t, c.Message, "share a backend")
	require.Len(t, got["a"].want.Ports, 1)
	assert.Equal(t, int32(2200), got["a"].want.Ports[0].Frontend, "the frontend stays claimed")
	assert.Equal(t, int32(2201), got["b"].want.Ports[0].Frontend, "nobody else is given it")
	assert.Len(t, assigned, 2, "the instance status lists the kept frontend")
	feedBack(plans)

	// Another bad edit: still generation 1 that is served.
	a.Generation = 3
	a.Spec.Ports = []v1alpha1.PipelinePort{tcp(0)}
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{a, b}, nil, t0.Add(2*time.Minute))
	assert.True(t, strings.HasPrefix(byName(plans)["a"].want.Conditions[0].Message, "generation 3 is refused; generation 1 keeps its frontends"))
	feedBack(plans)

	// Fixed: the entry is unchanged, so it keeps its frontend and age.
	a.Generation = 4
	a.Spec.Ports = []v1alpha1.PipelinePort{tcp(2200)}
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{a, b}, nil, t0.Add(3*time.Minute))
	got = byName(plans)
	assert.Equal(t, metav1.ConditionTrue, got["a"].want.Conditions[0].Status)
	assert.Equal(t, int32(2200), got["a"].want.Ports[0].Frontend)
	assert.Equal(t, metav1.NewTime(t0), got["a"].want.Ports[0].Since)
}

func TestPlanResolvesEachGenerationOnce(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	p := member("p", t0)
	p.UID = "p-uid"
	p.Spec.AutoDetectPorts = nil
	p.Spec.Config = v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic, Content: "[INPUT]\n  Name tcp\n  Port 5170\n"}
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{p}, nil, t0)
	require.Equal(t, int32(5170), plans[0].want.Ports[0].Backend)
	memo := r.resolved.m[inst.Namespace+"/"+inst.Name]
	require.Len(t, memo, 1)

	// The same generation is not parsed again: a memo entry planted for it
	// is what the plan uses.
	e := memo["p-uid/p"]
	e.res.Ports[0].Port = pipeline.TCP(6000)
	memo["p-uid/p"] = e
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{p}, nil, t0)
	assert.Equal(t, int32(6000), plans[0].want.Ports[0].Backend)

	// A new generation is parsed.
	p.Generation = 2
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{p}, nil, t0)
	assert.Equal(t, int32(5170), plans[0].want.Ports[0].Backend)

	// A pipeline that left the instance leaves the memo.
	r.plan(inst, nil, nil, t0)
	assert.Empty(t, r.resolved.m[inst.Namespace+"/"+inst.Name])
}

func TestReadyCondition(t *testing.T) {
	for _, tc := range []struct {
		name           string
		kind           v1alpha1.WorkloadKind
		ready, desired int32
		settled, found bool
		status         metav1.ConditionStatus
		reason         string
	}{
		{"missing", v1alpha1.WorkloadDeployment, 0, 0, false, false, metav1.ConditionFalse, v1alpha1.ReasonProgressing},
		{"all ready", v1alpha1.WorkloadDeployment, 2, 2, true, true, metav1.ConditionTrue, v1alpha1.ReasonAvailable},
		{"rolling out", v1alpha1.WorkloadDeployment, 2, 2, false, true, metav1.ConditionFalse, v1alpha1.ReasonProgressing},
		{"some", v1alpha1.WorkloadStatefulSet, 1, 3, true, true, metav1.ConditionFalse, v1alpha1.ReasonProgressing},
		{"none", v1alpha1.WorkloadStatefulSet, 0, 3, true, true, metav1.ConditionFalse, v1alpha1.ReasonUnavailable},
		{"scaled to zero", v1alpha1.WorkloadDeployment, 0, 0, true, true, metav1.ConditionTrue, v1alpha1.ReasonAvailable},
		{"daemonset nowhere", v1alpha1.WorkloadDaemonSet, 0, 0, true, true, metav1.ConditionFalse, v1alpha1.ReasonUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ReadyCondition(tc.kind, tc.ready, tc.desired, tc.settled, tc.found)
			assert.Equal(t, tc.status, c.Status)
			assert.Equal(t, tc.reason, c.Reason)
			assert.NotEmpty(t, c.Message)
		})
	}
}

func TestParsePortRange(t *testing.T) {
	r, err := ParsePortRange("30000-32767")
	require.NoError(t, err)
	assert.Equal(t, DefaultNodePortRange, r)
	assert.Equal(t, "30000-32767", r.String())
	for _, bad := range []string{"", "30000", "2-1", "0-5", "1-70000", "a-b"} {
		_, err := ParsePortRange(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"30000-32767", "1-65535", "5-4", "-", "x-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.Min < 1 || r.Max > 65535 || r.Min > r.Max {
			t.Fatalf("ParsePortRange(%q) = %v: out of bounds", s, r)
		}
		again, err := ParsePortRange(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}

func FuzzParseReservedPort(f *testing.F) {
	for _, s := range []string{"tcp/6443", "8472/udp", "80", "x=tcp/1", "udp/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseReservedPort(s)
		if err != nil {
			return
		}
		if !p.Protocol.Valid() || p.Number < 1 || p.Number > 65535 {
			t.Fatalf("ParseReservedPort(%q) = %v", s, p)
		}
		again, err := ParseReservedPort(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}

func TestInstanceStatusStaysBounded(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	var members []*v1alpha1.Pipeline
	for i := range MaxFrontendPortsListed + 50 {
		members = append(members, member(fmt.Sprintf("p%04d", i), t0, tcp(6000)))
	}
	plans, assigned := r.plan(inst, members, nil, t0)
	require.Len(t, assigned, MaxFrontendPortsListed+50)
	want, cond := wantInstanceStatus(inst, plans, assigned, false, t0)
	assert.Len(t, want.FrontendPorts, MaxFrontendPortsListed)
	assert.Equal(t, int32(6000), want.FrontendPorts[0].Port, "the lowest are listed")
	assert.Equal(t, int32(MaxFrontendPortsListed+50), want.PipelineCount)
	assert.Contains(t, cond.Message, fmt.Sprintf("%d frontend port(s) in use, the lowest %d listed", MaxFrontendPortsListed+50, MaxFrontendPortsListed))

	want, cond = wantInstanceStatus(inst, plans[:3], assigned[:3], false, t0)
	assert.Len(t, want.FrontendPorts, 3)
	assert.NotContains(t, cond.Message, "listed")
}

func TestPlanSkipsRecordedHostListeners(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	old := member("old", t0, tcp(22))
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{old}, nil, t0)
	feedBack(plans)
	require.Equal(t, int32(22), old.Status.Ports[0].Frontend)

	// A pipeline created later on the node recorded sshd on 22 and nginx on 8080.
	p := member("p", t0.Add(time.Minute), tcp(8080), tcp(22))
	p.Annotations = map[string]string{v1alpha1.AnnotationHostListeners: "tcp/22=sshd,tcp/8080=nginx"}
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{old, p}, nil, t0.Add(time.Minute))
	got := byName(plans)
	assert.Equal(t, int32(22), got["old"].want.Ports[0].Frontend, "an older entry keeps its frontend")
	assert.Equal(t, []int32{8081, 23}, []int32{got["p"].want.Ports[0].Frontend, got["p"].want.Ports[1].Frontend})
	assert.Contains(t, got["p"].want.Conditions[0].Message,
		"tcp/8080 is taken by host program nginx (seen on the node when pipeline p was created); frontend 8081")

	p.Annotations[v1alpha1.AnnotationHostListeners] = "garbage"
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{p}, nil, t0.Add(time.Minute))
	assert.Equal(t, int32(8080), plans[0].want.Ports[0].Frontend, "an unreadable annotation adds nothing")
}

func TestPlanUsesItsLastWriteWhenTheCacheLags(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	key := inst.Namespace + "/" + inst.Name
	a := member("a", t0, tcp(2200))
	a.UID = "a-uid"
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{a}, nil, t0)
	require.Equal(t, int32(2200), plans[0].want.Ports[0].Frontend)
	r.resolved.recordWrite(key, memoKey(a), a.Generation, &plans[0].want) // as writePipelines does

	// The cache still shows a without ports when b arrives: b must not be
	// given a's frontend, and a's written status is what the plan sees.
	b := member("b", t0.Add(time.Minute), tcp(2200))
	b.UID = "b-uid"
	plans, assigned := r.plan(inst, []*v1alpha1.Pipeline{a, b}, nil, t0.Add(time.Minute))
	got := byName(plans)
	assert.Equal(t, int32(2200), got["a"].want.Ports[0].Frontend)
	assert.True(t, unchanged(got["a"]), "nothing to write for a")
	assert.Empty(t, a.Status.Ports, "the cached object is not modified")
	assert.Equal(t, int32(2201), got["b"].want.Ports[0].Frontend)
	assert.Len(t, assigned, 2)

	// A new generation of a is planned from its own status again.
	a.Generation = 2
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{a}, nil, t0.Add(2*time.Minute))
	assert.Empty(t, plans[0].p.Status.Ports, "the write was for generation 1")
}

// TestPlanForgetsItsWriteOnceTheCacheShowsIt: once the cache shows the
// last write, the memo no longer holds a copy of it, and a port status
// someone removed afterwards is planned as removed (written again).
func TestPlanForgetsItsWriteOnceTheCacheShowsIt(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &CoreInstanceReconciler{}
	inst := testInstance()
	key := inst.Namespace + "/" + inst.Name
	a := member("a", t0, tcp(2200))
	a.UID = "a-uid"
	plans, _ := r.plan(inst, []*v1alpha1.Pipeline{a}, nil, t0)
	written := plans[0].want
	r.resolved.recordWrite(key, memoKey(a), a.Generation, &written)

	// The cache catches up.
	shown := withPortsStatus(a, &written)
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{shown}, nil, t0.Add(time.Minute))
	assert.True(t, unchanged(plans[0]))
	r.resolved.mu.Lock()
	assert.Nil(t, r.resolved.m[key][memoKey(a)].written, "no copy of a status the cache shows")
	r.resolved.mu.Unlock()

	// Someone removes the ports status: it is written again.
	plans, _ = r.plan(inst, []*v1alpha1.Pipeline{a}, nil, t0.Add(2*time.Minute))
	assert.False(t, unchanged(plans[0]), "the removed status is planned to be written")
	assert.Equal(t, int32(2200), plans[0].want.Ports[0].Frontend)
}
