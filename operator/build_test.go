package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var since = metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))

func testInstance() *v1alpha1.CoreInstance {
	return &v1alpha1.CoreInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "core", Namespace: "tp", UID: "inst-uid", Generation: 1},
		Spec: v1alpha1.CoreInstanceSpec{
			HTTPProxy: "http://proxy.example:3128", HTTPSProxy: "http://proxy.example:3129",
			NoProxy: "localhost,.svc,10.0.0.0/8",
		},
	}
}

func testPipeline(kind v1alpha1.WorkloadKind, svc v1alpha1.ServiceType) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "logs", Namespace: "tp", UID: "pl-uid", Generation: 3},
		Spec: v1alpha1.PipelineSpec{
			Instance:    "core",
			Config:      v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatYAML, Content: "pipeline:\n  inputs:\n    - name: forward\n"},
			ServiceType: svc,
			Workload:    v1alpha1.WorkloadSpec{Kind: kind},
			Env:         []corev1.EnvVar{{Name: "LEVEL", Value: "info"}},
			SecretRefs:  []corev1.SecretEnvSource{{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
			Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
		},
		Status: v1alpha1.PipelineStatus{Ports: []v1alpha1.PortStatus{
			{Protocol: v1alpha1.ProtocolTCP, Frontend: 24225, Backend: 24224, Reassigned: true, Since: since, Source: "inputs[0] forward"},
			{Protocol: v1alpha1.ProtocolUDP, Frontend: 5140, Backend: 5140, Name: "syslog", Since: since, Source: "ports[0]"},
		}},
	}
}

// typed decodes an apply configuration into the matching API type.
func typed[T any](t *testing.T, ac any) *T {
	t.Helper()
	data, err := json.Marshal(ac)
	require.NoError(t, err)
	out := new(T)
	require.NoError(t, json.Unmarshal(data, out))
	return out
}

func golden(t *testing.T, name string, objs ...any) {
	t.Helper()
	var out []byte
	for _, o := range objs {
		data, err := yaml.Marshal(o)
		require.NoError(t, err)
		out = append(out, "---\n"...)
		out = append(out, data...)
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, out, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run go test ./operator -run %s -update", t.Name())
	assert.Equal(t, string(want), string(out), "rendered objects differ from %s (rerun with -update after checking)", path)
}

func TestObjectsGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind v1alpha1.WorkloadKind
		svc  v1alpha1.ServiceType
	}{
		{"deployment-loadbalancer", v1alpha1.WorkloadDeployment, ""},
		{"daemonset-nodeport", v1alpha1.WorkloadDaemonSet, v1alpha1.ServiceTypeNodePort},
		{"statefulset-clusterip", v1alpha1.WorkloadStatefulSet, v1alpha1.ServiceTypeClusterIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &Objects{Pipeline: testPipeline(tc.kind, tc.svc), Instance: testInstance(), NodePortRange: DefaultNodePortRange}
			objs := []any{o.ConfigMap()}
			switch tc.kind {
			case v1alpha1.WorkloadDaemonSet:
				objs = append(objs, o.DaemonSet())
			case v1alpha1.WorkloadStatefulSet:
				objs = append(objs, o.HeadlessService(), o.StatefulSet())
			default:
				objs = append(objs, o.Deployment())
			}
			objs = append(objs, o.Service())
			golden(t, tc.name, objs...)
		})
	}
}

