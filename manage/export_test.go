package manage_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

const ns = "tp"

func newStore(t *testing.T) *managetest.Memory {
	t.Helper()
	m := managetest.NewMemory(ns)
	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "core"}})
	return m
}

// stored is a pipeline as it sits in a cluster: server and operator fields
// set, tpctl's and kubectl's annotations on it.
func stored(name string, port int32) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + name), ResourceVersion: "41", Generation: 3,
			CreationTimestamp: metav1.Now(),
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "tpctl", Operation: metav1.ManagedFieldsOperationUpdate}},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "u"}},
			Labels:            map[string]string{"team": "ops", v1alpha1.LabelInstance: "core"},
			Annotations: map[string]string{
				"owner":                          "ops@example.com",
				v1alpha1.AnnotationHostListeners: "tcp/22=sshd",
				manage.AnnotationLastApplied:     `{"spec":{}}`,
			},
		},
		Spec: v1alpha1.PipelineSpec{
			Instance: "core",
			Config:   v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic, Content: "[INPUT]\n    Name tcp\n    Port " + itoa(port) + "\n"},
			Ports:    []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolUDP, Port: 5140, Name: "syslog"}},
			Workload: v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadStatefulSet, Replicas: ptr.To(int32(2))},
			Image:    "cr.fluentbit.io/fluent/fluent-bit:4.0.3",
			Env: []corev1.EnvVar{{Name: "LEVEL", Value: "debug"}, {Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tokens"}, Key: "api"}}}},
			SecretRefs: []corev1.SecretEnvSource{{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-secrets"}}},
		},
		Status: v1alpha1.PipelineStatus{PortSummary: "udp/5140", ReadyReplicas: 2, ObservedGeneration: 3},
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func exportAll(t *testing.T, a manage.API, names ...string) string {
	t.Helper()
	ps, err := manage.ExportPipelines(context.Background(), a, names)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, manage.WriteExport(&buf, ps))
	return buf.String()
}

func TestExportKeepsOnlyWhatDefinesThePipeline(t *testing.T) {
	m := newStore(t)
	m.AddPipeline(stored("b", 5170))
	m.AddPipeline(stored("a", 5171))
	hc := stored("health", 2020)
	hc.Labels[v1alpha1.LabelRole] = v1alpha1.RoleHealthCheck
	m.AddPipeline(hc)

	out := exportAll(t, m)
	for _, gone := range []string{"uid-", "resourceVersion", "generation", "creationTimestamp", "managedFields",
		"ownerReferences", "status", "portSummary", "readyReplicas", "host-listeners", "last-applied", v1alpha1.LabelInstance, "health"} {
		assert.NotContains(t, out, gone)
	}
	for _, kept := range []string{"apiVersion: telemetry.tpctl.dev/v1alpha1", "kind: Pipeline", "namespace: tp", "team: ops",
		"owner: ops@example.com", "Port 5170", "name: syslog", "kind: StatefulSet", "replicas: 2", "fluent-bit:4.0.3",
		"name: tokens", "key: api", "name: b-secrets", "value: debug"} {
		assert.Contains(t, out, kept)
	}
	assert.Equal(t, 2, strings.Count(out, "---\n"), "one document per pipeline, the health check left out")
	assert.Less(t, strings.Index(out, "name: a\n"), strings.Index(out, "name: b\n"), "sorted by name")

	// Named: in the order named; a missing one is an error naming it; the
	// health-check pipeline is refused.
	named := exportAll(t, m, "b", "a")
	assert.Less(t, strings.Index(named, "name: b\n"), strings.Index(named, "name: a\n"))
	_, err := manage.ExportPipelines(context.Background(), m, []string{"nope"})
	var nf *manage.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, []string{"a", "b", "health"}, nf.Existing)
	_, err = manage.ExportPipelines(context.Background(), m, []string{"health"})
	require.ErrorContains(t, err, "health-check pipeline")
}

func TestExportRefusesACredentialInPlainText(t *testing.T) {
	const secret = "Sentinel-Pw-77aa"
	for _, env := range []corev1.EnvVar{
		{Name: "HTTPS_PROXY", Value: "http://bob:" + secret + "@proxy:3128"},
		{Name: "https_proxy", Value: "bob:" + secret + "@proxy:3128"},
		{Name: "OUT_URL", Value: "https://u:" + secret + "@logs.example.com/in"},
	} {
		m := newStore(t)
		p := stored("a", 5170)
		p.Spec.Env = append(p.Spec.Env, env)
		m.AddPipeline(p)
		ps, err := manage.ExportPipelines(context.Background(), m, nil)
		require.Error(t, err, env.Name)
		assert.Nil(t, ps)
		assert.Contains(t, err.Error(), env.Name)
		assert.NotContains(t, err.Error(), secret)
	}
	// An e-mail address or a URL without a password is not a credential.
	m := newStore(t)
	p := stored("a", 5170)
	p.Spec.Env = append(p.Spec.Env, corev1.EnvVar{Name: "MAIL", Value: "ops@example.com"}, corev1.EnvVar{Name: "URL", Value: "https://logs.example.com/in"})
	m.AddPipeline(p)
	assert.Contains(t, exportAll(t, m), "ops@example.com")
}

func TestExportThenApplyOnAnEmptyClusterRecreatesTheSpecs(t *testing.T) {
	src := newStore(t)
	src.AddPipeline(stored("a", 5170))
	src.AddPipeline(stored("b", 5171))
	file := exportAll(t, src)

	dst := newStore(t)
	docs, err := manage.ReadDocuments(strings.NewReader(file))
	require.NoError(t, err)
	res, err := manage.Apply(context.Background(), dst, docs, manage.ApplyOptions{})
	require.NoError(t, err)
	require.Len(t, res, 2)
	for _, r := range res {
		assert.Equal(t, manage.ActionCreated, r.Action)
		want, got := src.Pipeline(r.Name), dst.Pipeline(r.Name)
		require.NotNil(t, got)
		assert.Equal(t, want.Spec, got.Spec)
		assert.Equal(t, map[string]string{"team": "ops"}, got.Labels)
		assert.Equal(t, map[string]string{"owner": "ops@example.com"}, got.Annotations)
	}
	// The copy exports to the same file.
	assert.Equal(t, file, exportAll(t, dst))
}
