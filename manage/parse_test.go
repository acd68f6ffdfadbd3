package manage

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

func TestParseServiceTypeAndWorkload(t *testing.T) {
	st, err := ParseServiceType("nodeport")
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, st)
	_, err = ParseServiceType("ExternalName")
	assert.EqualError(t, err, `service type "ExternalName": want ClusterIP, LoadBalancer or NodePort`)

	k, err := ParseWorkloadKind("daemonset")
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.WorkloadDaemonSet, k)
	_, err = ParseWorkloadKind("job")
	assert.EqualError(t, err, `workload "job": want deployment, daemonset or statefulset`)

	n, err := ParseReplicas(" 3 ")
	require.NoError(t, err)
	assert.Equal(t, int32(3), n)
	_, err = ParseReplicas("-1")
	assert.Error(t, err)
}

func TestParsePorts(t *testing.T) {
	got, err := ParsePorts([]string{"tcp/5170", "5140/udp", "syslog=udp/514", "5170/udp"})
	require.NoError(t, err)
	assert.Equal(t, []v1alpha1.PipelinePort{tcp(5170), udp(5140), {Protocol: v1alpha1.ProtocolUDP, Port: 514, Name: "syslog"}, udp(5170)}, got,
		"TCP and UDP may share a number")

	_, err = ParsePorts([]string{"tcp/1", "sctp/2", "tcp/0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `port 2: port "sctp/2"`)
	assert.Contains(t, err.Error(), `port 3: port "tcp/0"`)
}

func TestDetectConfigFormat(t *testing.T) {
	assert.Equal(t, v1alpha1.ConfigFormatYAML, DetectConfigFormat("p.yml", "[INPUT]"))
	assert.Equal(t, v1alpha1.ConfigFormatClassic, DetectConfigFormat("fluent-bit.conf", "pipeline:"))
	assert.Equal(t, v1alpha1.ConfigFormatClassic, DetectConfigFormat("-", "# c\n\n[INPUT]\n  Name tcp\n"))
	assert.Equal(t, v1alpha1.ConfigFormatClassic, DetectConfigFormat("", "@SET a=b\n"))
	assert.Equal(t, v1alpha1.ConfigFormatYAML, DetectConfigFormat("", "pipeline:\n  inputs: []\n"))
}

func TestConfigFromBytes(t *testing.T) {
	cfg, err := ConfigFromBytes("x", "classic", []byte("pipeline:"))
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ConfigFormatClassic, cfg.Format, "an explicit format wins")
	_, err = ConfigFromBytes("big.yaml", "", make([]byte, v1alpha1.MaxConfigBytes+1))
	assert.ErrorContains(t, err, "larger than")
	_, err = ReadConfigFile("/does/not/exist.yaml", "", nil)
	assert.ErrorContains(t, err, "read configuration /does/not/exist.yaml")
	cfg, err = ReadConfigFile("-", "", strings.NewReader("[INPUT]\n"))
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ConfigFormatClassic, cfg.Format)
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"tcp/5170", "5170/udp,5170", "syslog=udp/514", "a=b=c", "tcp/65536", "0x10", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		texts := strings.Split(s, ",")
		ports, err := ParsePorts(texts)
		if err != nil {
			assert.Nil(t, ports)
			return
		}
		require.Len(t, ports, len(texts))
		seen := map[string]bool{}
		for _, p := range ports {
			assert.True(t, p.Protocol.Valid())
			assert.True(t, p.Port >= 1 && p.Port <= 65535)
			k := pipeline.Key(p).String()
			assert.False(t, seen[k], "duplicate %s accepted", k)
			seen[k] = true
		}
	})
}

func FuzzParseServiceTypeAndWorkload(f *testing.F) {
	for _, s := range []string{"ClusterIP", "nodeport", "LOADBALANCER", "deployment", "DaemonSet", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := ParseServiceType(s); err == nil {
			assert.True(t, st.Valid())
			assert.True(t, strings.EqualFold(s, string(st)))
		}
		if k, err := ParseWorkloadKind(s); err == nil {
			assert.Contains(t, WorkloadKinds(), k)
		}
		if f, err := ParseConfigFormat(s); err == nil {
			assert.Contains(t, []v1alpha1.ConfigFormat{v1alpha1.ConfigFormatYAML, v1alpha1.ConfigFormatClassic}, f)
		}
		if _, err := ParseWaitCondition(s); err == nil {
			assert.Contains(t, []string{"", "ports", "ready"}, strings.ToLower(s))
		}
	})
}

func FuzzDetectConfigFormat(f *testing.F) {
	f.Add("a.conf", "[INPUT]")
	f.Add("", "pipeline:\n")
	f.Add("x.YAML", "")
	f.Fuzz(func(t *testing.T, path, content string) {
		got := DetectConfigFormat(path, content)
		assert.Contains(t, []v1alpha1.ConfigFormat{v1alpha1.ConfigFormatYAML, v1alpha1.ConfigFormatClassic}, got)
		if utf8.ValidString(content) && strings.HasPrefix(content, "[") && !strings.Contains(path, ".") {
			assert.Equal(t, v1alpha1.ConfigFormatClassic, got)
		}
	})
}
