//go:build integration

package operator

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

const waitFor = 30 * time.Second

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "op-"}}
	require.NoError(t, kc.Create(context.Background(), ns))
	return ns.Name
}

func newInstance(t *testing.T, ns string, mutate func(*v1alpha1.CoreInstance)) *v1alpha1.CoreInstance {
	t.Helper()
	inst := &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core", Namespace: ns},
		Spec: v1alpha1.CoreInstanceSpec{HTTPProxy: "http://proxy.test:3128", HTTPSProxy: "http://proxy.test:3129", NoProxy: "localhost,.svc"}}
	if mutate != nil {
		mutate(inst)
	}
	require.NoError(t, kc.Create(context.Background(), inst))
	return inst
}

func newPipeline(ns, name string, ports ...v1alpha1.PipelinePort) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PipelineSpec{Instance: "core", Ports: ports, AutoDetectPorts: ptr.To(false)}}
}

// assigned waits until the pipeline's ports are assigned for its generation.
// edit changes an object as a user would: read it, change it, write it,
// and again on a conflict (the operator writes the object's status and
// metadata meanwhile).
func edit[T client.Object](t *testing.T, ns, name string, obj T, change func(T)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := kc.Get(context.Background(), key(ns, name), obj); err != nil {
			return err
		}
		change(obj)
		return kc.Update(context.Background(), obj)
	}))
}

func assigned(t *testing.T, ns, name string) *v1alpha1.Pipeline {
	t.Helper()
	p := &v1alpha1.Pipeline{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(context.Background(), key(ns, name), p))
		cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
		require.NotNil(c, cond, "PortsAssigned")
		assert.Equal(c, p.Generation, cond.ObservedGeneration)
	}, waitFor, 50*time.Millisecond, "pipeline %s/%s never got its ports", ns, name)
	return p
}

func getService(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(context.Background(), key(ns, name), svc))
	}, waitFor, 50*time.Millisecond, "Service %s/%s never appeared", ns, name)
	return svc
}

