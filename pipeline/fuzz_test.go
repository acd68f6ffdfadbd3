package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func checkDetection(t *testing.T, det Detection, err error) {
	t.Helper()
	if err != nil {
		assert.Empty(t, det.Ports)
		assert.NotEmpty(t, err.Error())
		return
	}
	for _, d := range det.Ports {
		assert.True(t, d.Port.Protocol.Valid(), "protocol %q", d.Port.Protocol)
		assert.GreaterOrEqual(t, d.Port.Number, int32(MinPort))
		assert.LessOrEqual(t, d.Port.Number, int32(MaxPort))
		assert.Contains(t, []string{"inputs", "outputs"}, d.Section)
		assert.NotEmpty(t, d.Plugin)
	}
}

func FuzzDetectClassic(f *testing.F) {
	for _, seed := range []string{
		"[INPUT]\n    Name forward\n    Port 24224\n",
		"@SET p=1\n[INPUT]\n  Name syslog\n  Mode tcp\n  Port ${p}\n[OUTPUT]\n  Name prometheus_exporter\n",
		"[SERVICE]\n  Flush 1\n[INPUT]\n  Name http\n  Listen 127.0.0.1\n",
		"[INPUT\n", "Name x\n", "[INPUT]\n  Port ${}\n", "@INCLUDE a.conf\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, content string) {
		det, err := DetectPorts(v1alpha1.ConfigFormatClassic, content, map[string]string{"PORT": "5170"})
		checkDetection(t, det, err)
	})
}

func FuzzDetectYAML(f *testing.F) {
	for _, seed := range []string{
		"pipeline:\n  inputs:\n    - name: forward\n      port: 24224\n",
		"env:\n  P: 1\npipeline:\n  inputs:\n    - name: syslog\n      mode: udp\n      port: ${P}\n  outputs:\n    - name: vivo_exporter\n",
		"a: &x {name: tcp}\npipeline: {inputs: [*x, *x]}\n",
		"pipeline: [\n", "- 1\n", "includes: [a]\n", "pipeline:\n  inputs:\n    - name: tcp\n      port: {a: 1}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, content string) {
		det, err := DetectPorts(v1alpha1.ConfigFormatYAML, content, map[string]string{"PORT": "5170"})
		checkDetection(t, det, err)
	})
}

func FuzzParsePortFlag(f *testing.F) {
	for _, seed := range []string{"tcp/5170", "5170/udp", "5170", "syslog=udp/5140", "TCP/1", "tcp/0", "tcp/65536",
		"x=tcp/1", "tcp-2=tcp/2", "=tcp/1", "tcp/ 1", "sctp/1", "a=b=tcp/1", "udp/udp"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePortFlag(s)
		if err != nil {
			assert.Equal(t, v1alpha1.PipelinePort{}, p)
			assert.Contains(t, err.Error(), "port ")
			return
		}
		require.True(t, p.Protocol.Valid())
		require.GreaterOrEqual(t, p.Port, int32(MinPort))
		require.LessOrEqual(t, p.Port, int32(MaxPort))
		if p.Name != "" {
			require.NoError(t, ValidatePortName(p.Name))
		}
		// What the CLI prints, it reads back unchanged.
		again, err := ParsePortFlag(FormatPortFlag(p))
		require.NoError(t, err)
		assert.Equal(t, p, again)
		// And the spec it yields passes validation.
		require.NoError(t, Validate(&v1alpha1.PipelineSpec{Instance: "i", Ports: []v1alpha1.PipelinePort{p}}))
	})
}
