package v1alpha1_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(s))
	for _, kind := range []string{"CoreInstance", "CoreInstanceList", "Pipeline", "PipelineList"} {
		assert.True(t, s.Recognizes(v1alpha1.GroupVersion.WithKind(kind)), kind)
	}
	gvks, _, err := s.ObjectKinds(&v1alpha1.Pipeline{})
	require.NoError(t, err)
	assert.Equal(t, "telemetry.tpctl.dev/v1alpha1, Kind=Pipeline", gvks[0].String())
	assert.Equal(t, "pipelines.telemetry.tpctl.dev", v1alpha1.Resource(v1alpha1.ResourcePipeline).String())
}

func TestCoreInstanceDefaultsInGo(t *testing.T) {
	var spec v1alpha1.CoreInstanceSpec
	assert.True(t, spec.HealthCheckEnabled())
	assert.Equal(t, int32(2020), spec.HealthCheckPort())
	assert.Equal(t, v1alpha1.ServiceTypeLoadBalancer, spec.DefaultServiceType())
	assert.Equal(t, v1alpha1.ServiceTypeLoadBalancer, spec.HealthCheckServiceType())
	assert.Empty(t, spec.ProxyEnv())

	spec = v1alpha1.CoreInstanceSpec{
		HTTPSProxy:       "http://proxy:3128",
		NoProxy:          "localhost,.svc",
		HealthCheck:      v1alpha1.HealthCheckSpec{Enabled: ptr(false), Port: 3030},
		PipelineDefaults: v1alpha1.PipelineDefaults{ServiceType: v1alpha1.ServiceTypeNodePort, Image: "fluent-bit:4"},
	}
	assert.False(t, spec.HealthCheckEnabled())
	assert.Equal(t, int32(3030), spec.HealthCheckPort())
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, spec.HealthCheckServiceType())
	assert.Equal(t, []corev1.EnvVar{
		{Name: "HTTPS_PROXY", Value: "http://proxy:3128"}, {Name: "https_proxy", Value: "http://proxy:3128"},
		{Name: "NO_PROXY", Value: "localhost,.svc"}, {Name: "no_proxy", Value: "localhost,.svc"},
	}, spec.ProxyEnv())
}

func TestPipelineDefaultsInGo(t *testing.T) {
	var spec v1alpha1.PipelineSpec
	assert.True(t, spec.AutoDetect())
	assert.Equal(t, v1alpha1.ConfigFormatYAML, spec.ConfigFormat())
	assert.Equal(t, v1alpha1.WorkloadDeployment, spec.WorkloadKind())
	assert.Equal(t, int32(1), spec.ReplicaCount())
	assert.Equal(t, v1alpha1.ServiceTypeLoadBalancer, spec.EffectiveServiceType(nil))
	instance := &v1alpha1.CoreInstanceSpec{PipelineDefaults: v1alpha1.PipelineDefaults{ServiceType: "ClusterIP", Image: "fb:1"}}
	assert.Equal(t, v1alpha1.ServiceTypeClusterIP, spec.EffectiveServiceType(instance))
	assert.Equal(t, "fb:1", spec.EffectiveImage(instance))

	spec = v1alpha1.PipelineSpec{AutoDetectPorts: ptr(false), ServiceType: "NodePort", Image: "mine",
		Workload: v1alpha1.WorkloadSpec{Kind: "StatefulSet", Replicas: ptr(int32(0))}}
	assert.False(t, spec.AutoDetect())
	assert.Equal(t, int32(0), spec.ReplicaCount())
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, spec.EffectiveServiceType(instance))
	assert.Equal(t, "mine", spec.EffectiveImage(instance))
	assert.Equal(t, corev1.ServiceTypeNodePort, spec.ServiceType.CoreV1())
	assert.Equal(t, corev1.ProtocolUDP, v1alpha1.ProtocolUDP.CoreV1())
	assert.False(t, v1alpha1.Protocol("SCTP").Valid())
	assert.False(t, v1alpha1.ServiceType("ExternalName").Valid())
}

func TestDeepCopyIsDeep(t *testing.T) {
	orig := &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "b"}},
		Spec: v1alpha1.PipelineSpec{
			Instance: "core",
			Ports:    []v1alpha1.PipelinePort{{Protocol: "TCP", Port: 1}},
			Workload: v1alpha1.WorkloadSpec{Replicas: ptr(int32(2))},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("64Mi")}},
			Env:        []corev1.EnvVar{{Name: "X", Value: "1"}},
			SecretRefs: []corev1.SecretEnvSource{{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
		},
		Status: v1alpha1.PipelineStatus{Ports: []v1alpha1.PortStatus{{Protocol: "TCP", Frontend: 2, Backend: 1}}},
	}
	cp := orig.DeepCopyObject().(*v1alpha1.Pipeline)
	require.Equal(t, orig, cp)
	cp.Spec.Ports[0].Port = 9
	*cp.Spec.Workload.Replicas = 7
	cp.Spec.Env[0].Value = "2"
	cp.Status.Ports[0].Frontend = 9
	cp.Labels["a"] = "c"
	assert.Equal(t, int32(1), orig.Spec.Ports[0].Port)
	assert.Equal(t, int32(2), *orig.Spec.Workload.Replicas)
	assert.Equal(t, "1", orig.Spec.Env[0].Value)
	assert.Equal(t, int32(2), orig.Status.Ports[0].Frontend)
	assert.Equal(t, "b", orig.Labels["a"])
}

func TestJSONFieldNames(t *testing.T) {
	data, err := json.Marshal(v1alpha1.CoreInstanceSpec{HTTPProxy: "h", HTTPSProxy: "s", NoProxy: "n"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"httpProxy":"h","httpsProxy":"s","noProxy":"n","healthCheck":{},"pipelineDefaults":{}}`, string(data))
	data, err = json.Marshal(v1alpha1.PortStatus{Protocol: "TCP", Frontend: 2201, Backend: 2200, Reassigned: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"protocol":"TCP","frontend":2201,"backend":2200,"reassigned":true,"since":null}`, string(data))
}