func TestCRDRejectsBadPipelines(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, tc := range []struct {
		name, want string
		mutate     func(*v1alpha1.Pipeline)
	}{
		{"duplicate-backend", "duplicate backend", func(p *v1alpha1.Pipeline) {
			p.Spec.Ports = []v1alpha1.PipelinePort{tcpPort(2200), tcpPort(2200)}
		}},
		{"port-zero", "spec.ports[0].port", func(p *v1alpha1.Pipeline) { p.Spec.Ports = []v1alpha1.PipelinePort{tcpPort(0)} }},
		{"port-too-big", "spec.ports[0].port", func(p *v1alpha1.Pipeline) { p.Spec.Ports = []v1alpha1.PipelinePort{tcpPort(70000)} }},
		{"bad-service-type", "spec.serviceType", func(p *v1alpha1.Pipeline) { p.Spec.ServiceType = "External" }},
		{"bad-kind", "spec.workload.kind", func(p *v1alpha1.Pipeline) { p.Spec.Workload.Kind = "Job" }},
		{"bad-protocol", "spec.ports[0].protocol", func(p *v1alpha1.Pipeline) {
			p.Spec.Ports = []v1alpha1.PipelinePort{{Protocol: "SCTP", Port: 1}}
		}},
		{"daemonset-replicas", "replicas cannot be set for a DaemonSet", func(p *v1alpha1.Pipeline) {
			p.Spec.Workload = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadDaemonSet, Replicas: ptr.To[int32](2)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(ns, tc.name)
			tc.mutate(p)
			err := kc.Create(ctx, p)
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// TCP and UDP may share a number; 1850 and 1851 may coexist.
	ok := newPipeline(ns, "ok", tcpPort(1850), tcpPort(1851), v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: 1850})
	require.NoError(t, kc.Create(ctx, ok))
}

func tcpPort(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
}

func TestObjectsPerKindAndServiceType(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	inst := newInstance(t, ns, nil)

	dep := newPipeline(ns, "dep", tcpPort(5170))
	ds := newPipeline(ns, "ds", tcpPort(30555), v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: 5140, Name: "syslog"})
	ds.Spec.Workload.Kind, ds.Spec.ServiceType = v1alpha1.WorkloadDaemonSet, v1alpha1.ServiceTypeNodePort
	sts := newPipeline(ns, "sts", tcpPort(9880))
	sts.Spec.Workload, sts.Spec.ServiceType = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadStatefulSet, Replicas: ptr.To[int32](2)}, v1alpha1.ServiceTypeClusterIP
	for _, p := range []*v1alpha1.Pipeline{dep, ds, sts} {
		require.NoError(t, kc.Create(ctx, p))
	}

	// Deployment + LoadBalancer (the default).
	svc := getService(t, ns, "dep")
	assert.Equal(t, corev1.ServiceTypeLoadBalancer, svc.Spec.Type)
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, int32(5170), svc.Spec.Ports[0].Port)
	assert.Equal(t, intstr.FromInt32(5170), svc.Spec.Ports[0].TargetPort)
	d := &appsv1.Deployment{}
	require.NoError(t, kc.Get(ctx, key(ns, "dep"), d))
	assertPod(t, d.Spec.Template, inst)
	cm := &corev1.ConfigMap{}
	require.NoError(t, kc.Get(ctx, key(ns, "dep-config"), cm))
	assert.Contains(t, cm.Data, "pipeline.yaml")

	// DaemonSet + NodePort: the frontend inside the node port range is the node port.
	svc = getService(t, ns, "ds")
	assert.Equal(t, corev1.ServiceTypeNodePort, svc.Spec.Type)
	require.Len(t, svc.Spec.Ports, 2)
	assert.Equal(t, int32(30555), svc.Spec.Ports[0].NodePort)
	assert.Equal(t, corev1.ProtocolUDP, svc.Spec.Ports[1].Protocol)
	assert.Equal(t, "syslog", svc.Spec.Ports[1].Name)
	assert.NotZero(t, svc.Spec.Ports[1].NodePort, "5140 is outside the range: Kubernetes allocated one")
	daemon := &appsv1.DaemonSet{}
	require.NoError(t, kc.Get(ctx, key(ns, "ds"), daemon))
	assertPod(t, daemon.Spec.Template, inst)

	// StatefulSet + ClusterIP + headless Service.
	svc = getService(t, ns, "sts")
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	set := &appsv1.StatefulSet{}
	require.NoError(t, kc.Get(ctx, key(ns, "sts"), set))
	assert.Equal(t, int32(2), *set.Spec.Replicas)
	assert.Equal(t, "sts-headless", set.Spec.ServiceName)
	hl := getService(t, ns, "sts-headless")
	assert.Equal(t, corev1.ClusterIPNone, hl.Spec.ClusterIP)

	// Status of the Pipeline reconciler: no controller-manager runs here, so
	// the workloads never report ready pods.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		p := &v1alpha1.Pipeline{}
		require.NoError(c, kc.Get(ctx, key(ns, "sts"), p))
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		require.NotNil(c, ready)
		assert.Equal(c, metav1.ConditionFalse, ready.Status)
		assert.Equal(c, p.Generation, p.Status.ObservedGeneration)
		assert.Equal(c, v1alpha1.ServiceTypeClusterIP, p.Status.ServiceType)
	}, waitFor, 50*time.Millisecond)

	// Changing the kind replaces the workload.
	edit(t, ns, "dep", &v1alpha1.Pipeline{}, func(p *v1alpha1.Pipeline) { p.Spec.Workload.Kind = v1alpha1.WorkloadStatefulSet })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.True(c, apierrors.IsNotFound(kc.Get(ctx, key(ns, "dep"), &appsv1.Deployment{})), "old Deployment deleted")
		assert.NoError(c, kc.Get(ctx, key(ns, "dep"), &appsv1.StatefulSet{}))
		assert.NoError(c, kc.Get(ctx, key(ns, "dep-headless"), &corev1.Service{}))
	}, waitFor, 50*time.Millisecond)

	// Changing the Service type applies to every port.
	edit(t, ns, "ds", &v1alpha1.Pipeline{}, func(p *v1alpha1.Pipeline) { p.Spec.ServiceType = v1alpha1.ServiceTypeClusterIP })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := &corev1.Service{}
		require.NoError(c, kc.Get(ctx, key(ns, "ds"), s))
		assert.Equal(c, corev1.ServiceTypeClusterIP, s.Spec.Type)
		for _, sp := range s.Spec.Ports {
			assert.Zero(c, sp.NodePort)
		}
	}, waitFor, 50*time.Millisecond)

	// The health-check pipeline and its Service on 2020.
	hc := getService(t, ns, "core-health")
	require.Len(t, hc.Spec.Ports, 1)
	assert.Equal(t, int32(2020), hc.Spec.Ports[0].Port)
}

func assertPod(t *testing.T, tpl corev1.PodTemplateSpec, inst *v1alpha1.CoreInstance) {
	t.Helper()
	c := tpl.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	assert.Equal(t, inst.Spec.HTTPProxy, env["HTTP_PROXY"])
	assert.Equal(t, inst.Spec.HTTPSProxy, env["https_proxy"])
	assert.Equal(t, inst.Spec.NoProxy, env["NO_PROXY"])
	assert.Equal(t, "tpctl.test/sink:1", c.Image, "the operator's default image")
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.True(t, *tpl.Spec.SecurityContext.RunAsNonRoot)
}