func TestWorkloadKinds(t *testing.T) {
	p := testPipeline(v1alpha1.WorkloadDeployment, "")
	p.Spec.Workload.Replicas = ptr.To[int32](3)
	o := &Objects{Pipeline: p, Instance: testInstance()}

	dep := typed[appsv1.Deployment](t, o.Deployment())
	assert.Equal(t, "logs", dep.Name)
	assert.Equal(t, int32(3), *dep.Spec.Replicas)
	assert.Equal(t, map[string]string{LabelName: AppName, LabelPipeline: "logs"}, dep.Spec.Selector.MatchLabels)
	assert.Subset(t, dep.Spec.Template.Labels, dep.Spec.Selector.MatchLabels, "the selector must match the pods")

	sts := typed[appsv1.StatefulSet](t, o.StatefulSet())
	assert.Equal(t, "logs-headless", sts.Spec.ServiceName)
	assert.Equal(t, int32(3), *sts.Spec.Replicas)
	hl := typed[corev1.Service](t, o.HeadlessService())
	assert.Equal(t, corev1.ClusterIPNone, hl.Spec.ClusterIP)
	assert.Equal(t, sts.Spec.Selector.MatchLabels, hl.Spec.Selector)
	require.Len(t, hl.Spec.Ports, 2)
	assert.Equal(t, int32(24224), hl.Spec.Ports[0].Port, "headless Service ports are the backends")

	ds := typed[appsv1.DaemonSet](t, o.DaemonSet())
	assert.Equal(t, "logs", ds.Name)
	assert.Equal(t, dep.Spec.Template.Spec.Containers[0].Image, ds.Spec.Template.Spec.Containers[0].Image)

	for _, meta := range []metav1.ObjectMeta{dep.ObjectMeta, sts.ObjectMeta, ds.ObjectMeta, hl.ObjectMeta} {
		require.Len(t, meta.OwnerReferences, 1)
		ref := meta.OwnerReferences[0]
		assert.Equal(t, "Pipeline", ref.Kind)
		assert.Equal(t, "pl-uid", string(ref.UID))
		assert.True(t, *ref.Controller)
		assert.Equal(t, ManagedBy, meta.Labels[LabelManagedBy], "the operator's cache only sees labelled objects")
	}
}

func TestPodSecurity(t *testing.T) {
	o := &Objects{Pipeline: testPipeline("", ""), Instance: testInstance()}
	tpl := typed[corev1.PodTemplateSpec](t, o.PodTemplate())
	ps := tpl.Spec.SecurityContext
	require.NotNil(t, ps)
	assert.True(t, *ps.RunAsNonRoot)
	assert.Equal(t, PodUser, *ps.RunAsUser)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, ps.SeccompProfile.Type)
	assert.Empty(t, ps.Sysctls, "no backend below 1024: no sysctl")
	assert.False(t, *tpl.Spec.AutomountServiceAccountToken)

	require.Len(t, tpl.Spec.Containers, 1)
	c := tpl.Spec.Containers[0]
	sc := c.SecurityContext
	require.NotNil(t, sc)
	assert.True(t, *sc.RunAsNonRoot)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.False(t, *sc.Privileged)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.Empty(t, sc.Capabilities.Add)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)
	assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	assert.True(t, mounts[ConfigDir].ReadOnly)
	assert.Contains(t, mounts, "/tmp", "a writable scratch directory beside the read-only root")
}

func TestLowPortSysctl(t *testing.T) {
	p := testPipeline("", "")
	p.Status.Ports = append(p.Status.Ports, v1alpha1.PortStatus{Protocol: v1alpha1.ProtocolUDP, Frontend: 514, Backend: 514, Since: since})
	tpl := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate())
	assert.Equal(t, []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "514"}}, tpl.Spec.SecurityContext.Sysctls)
}

func TestProxyEnv(t *testing.T) {
	p := testPipeline("", "")
	p.Spec.Env = append(p.Spec.Env, corev1.EnvVar{Name: "NO_PROXY", Value: "own"},
		corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}})
	tpl := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p, Instance: testInstance()}).PodTemplate())
	c := tpl.Spec.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		_, dup := env[e.Name]
		assert.False(t, dup, "variable %s set twice", e.Name)
		env[e.Name] = e
	}
	assert.Equal(t, "http://proxy.example:3128", env["HTTP_PROXY"].Value)
	assert.Equal(t, "http://proxy.example:3128", env["http_proxy"].Value)
	assert.Equal(t, "http://proxy.example:3129", env["HTTPS_PROXY"].Value)
	assert.Equal(t, "http://proxy.example:3129", env["https_proxy"].Value)
	assert.Equal(t, "own", env["NO_PROXY"].Value, "the pipeline's own value wins")
	assert.Equal(t, "localhost,.svc,10.0.0.0/8", env["no_proxy"].Value)
	assert.Equal(t, "info", env["LEVEL"].Value)
	assert.Equal(t, "k", env["TOKEN"].ValueFrom.SecretKeyRef.Key)
	require.Len(t, c.EnvFrom, 1)
	assert.Equal(t, "creds", c.EnvFrom[0].SecretRef.Name)

	noProxy := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: testPipeline("", "")}).PodTemplate())
	for _, e := range noProxy.Spec.Containers[0].Env {
		assert.NotContains(t, []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}, e.Name, "no instance, no proxies")
	}
}

