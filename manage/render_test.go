package manage

import (
	"bytes"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Golden files live in testdata/<TestName>.golden; go test -update rewrites them.

func samplePipelines() []v1alpha1.Pipeline {
	a := assigned("a", v1alpha1.ServiceTypeLoadBalancer, false, tcp(2200))
	b := assigned("b", v1alpha1.ServiceTypeNodePort, true, tcp(2200), udp(5140))
	b.Spec.Workload = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadStatefulSet, Replicas: ptr.To(int32(2))}
	b.Spec.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
	}
	b.Spec.NodeSelector = map[string]string{"disk": "ssd", "zone": "a"}
	b.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "logs", Effect: corev1.TaintEffectNoSchedule},
		{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	b.Spec.PodAnnotations = map[string]string{"example.com/team": "obs"}
	pending := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: testNS, Generation: 1},
		Spec: v1alpha1.PipelineSpec{Instance: "core", Ports: []v1alpha1.PipelinePort{tcp(5170)},
			Workload: v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadDaemonSet}}}
	return []v1alpha1.Pipeline{*a, *b, *pending}
}

func TestWritePipelines(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WritePipelines(&buf, samplePipelines()))
	golden.RequireEqual(t, buf.Bytes())
}

func TestWritePipelinesEmpty(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WritePipelines(&buf, nil))
	golden.RequireEqual(t, buf.Bytes())
}

func TestWritePipelineDetail(t *testing.T) {
	p := samplePipelines()[1]
	p.Spec.Image = "fluent/fluent-bit:4.0"
	p.Spec.Config = v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatYAML, Content: "pipeline:\n  inputs: []\n"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: testNS}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.9",
		Ports: []corev1.ServicePort{{Protocol: "TCP", Port: 2201, NodePort: 30201}, {Protocol: "UDP", Port: 5140, NodePort: 30140}}}}
	eps := ComputeEndpoints(&p, svc, []corev1.Node{{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}}}}})
	events := []Event{{Type: "Normal", Reason: "Reassigned", Message: "frontend tcp/2200 → 2201: tcp/2200 is held by pipeline a ports[0]", Count: 1, Last: t0.Add(-3 * time.Minute)},
		{Type: "Warning", Reason: "Unavailable", Message: "0/2 pod(s) ready", Count: 4, Last: t0.Add(-2 * time.Hour)}}
	var buf bytes.Buffer
	require.NoError(t, WritePipeline(&buf, &p, eps, events, t0))
	golden.RequireEqual(t, buf.Bytes())
}

func TestWritePipelinePending(t *testing.T) {
	p := samplePipelines()[2]
	var buf bytes.Buffer
	require.NoError(t, WritePipeline(&buf, &p, nil, nil, t0))
	golden.RequireEqual(t, buf.Bytes())
}

func TestWriteEndpoints(t *testing.T) {
	eps := []Endpoint{
		{Protocol: v1alpha1.ProtocolTCP, Frontend: 2200, Backend: 2200, ServiceType: v1alpha1.ServiceTypeClusterIP, Address: "10.96.0.3:2200"},
		{Protocol: v1alpha1.ProtocolTCP, Frontend: 2201, Backend: 2200, Reassigned: true, ServiceType: v1alpha1.ServiceTypeLoadBalancer,
			Address: "192.0.2.1:31201", Note: "load balancer address pending; using the node port"},
		{Protocol: v1alpha1.ProtocolUDP, Backend: 65535, ServiceType: v1alpha1.ServiceTypeNodePort, Note: "no frontend: no free port between the backend and 65535"},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteEndpoints(&buf, eps))
	golden.RequireEqual(t, buf.Bytes())
}

func TestWriteInstances(t *testing.T) {
	a := instance("core")
	a.Spec.HTTPSProxy = "http://proxy:3128"
	a.Spec.NoProxy = "localhost,.svc"
	a.Status.PipelineCount = 3
	a.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Available"}}
	b := instance("quiet")
	b.Spec.HealthCheck.Enabled = ptr.To(false)
	var buf bytes.Buffer
	require.NoError(t, WriteInstances(&buf, []v1alpha1.CoreInstance{*a, *b}))
	golden.RequireEqual(t, buf.Bytes())
}

func TestWriteInstanceDetail(t *testing.T) {
	a := instance("core")
	a.Spec.HTTPProxy = "http://proxy:3128"
	a.Spec.HealthCheck.Port = 2030
	a.Spec.PipelineDefaults.ServiceType = v1alpha1.ServiceTypeNodePort
	a.Status.PipelineCount = 2
	a.Status.FrontendPorts = []v1alpha1.FrontendPort{{Protocol: "TCP", Port: 2200, Pipeline: "a", Backend: 2200},
		{Protocol: "TCP", Port: 2201, Pipeline: "b", Backend: 2200}}
	var buf bytes.Buffer
	require.NoError(t, WriteInstance(&buf, a))
	golden.RequireEqual(t, buf.Bytes())
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{30 * time.Second: "30s", 5 * time.Minute: "5m", 3 * time.Hour: "3h", 72 * time.Hour: "3d", -time.Second: "0s"} {
		require.Equal(t, want, Age(t0, t0.Add(-d)), d.String())
	}
	require.Equal(t, "?", Age(t0, time.Time{}))
}