func TestSeedReassignment(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "a", tcpPort(2200))))
	a := assigned(t, ns, "a")
	require.Len(t, a.Status.Ports, 1)
	assert.Equal(t, int32(2200), a.Status.Ports[0].Frontend)

	// B asks for tcp/2200, then C. (Created at the same moment, either may
	// be the newer one; TestConcurrentPipelinesGetUniqueFrontends covers that.)
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "b", tcpPort(2200))))
	b := assigned(t, ns, "b")
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "c", tcpPort(2200))))
	c := assigned(t, ns, "c")
	assert.Equal(t, v1alpha1.PortStatus{Protocol: "TCP", Frontend: 2201, Backend: 2200, Reassigned: true,
		Since: b.Status.Ports[0].Since, Source: "ports[0]"}, b.Status.Ports[0])
	assert.Equal(t, int32(2202), c.Status.Ports[0].Frontend)
	assert.Equal(t, "tcp/2201->2200", b.Status.PortSummary)
	cond := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	assert.Equal(t, v1alpha1.ReasonReassigned, cond.Reason)
	assert.Contains(t, cond.Message, "tcp/2200 is held by pipeline a")

	svc := getService(t, ns, "b")
	assert.Equal(t, int32(2201), svc.Spec.Ports[0].Port, "the Service port is the frontend")
	assert.Equal(t, intstr.FromInt32(2200), svc.Spec.Ports[0].TargetPort, "the target is the backend")
	assert.Equal(t, int32(2202), getService(t, ns, "c").Spec.Ports[0].Port)

	require.EventuallyWithT(t, func(col *assert.CollectT) {
		inst := &v1alpha1.CoreInstance{}
		require.NoError(col, kc.Get(ctx, key(ns, "core"), inst))
		assert.Equal(col, int32(4), inst.Status.PipelineCount, "a, b, c and the health check")
		var fronts []string
		for _, f := range inst.Status.FrontendPorts {
			fronts = append(fronts, fmt.Sprintf("%s/%d:%s", f.Protocol, f.Port, f.Pipeline))
		}
		assert.Equal(col, []string{"TCP/2020:core-health", "TCP/2200:a", "TCP/2201:b", "TCP/2202:c"}, fronts)
	}, waitFor, 50*time.Millisecond)

	// The reassignment is explained by an event on B.
	require.EventuallyWithT(t, func(col *assert.CollectT) {
		var evs eventsv1.EventList
		require.NoError(col, kc.List(ctx, &evs, client.InNamespace(ns)))
		var notes []string
		for _, e := range evs.Items {
			if e.Regarding.Name == "b" && e.Reason == "FrontendReassigned" {
				notes = append(notes, e.Note)
			}
		}
		require.NotEmpty(col, notes)
		assert.Contains(col, notes[0], "frontend tcp/2200 → 2201: tcp/2200 is held by pipeline a")
	}, waitFor, 100*time.Millisecond)

	// Deleting A frees 2200 but nobody moves: B and C keep their frontends.
	require.NoError(t, kc.Delete(ctx, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: ns}}))
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "d", tcpPort(2200))))
	d := assigned(t, ns, "d")
	assert.Equal(t, int32(2200), d.Status.Ports[0].Frontend, "the freed number goes to the newcomer")
	require.NoError(t, kc.Get(ctx, key(ns, "b"), b))
	assert.Equal(t, int32(2201), b.Status.Ports[0].Frontend, "an unchanged port never moves")
}

func TestConcurrentPipelinesGetUniqueFrontends(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, kc.Create(ctx, newPipeline(ns, fmt.Sprintf("p%02d", i), tcpPort(5000), v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: 5000})))
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i := range n {
		p := assigned(t, ns, fmt.Sprintf("p%02d", i))
		require.Len(t, p.Status.Ports, 2)
		for _, st := range p.Status.Ports {
			k := fmt.Sprintf("%s/%d", st.Protocol, st.Frontend)
			assert.NotContains(t, seen, k, "frontend %s given to %s and %s", k, seen[k], p.Name)
			seen[k] = p.Name
			assert.GreaterOrEqual(t, st.Frontend, int32(5000))
			assert.Less(t, st.Frontend, int32(5000+n))
		}
	}
	assert.Len(t, seen, 2*n)
}