func TestImageAndArgs(t *testing.T) {
	p := testPipeline("", "")
	inst := testInstance()
	o := &Objects{Pipeline: p, Instance: inst}
	assert.Equal(t, DefaultPipelineImage, o.Image())
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.yaml"}, o.Args())
	p.Spec.Config.Format = v1alpha1.ConfigFormatClassic
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.conf"}, o.Args())
	cm := typed[corev1.ConfigMap](t, o.ConfigMap())
	assert.Equal(t, p.Spec.Config.Content, cm.Data["pipeline.conf"])
	assert.Equal(t, "logs-config", cm.Name)

	o.DefaultImage = "op/default:1"
	assert.Equal(t, "op/default:1", o.Image())
	inst.Spec.PipelineDefaults.Image = "inst/image:2"
	inst.Spec.PipelineDefaults.Args = []string{"--inst"}
	assert.Equal(t, "inst/image:2", o.Image())
	assert.Equal(t, []string{"--inst"}, o.Args())
	p.Spec.Image, p.Spec.Args = "own/image:3", []string{"--own"}
	assert.Equal(t, "own/image:3", o.Image())
	assert.Equal(t, []string{"--own"}, o.Args())
}

func TestConfigChangeRollsPods(t *testing.T) {
	p := testPipeline("", "")
	a := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate()).Annotations[AnnotationConfigHash]
	p.Spec.Config.Content += "# changed\n"
	b := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate()).Annotations[AnnotationConfigHash]
	assert.NotEmpty(t, a)
	assert.NotEqual(t, a, b)
}

func TestServicePorts(t *testing.T) {
	inst := testInstance()
	svcOf := func(o *Objects) *corev1.Service {
		ac := o.Service()
		if ac == nil {
			return nil
		}
		return typed[corev1.Service](t, ac)
	}

	t.Run("frontend is the port, backend the target", func(t *testing.T) {
		s := svcOf(&Objects{Pipeline: testPipeline("", ""), Instance: inst, NodePortRange: DefaultNodePortRange})
		require.NotNil(t, s)
		assert.Equal(t, corev1.ServiceTypeLoadBalancer, s.Spec.Type, "LoadBalancer is the default")
		require.Len(t, s.Spec.Ports, 2)
		assert.Equal(t, corev1.ServicePort{Name: "tcp-24224", Protocol: corev1.ProtocolTCP, Port: 24225,
			TargetPort: intstr.FromInt32(24224)}, s.Spec.Ports[0])
		assert.Equal(t, corev1.ServicePort{Name: "syslog", Protocol: corev1.ProtocolUDP, Port: 5140,
			TargetPort: intstr.FromInt32(5140)}, s.Spec.Ports[1])
	})
	t.Run("instance default type", func(t *testing.T) {
		i := testInstance()
		i.Spec.PipelineDefaults.ServiceType = v1alpha1.ServiceTypeClusterIP
		s := svcOf(&Objects{Pipeline: testPipeline("", ""), Instance: i})
		assert.Equal(t, corev1.ServiceTypeClusterIP, s.Spec.Type)
	})
	t.Run("port without frontend is left out", func(t *testing.T) {
		p := testPipeline("", "")
		p.Status.Ports[0].Frontend = 0
		s := svcOf(&Objects{Pipeline: p, Instance: inst})
		require.Len(t, s.Spec.Ports, 1)
		assert.Equal(t, "syslog", s.Spec.Ports[0].Name)
		p.Status.Ports = p.Status.Ports[:1]
		assert.Nil(t, (&Objects{Pipeline: p, Instance: inst}).Service(), "no frontend at all: no Service")
	})
	t.Run("node port", func(t *testing.T) {
		p := testPipeline("", v1alpha1.ServiceTypeNodePort)
		p.Status.Ports = append(p.Status.Ports, v1alpha1.PortStatus{Protocol: v1alpha1.ProtocolTCP, Frontend: 30080, Backend: 30080, Since: since})
		o := &Objects{Pipeline: p, Instance: inst, NodePortRange: DefaultNodePortRange}
		s := svcOf(o)
		assert.Equal(t, corev1.ServiceTypeNodePort, s.Spec.Type)
		assert.Zero(t, s.Spec.Ports[0].NodePort, "24225 is outside the node port range: Kubernetes allocates")
		assert.Equal(t, int32(30080), s.Spec.Ports[2].NodePort, "a frontend inside the range is requested as node port")

		o.NodePorts = map[string]int32{"tcp-24224": 31000, "tcp-30080": 32000}
		s = svcOf(o)
		assert.Equal(t, int32(31000), s.Spec.Ports[0].NodePort, "an allocated node port is kept")
		assert.Equal(t, int32(32000), s.Spec.Ports[2].NodePort)

		o.NodePorts, o.NoNodePortRequest = nil, true
		s = svcOf(o)
		assert.Zero(t, s.Spec.Ports[2].NodePort, "after a refusal nothing is requested")
	})
	t.Run("no node port for other types", func(t *testing.T) {
		p := testPipeline("", v1alpha1.ServiceTypeClusterIP)
		p.Status.Ports[0].Frontend = 30080
		s := svcOf(&Objects{Pipeline: p, Instance: inst, NodePortRange: DefaultNodePortRange, NodePorts: map[string]int32{"tcp-24224": 31000}})
		for _, sp := range s.Spec.Ports {
			assert.Zero(t, sp.NodePort)
		}
	})
}

