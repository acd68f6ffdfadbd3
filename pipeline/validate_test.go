package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "%T is not a *ValidationError", err)
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.Error()
	}
	return out
}

func TestValidate(t *testing.T) {
	off := ptr(false)
	tests := []struct {
		name string
		spec v1alpha1.PipelineSpec
		want []string
	}{
		{name: "minimal", spec: v1alpha1.PipelineSpec{Instance: "core"}},
		{
			name: "seed: TCP 1850 and TCP 1851 in one pipeline",
			spec: v1alpha1.PipelineSpec{Instance: "core", Ports: []v1alpha1.PipelinePort{{Protocol: "TCP", Port: 1850}, {Protocol: "TCP", Port: 1851}}},
		},
		{
			name: "seed: TCP 1850 twice is rejected, naming both entries",
			spec: v1alpha1.PipelineSpec{Instance: "core", Ports: []v1alpha1.PipelinePort{{Port: 1850}, {Protocol: "UDP", Port: 1850}, {Protocol: "TCP", Port: 1850}}},
			want: []string{"ports[0] tcp/1850 and ports[2] tcp/1850 share a backend"},
		},
		{
			name: "field checks",
			spec: v1alpha1.PipelineSpec{
				Config:      v1alpha1.PipelineConfig{Format: "toml"},
				ServiceType: "ExternalName",
				Workload:    v1alpha1.WorkloadSpec{Kind: "Job", Replicas: ptr(int32(-1))},
				Ports: []v1alpha1.PipelinePort{
					{Protocol: "SCTP", Port: 1}, {Port: 0}, {Port: 70000}, {Port: 1, Name: "Bad_Name"},
					{Port: 2, Name: "udp-2"}, {Port: 3, Name: "web"}, {Port: 4, Name: "web"},
				},
			},
			want: []string{
				"instance: required: name the CoreInstance the pipeline belongs to",
				`config.format: "toml": want yaml or classic`,
				`serviceType: "ExternalName": want ClusterIP, LoadBalancer or NodePort`,
				`workload.kind: "Job": want Deployment, DaemonSet or StatefulSet`,
				"workload.replicas: -1: must not be negative",
				`ports[0].protocol: "SCTP": want TCP or UDP`,
				"ports[1].port: 0: want a number from 1 to 65535",
				"ports[2].port: 70000: want a number from 1 to 65535",
				`ports[3].name: name "Bad_Name": use lowercase letters, digits and single hyphens inside`,
				`ports[4].name: name "udp-2" is reserved for port udp/2`,
				`ports[5] and ports[6] share the name "web"`,
			},
		},
		{
			name: "DaemonSet with replicas",
			spec: v1alpha1.PipelineSpec{Instance: "core", Workload: v1alpha1.WorkloadSpec{Kind: "DaemonSet", Replicas: ptr(int32(2))}},
			want: []string{"workload.replicas: cannot be set for a DaemonSet: it runs one pod per node"},
		},
		{
			name: "two detected inputs on one backend",
			spec: v1alpha1.PipelineSpec{Instance: "core", Config: v1alpha1.PipelineConfig{Format: "classic",
				Content: "[INPUT]\n  Name tcp\n[INPUT]\n  Name http\n  Port 5170\n"}},
			want: []string{"config inputs[0] tcp (default port) tcp/5170 and inputs[1] http tcp/5170 share a backend"},
		},
		{
			name: "broken config is reported when detection is on",
			spec: v1alpha1.PipelineSpec{Instance: "core", Config: v1alpha1.PipelineConfig{Content: "pipeline: [\n"}},
			want: []string{"config: yaml config: not valid YAML: line 1: did not find expected node content"},
		},
		{
			name: "and ignored when it is off",
			spec: v1alpha1.PipelineSpec{Instance: "core", AutoDetectPorts: off, Config: v1alpha1.PipelineConfig{Content: "pipeline: [\n"}},
		},
		{
			name: "config too large",
			spec: v1alpha1.PipelineSpec{Instance: "core", AutoDetectPorts: off, Config: v1alpha1.PipelineConfig{Content: strings.Repeat("#", v1alpha1.MaxConfigBytes+1)}},
			want: []string{"config.content: 524289 bytes: at most 524288"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, problems(t, Validate(&tc.spec)))
		})
	}
}