func TestOwnerReferencesForCleanup(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	inst := newInstance(t, ns, nil)
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "p", tcpPort(8000))))
	getService(t, ns, "p")
	p := &v1alpha1.Pipeline{}
	// The instance owns its pipelines (plain reference), so deleting it deletes them.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "p"), p))
		assert.True(c, hasOwner(p, inst), "pipeline p is owned by its instance")
	}, waitFor, 50*time.Millisecond)
	hc := &v1alpha1.Pipeline{}
	require.NoError(t, kc.Get(ctx, key(ns, "core-health"), hc))
	assert.True(t, metav1.IsControlledBy(hc, inst), "the health-check pipeline is controlled by the instance")
	// The pipeline controls its objects, so deleting it deletes them.
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &appsv1.Deployment{}, &corev1.Service{}} {
		name := "p"
		if _, ok := obj.(*corev1.ConfigMap); ok {
			name = "p-config"
		}
		require.NoError(t, kc.Get(ctx, key(ns, name), obj))
		assert.True(t, metav1.IsControlledBy(obj, p), "%T %s is controlled by pipeline p", obj, name)
	}

	// Disabling the health check deletes its pipeline (the operator does that itself).
	edit(t, ns, "core", inst, func(i *v1alpha1.CoreInstance) { i.Spec.HealthCheck.Enabled = ptr.To(false) })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := kc.Get(ctx, key(ns, "core-health"), &v1alpha1.Pipeline{})
		assert.True(c, apierrors.IsNotFound(err), "health-check pipeline deleted: %v", err)
	}, waitFor, 50*time.Millisecond)
}

func TestInvalidConfigAndMissingInstance(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	orphan := newPipeline(ns, "orphan", tcpPort(1000))
	orphan.Spec.Instance = "nowhere"
	require.NoError(t, kc.Create(ctx, orphan))
	newInstance(t, ns, nil)
	bad := newPipeline(ns, "bad")
	bad.Spec.AutoDetectPorts = nil
	bad.Spec.Config = v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic, Content: "[INPUT]\n    Name tcp\n    Port ${NOPE}\n"}
	require.NoError(t, kc.Create(ctx, bad))

	p := assigned(t, ns, "bad")
	cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, v1alpha1.ReasonInvalidConfig, cond.Reason)
	assert.Contains(t, cond.Message, "NOPE")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "bad"), p))
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		require.NotNil(c, ready)
		assert.Equal(c, v1alpha1.ReasonInvalidConfig, ready.Reason)
	}, waitFor, 50*time.Millisecond)
	assert.True(t, apierrors.IsNotFound(kc.Get(ctx, key(ns, "bad"), &appsv1.Deployment{})), "nothing deployed")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "orphan"), p))
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		require.NotNil(c, ready)
		assert.Equal(c, v1alpha1.ReasonInstanceNotFound, ready.Reason)
		assert.True(c, strings.Contains(ready.Message, "nowhere"))
	}, waitFor, 50*time.Millisecond)
}

func TestForeignLoadBalancerFrontendIsSkipped(t *testing.T) {
	ctx := context.Background()
	other := newNamespace(t)
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: other},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 2300, Protocol: corev1.ProtocolTCP}}}}
	require.NoError(t, kc.Create(ctx, foreign))

	ns := newNamespace(t)
	newInstance(t, ns, nil)
	// The operator learns of the Service through its watch; give the event
	// time to arrive before the pipeline that would clash with it.
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "p", tcpPort(2300))))
	p := assigned(t, ns, "p")
	require.Len(t, p.Status.Ports, 1)
	assert.Equal(t, int32(2301), p.Status.Ports[0].Frontend)
	assert.Equal(t, int32(2300), p.Status.Ports[0].Backend)
	cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	assert.Equal(t, v1alpha1.ReasonReassigned, cond.Reason)
	assert.Equal(t, fmt.Sprintf("tcp/2300 is taken by LoadBalancer Service %s/web; frontend 2301", other), cond.Message)
	assert.Equal(t, int32(2301), getService(t, ns, "p").Spec.Ports[0].Port)
}

func TestBadEditKeepsFrontendsClaimed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "a", tcpPort(2400))))
	a := assigned(t, ns, "a")
	require.Equal(t, int32(2400), a.Status.Ports[0].Frontend)

	// Generation 2 cannot be read; its ports are unknown.
	edit(t, ns, "a", a, func(a *v1alpha1.Pipeline) {
		a.Spec.AutoDetectPorts = nil
		a.Spec.Config = v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic, Content: "[INPUT]\n    Name tcp\n    Port ${NOPE}\n"}
	})
	a = assigned(t, ns, "a")
	cond := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, v1alpha1.ReasonInvalidConfig, cond.Reason)
	assert.True(t, strings.HasPrefix(cond.Message, "generation 2 is refused; generation 1 keeps its frontends (tcp/2400): "), cond.Message)
	require.Len(t, a.Status.Ports, 1)
	assert.Equal(t, int32(2400), a.Status.Ports[0].Frontend)

	// Nobody else gets 2400 meanwhile, and the Service still serves it.
	require.NoError(t, kc.Create(ctx, newPipeline(ns, "b", tcpPort(2400))))
	b := assigned(t, ns, "b")
	assert.Equal(t, int32(2401), b.Status.Ports[0].Frontend)
	assert.Equal(t, int32(2400), getService(t, ns, "a").Spec.Ports[0].Port)
}