func TestCheckName(t *testing.T) {
	assert.NoError(t, checkName("logs"))
	assert.NoError(t, checkName("a23456789012345678901234567890123456789012345678901234"))
	assert.Error(t, checkName("a234567890123456789012345678901234567890123456789012345"), "the headless Service name would pass 63")
	assert.Error(t, checkName("1logs"), "a Service name starts with a letter")
	assert.Error(t, checkName("logs.v2"))
}

// Proxy credentials are kept in a Secret: the pod template refers to it and
// never holds the URLs themselves.
func TestProxySecretReachesPodsThroughSecretKeyRef(t *testing.T) {
	const sentinel = "s3ntinel-Pa55"
	inst := testInstance()
	inst.Spec.HTTPProxy, inst.Spec.HTTPSProxy = "", ""
	inst.Spec.ProxySecretRef = &corev1.LocalObjectReference{Name: "core-proxy"}
	o := &Objects{Pipeline: testPipeline(v1alpha1.WorkloadDeployment, v1alpha1.ServiceTypeClusterIP), Instance: inst}
	d := typed[appsv1.Deployment](t, o.Deployment())
	env := map[string]corev1.EnvVar{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	for name, key := range map[string]string{"HTTP_PROXY": "httpProxy", "http_proxy": "httpProxy",
		"HTTPS_PROXY": "httpsProxy", "https_proxy": "httpsProxy"} {
		e, ok := env[name]
		require.True(t, ok, name)
		assert.Empty(t, e.Value, name)
		require.NotNil(t, e.ValueFrom, name)
		require.NotNil(t, e.ValueFrom.SecretKeyRef, name)
		assert.Equal(t, "core-proxy", e.ValueFrom.SecretKeyRef.Name, name)
		assert.Equal(t, key, e.ValueFrom.SecretKeyRef.Key, name)
		assert.True(t, *e.ValueFrom.SecretKeyRef.Optional, name)
	}
	assert.Equal(t, "localhost,.svc,10.0.0.0/8", env["NO_PROXY"].Value)
	data, err := json.Marshal(o.Deployment())
	require.NoError(t, err)
	assert.NotContains(t, string(data), sentinel)
	assert.NotContains(t, string(data), "@")
}

// A pipeline with a Secret of its own (the label tpctl sets) gets it as the
// last envFrom, not optional, and the revision on the pod template: a new
// revision rolls the pods. Without the label nothing of it appears, so
// existing pipelines keep their pod template.
func TestOwnSecretsReachPodsAndRollThem(t *testing.T) {
	p := testPipeline(v1alpha1.WorkloadDeployment, v1alpha1.ServiceTypeClusterIP)
	plain := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate())
	require.Len(t, plain.Spec.Containers[0].EnvFrom, 1, "only spec.secretRefs")
	assert.NotContains(t, plain.Annotations, AnnotationSecretsRevision)

	p.Labels = map[string]string{v1alpha1.LabelSecretsRevision: "rev1"}
	tpl := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate())
	from := tpl.Spec.Containers[0].EnvFrom
	require.Len(t, from, 2)
	assert.Equal(t, "creds", from[0].SecretRef.Name)
	assert.Equal(t, "logs-secrets", from[1].SecretRef.Name, "the pipeline's own Secret comes last and wins")
	require.NotNil(t, from[1].SecretRef.Optional)
	assert.False(t, *from[1].SecretRef.Optional, "pods wait for the Secret rather than start without it")
	assert.Equal(t, "rev1", tpl.Annotations[AnnotationSecretsRevision])
	assert.Equal(t, plain.Annotations[AnnotationConfigHash], tpl.Annotations[AnnotationConfigHash])
	assert.NotContains(t, tpl.Labels, v1alpha1.LabelSecretsRevision, "the revision is no pod label: the selector stays")

	p.Labels[v1alpha1.LabelSecretsRevision] = "rev2"
	d := typed[appsv1.Deployment](t, (&Objects{Pipeline: p}).Deployment())
	assert.Equal(t, "rev2", d.Spec.Template.Annotations[AnnotationSecretsRevision])
}