func TestValidationErrorText(t *testing.T) {
	err := Validate(&v1alpha1.PipelineSpec{Instance: "core", Ports: []v1alpha1.PipelinePort{{Port: 5170}, {Port: 1}, {Port: 5170}}})
	require.EqualError(t, err, "invalid pipeline: ports[0] tcp/5170 and ports[2] tcp/5170 share a backend")
}

func TestResolvePortsMergesSpecAndConfig(t *testing.T) {
	spec := v1alpha1.PipelineSpec{
		Instance: "core",
		Ports:    []v1alpha1.PipelinePort{{Protocol: "TCP", Port: 24224, Name: "fwd"}, {Protocol: "UDP", Port: 514}},
		Env: []corev1.EnvVar{
			{Name: "HTTP_PORT", Value: "9000"},
			{Name: "SECRET_PORT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "p"}}},
		},
		Config: v1alpha1.PipelineConfig{Format: "yaml", Content: `pipeline:
  inputs:
    - name: forward
    - name: http
      port: ${HTTP_PORT}
    - name: udp
`},
	}
	res, err := ResolvePorts(&spec)
	require.NoError(t, err)
	assert.Equal(t, []PortEntry{
		{Port: TCP(24224), Name: "fwd", Source: "ports[0]"},
		{Port: UDP(514), Source: "ports[1]"},
		{Port: TCP(9000), Source: "inputs[1] http"},
		{Port: UDP(5170), Source: "inputs[2] udp (default port)"},
	}, res.Ports)

	// Values from Secrets are unknown here: detection says so.
	spec.Config.Content = "pipeline:\n  inputs:\n    - name: tcp\n      port: ${SECRET_PORT}\n"
	_, err = ResolvePorts(&spec)
	assert.ErrorContains(t, err, `refers to undefined variable "SECRET_PORT"`)

	// With detection off only the spec's ports count.
	spec.AutoDetectPorts = ptr(false)
	res, err = ResolvePorts(&spec)
	require.NoError(t, err)
	assert.Len(t, res.Ports, 2)
}

func TestValidatePipelineName(t *testing.T) {
	assert.NoError(t, ValidatePipelineName("syslog-in"))
	assert.NoError(t, ValidatePipelineName(strings.Repeat("a", 54)))
	assert.ErrorContains(t, ValidatePipelineName(strings.Repeat("a", 55)), "at most 54 characters")
	assert.ErrorContains(t, ValidatePipelineName("1abc"), `name "1abc"`)
	assert.EqualError(t, ValidatePipelineName(""), "name is required")
}

func FuzzValidatePipelineName(f *testing.F) {
	for _, s := range []string{"a", "syslog-in", "A", "-a", "a-", strings.Repeat("a", 60)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidatePipelineName(s) == nil {
			assert.LessOrEqual(t, len(s), 54)
			assert.Regexp(t, `^[a-z]([-a-z0-9]*[a-z0-9])?$`, s)
		}
	})
}

func TestKeyAndDuplicateBackend(t *testing.T) {
	assert.Equal(t, TCP(5170), Key(v1alpha1.PipelinePort{Port: 5170}), "an empty protocol is TCP")
	assert.Equal(t, UDP(5170), Key(v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: 5170}))
	ports := []v1alpha1.PipelinePort{{Port: 1}, {Protocol: v1alpha1.ProtocolUDP, Port: 1}, {Port: 2}, {Protocol: v1alpha1.ProtocolTCP, Port: 1}}
	first, second, dup := DuplicateBackend(ports)
	assert.True(t, dup)
	assert.Equal(t, []int{0, 3}, []int{first, second}, "an empty protocol and TCP are the same backend")
	_, _, dup = DuplicateBackend(ports[:3])
	assert.False(t, dup, "TCP and UDP may share a number")
}