func TestFilesBesideTheConfiguration(t *testing.T) {
	p := testPipeline("", "")
	p.Spec.Files = map[string]v1alpha1.FileContent{"parsers.conf": "[PARSER]\n    Name x\n", "ca.pem": "-----BEGIN CERTIFICATE-----\n"}
	o := &Objects{Pipeline: p}
	cm := typed[corev1.ConfigMap](t, o.ConfigMap())
	assert.Equal(t, map[string]string{
		"pipeline.yaml": p.Spec.Config.Content,
		"parsers.conf":  "[PARSER]\n    Name x\n",
		"ca.pem":        "-----BEGIN CERTIFICATE-----\n",
	}, cm.Data)

	// The whole ConfigMap is mounted (no items, no subPath), so every file
	// lands in ConfigDir beside the configuration.
	tpl := typed[corev1.PodTemplateSpec](t, o.PodTemplate())
	var vol *corev1.Volume
	for i := range tpl.Spec.Volumes {
		if tpl.Spec.Volumes[i].Name == configVolume {
			vol = &tpl.Spec.Volumes[i]
		}
	}
	require.NotNil(t, vol)
	require.NotNil(t, vol.ConfigMap)
	assert.Equal(t, "logs-config", vol.ConfigMap.Name)
	assert.Empty(t, vol.ConfigMap.Items)
	mount := tpl.Spec.Containers[0].VolumeMounts[0]
	assert.Equal(t, configVolume, mount.Name)
	assert.Equal(t, "/fluent-bit/etc/tpctl", mount.MountPath)
	assert.Empty(t, mount.SubPath)
	assert.Equal(t, v1alpha1.FilesDir, ConfigDir)
}

func TestConfigurationKeyWinsOverAFileOfItsName(t *testing.T) {
	p := testPipeline("", "")
	p.Spec.Files = map[string]v1alpha1.FileContent{"pipeline.yaml": "not the configuration"}
	cm := typed[corev1.ConfigMap](t, (&Objects{Pipeline: p}).ConfigMap())
	assert.Equal(t, p.Spec.Config.Content, cm.Data["pipeline.yaml"])
}

func TestFileChangeRollsPods(t *testing.T) {
	p := testPipeline("", "")
	hash := func() string {
		return typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate()).Annotations[AnnotationConfigHash]
	}
	none := hash()
	// A pipeline without files keeps the digest it had before files existed.
	h := sha256.New()
	h.Write([]byte(p.Spec.ConfigFormat()))
	h.Write([]byte{0})
	h.Write([]byte(p.Spec.Config.Content))
	assert.Equal(t, hex.EncodeToString(h.Sum(nil))[:16], none)
	p.Spec.Files = map[string]v1alpha1.FileContent{}
	assert.Equal(t, none, hash(), "an empty map is no files")

	p.Spec.Files["parsers.conf"] = "a"
	one := hash()
	assert.NotEqual(t, none, one)
	p.Spec.Files["parsers.conf"] = "b"
	changed := hash()
	assert.NotEqual(t, one, changed, "a file's content")
	p.Spec.Files = map[string]v1alpha1.FileContent{"parsers2.conf": "b"}
	assert.NotEqual(t, changed, hash(), "a file's name")
	// Name and content boundaries are not ambiguous.
	p.Spec.Files = map[string]v1alpha1.FileContent{"a": "bc"}
	x := hash()
	p.Spec.Files = map[string]v1alpha1.FileContent{"ab": "c"}
	assert.NotEqual(t, x, hash())
	// Map order does not matter.
	p.Spec.Files = map[string]v1alpha1.FileContent{"a": "1", "b": "2", "c": "3", "d": "4"}
	first := hash()
	for range 20 {
		assert.Equal(t, first, hash())
	}
}

func TestMetricsPortByFlag(t *testing.T) {
	p := testPipeline("", "")
	o := &Objects{Pipeline: p, Instance: testInstance()}
	port, byFlag := o.MetricsPort()
	assert.Equal(t, int32(2020), port)
	assert.True(t, byFlag)
	c := typed[corev1.PodTemplateSpec](t, o.PodTemplate())
	ctr := c.Spec.Containers[0]
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.yaml", "-H", "-P", "2020"}, ctr.Args)
	assert.Equal(t, "2020", c.Annotations[AnnotationMetricsPort])
	assert.Contains(t, ctr.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 2020, Protocol: corev1.ProtocolTCP})
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.yaml"}, o.Args(), "Args stays the user's")

	// A backend on 2020 (either protocol) moves the metrics port; it is never
	// in the Service and never a frontend.
	p.Status.Ports = append(p.Status.Ports,
		v1alpha1.PortStatus{Protocol: v1alpha1.ProtocolUDP, Frontend: 2020, Backend: 2020, Since: since},
		v1alpha1.PortStatus{Protocol: v1alpha1.ProtocolTCP, Frontend: 2300, Backend: 2021, Since: since})
	c = typed[corev1.PodTemplateSpec](t, o.PodTemplate())
	assert.Equal(t, []string{"-c", "/fluent-bit/etc/tpctl/pipeline.yaml", "-H", "-P", "2022"}, c.Spec.Containers[0].Args)
	assert.Equal(t, "2022", c.Annotations[AnnotationMetricsPort])
	for _, sp := range typed[corev1.Service](t, o.Service()).Spec.Ports {
		assert.NotEqual(t, "metrics", sp.Name)
		assert.NotEqual(t, int32(2022), sp.Port)
		assert.NotEqual(t, int32(2022), sp.TargetPort.IntVal)
	}

	// The user's args are kept and the flags come after them.
	p.Spec.Args = []string{"--own"}
	assert.Equal(t, []string{"--own", "-H", "-P", "2022"}, typed[corev1.PodTemplateSpec](t, o.PodTemplate()).Spec.Containers[0].Args)
}

func TestMetricsPortHealthCheck(t *testing.T) {
	p := testPipeline("", "")
	p.Labels = map[string]string{LabelRole: RoleHealthCheck}
	p.Status.Ports = []v1alpha1.PortStatus{{Protocol: v1alpha1.ProtocolTCP, Frontend: 2020, Backend: 2020, Name: "health", Since: since}}
	o := &Objects{Pipeline: p, Instance: testInstance()}
	port, byFlag := o.MetricsPort()
	assert.Equal(t, int32(2020), port, "its configuration runs the HTTP server on the health port")
	assert.False(t, byFlag)
	c := typed[corev1.PodTemplateSpec](t, o.PodTemplate())
	assert.Equal(t, o.Args(), c.Spec.Containers[0].Args, "no flag")
	assert.Equal(t, "2020", c.Annotations[AnnotationMetricsPort])
	require.Len(t, c.Spec.Containers[0].Ports, 1, "the health port is the metrics port")
}

func TestSchedulingReachesThePodTemplate(t *testing.T) {
	p := testPipeline("", "")
	plain := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate())
	assert.Nil(t, plain.Spec.NodeSelector)
	assert.Nil(t, plain.Spec.Tolerations)

	p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	p.Spec.Tolerations = []corev1.Toleration{
		{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "logs", Effect: corev1.TaintEffectNoSchedule},
		{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(30))},
	}
	// The CRD refuses the operator's own keys; should one get through, the
	// operator's value wins.
	p.Spec.PodAnnotations = map[string]string{"example.com/team": "obs", AnnotationConfigHash: "forged"}
	tpl := typed[corev1.PodTemplateSpec](t, (&Objects{Pipeline: p}).PodTemplate())
	assert.Equal(t, map[string]string{"disk": "ssd"}, tpl.Spec.NodeSelector)
	assert.Equal(t, p.Spec.Tolerations, tpl.Spec.Tolerations)
	assert.Equal(t, "obs", tpl.Annotations["example.com/team"])
	assert.Equal(t, plain.Annotations[AnnotationConfigHash], tpl.Annotations[AnnotationConfigHash])
	assert.Equal(t, "forged", p.Spec.PodAnnotations[AnnotationConfigHash])
}
