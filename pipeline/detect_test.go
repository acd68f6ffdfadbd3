package pipeline

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// found is a compact view of a detected port for table tests.
type found struct {
	Source string
	Port   string
	Line   int
}

func view(ds []DetectedPort) []found {
	out := []found{}
	for _, d := range ds {
		out = append(out, found{Source: d.Source(), Port: d.Port.String(), Line: d.Line})
	}
	return out
}

func TestDetectDocumentedDefaults(t *testing.T) {
	tests := []struct {
		plugin, extra string
		want          string // "" for no port
	}{
		{"forward", "", "tcp/24224"},
		{"http", "", "tcp/9880"},
		{"tcp", "", "tcp/5170"},
		{"udp", "", "udp/5170"},
		{"syslog", "", ""},
		{"syslog", "mode unix_tcp", ""},
		{"syslog", "mode unix_udp", ""},
		{"syslog", "mode tcp", "tcp/5140"},
		{"syslog", "Mode UDP", "udp/5140"},
		{"opentelemetry", "", "tcp/4318"},
		{"splunk", "", "tcp/8088"},
		{"elasticsearch", "", "tcp/9200"},
		{"statsd", "", "udp/8125"},
		{"collectd", "", "udp/25826"},
		{"mqtt", "", "tcp/1883"},
		{"prometheus_remote_write", "", "tcp/8080"},
		{"tail", "", ""},
		{"dummy", "", ""},
		{"forward", "unix_path /var/run/fluent.sock", ""},
	}
	for _, tc := range tests {
		t.Run(tc.plugin+" "+tc.extra, func(t *testing.T) {
			classic := "[INPUT]\n    Name " + tc.plugin + "\n"
			yml := "pipeline:\n  inputs:\n    - name: " + tc.plugin + "\n"
			if tc.extra != "" {
				classic += "    " + tc.extra + "\n"
				k, v, _ := cutSpace(tc.extra)
				yml += "      " + k + ": " + v + "\n"
			}
			for format, content := range map[v1alpha1.ConfigFormat]string{"classic": classic, "yaml": yml} {
				det, err := DetectPorts(format, content, nil)
				require.NoError(t, err, format)
				if tc.want == "" {
					assert.Empty(t, det.Ports, format)
					continue
				}
				require.Len(t, det.Ports, 1, format)
				assert.Equal(t, tc.want, det.Ports[0].Port.String(), format)
				assert.True(t, det.Ports[0].Default, format)
			}
		})
	}
}

func TestDetectClassic(t *testing.T) {
	content := `# a pipeline
@SET forward_port=24300
[SERVICE]
    Flush        1
    HTTP_Server  On

[INPUT]
    Name   forward
    Port   ${forward_port}

[INPUT]
    name   tail
    Path   /var/log/*.log

[input]
    NAME   syslog
    Mode   udp
    Port   1514

[FILTER]
    Name   grep
    Match  *

[OUTPUT]
    Name   prometheus_exporter
    Match  *
    Port   9999

[OUTPUT]
    Name   http
    Host   collector.example
    Port   443
`
	det, err := DetectPorts(v1alpha1.ConfigFormatClassic, content, nil)
	require.NoError(t, err)
	assert.Equal(t, []found{
		{"inputs[0] forward", "tcp/24300", 7},
		{"inputs[2] syslog", "udp/1514", 15},
		{"outputs[0] prometheus_exporter", "tcp/9999", 24},
	}, view(det.Ports))
	assert.Empty(t, det.Warnings)
}

func TestDetectYAML(t *testing.T) {
	content := `env:
  OTLP_PORT: 4317
service:
  http_server: on
pipeline:
  inputs:
    - name: opentelemetry
      port: ${OTLP_PORT}
      processors:
        logs:
          - name: content_modifier
    - name: HTTP
      Port: 8888
    - name: statsd
  filters:
    - name: grep
      port: 1
  outputs:
    - name: vivo_exporter
    - name: forward
      host: remote
      port: 24224
`
	det, err := DetectPorts(v1alpha1.ConfigFormatYAML, content, nil)
	require.NoError(t, err)
	assert.Equal(t, []found{
		{"inputs[0] opentelemetry", "tcp/4317", 7},
		{"inputs[1] http", "tcp/8888", 12},
		{"inputs[2] statsd (default port)", "udp/8125", 14},
		{"outputs[0] vivo_exporter (default port)", "tcp/2025", 19},
	}, view(det.Ports))
}

func TestDetectVariablesFromCaller(t *testing.T) {
	det, err := DetectPorts(v1alpha1.ConfigFormatYAML,
		"pipeline:\n  inputs:\n    - name: tcp\n      port: ${P}\n", map[string]string{"P": "6000"})
	require.NoError(t, err)
	require.Len(t, det.Ports, 1)
	assert.Equal(t, TCP(6000), det.Ports[0].Port)

	// The configuration's own @SET wins over the caller's value, as later
	// definitions do in Fluent Bit.
	det, err = DetectPorts(v1alpha1.ConfigFormatClassic,
		"@SET P=7000\n[INPUT]\n  Name tcp\n  Port ${P}\n", map[string]string{"P": "6000"})
	require.NoError(t, err)
	require.Len(t, det.Ports, 1)
	assert.Equal(t, TCP(7000), det.Ports[0].Port)
}

func TestDetectWarnings(t *testing.T) {
	det, err := DetectPorts(v1alpha1.ConfigFormatClassic, `@INCLUDE inputs/*.conf
[INPUT]
    Name   http
    Listen 127.0.0.1
[INPUT]
    Name   mystery
    Port   7777
[INPUT]
    Name   prometheus_scrape
    Host   10.0.0.1
    Port   9100
[INPUT]
    Name   tcp
    Port   1
    Port   2
[OUTPUT]
    Name   prometheus_exporter
    Host   ::1
`, nil)
	require.NoError(t, err)
	assert.Equal(t, []found{{"inputs[3] tcp", "tcp/2", 12}}, view(det.Ports))
	assert.Equal(t, []string{
		"line 1: @INCLUDE inputs/*.conf is not read; ports of plugins defined there are not detected",
		"line 15: Port set twice in inputs[3]; the last value is used",
		"inputs[0] http listens on 127.0.0.1 only; its port is not reachable through the Service and is not exposed",
		"inputs[1] mystery sets port 7777 but is not a plugin known to listen; list the port in spec.ports if it does",
		"outputs[0] prometheus_exporter listens on ::1 only; its port is not reachable through the Service and is not exposed",
	}, det.Warnings)

	det, err = DetectPorts(v1alpha1.ConfigFormatYAML, "includes:\n  - more.yaml\npipeline:\n  inputs: []\n", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"line 1: included files are not read; ports of plugins defined there are not detected"}, det.Warnings)
}

func TestDetectErrors(t *testing.T) {
	tests := []struct {
		name    string
		format  v1alpha1.ConfigFormat
		content string
		want    []string
	}{
		{"unclosed section", "classic", "[INPUT\n  Name tcp\n", []string{`classic config line 1: section header "[INPUT" has no closing ]`}},
		{"text after header", "classic", "[INPUT] x\n", []string{`classic config line 1: unexpected "x" after section header [INPUT]`}},
		{"key outside section", "classic", "Name tcp\n", []string{`classic config line 1: "Name tcp" is outside any [SECTION]`}},
		{"key without value", "classic", "[INPUT]\n  Name\n", []string{`classic config line 2: key "Name" has no value`}},
		{"input without name", "classic", "[INPUT]\n  Port 5170\n", []string{"classic config line 1: inputs[0] has no name"}},
		{"bad port", "classic", "[INPUT]\n  Name tcp\n  Port 5170 # comment\n", []string{`classic config line 3: inputs[0] tcp: port "5170 # comment": want a number from 1 to 65535`}},
		{"port out of range", "classic", "[INPUT]\n  Name udp\n  Port 70000\n", []string{`classic config line 3: inputs[0] udp: port "70000": want a number from 1 to 65535`}},
		{"bad syslog mode", "classic", "[INPUT]\n  Name syslog\n  Mode sctp\n", []string{`classic config line 3: inputs[0] syslog: mode "sctp": want unix_udp, unix_tcp, tcp or udp`}},
		{"undefined variable", "classic", "[INPUT]\n  Name tcp\n  Port ${NOPE}\n", []string{`classic config line 3: inputs[0] tcp: port "${NOPE}" refers to undefined variable "NOPE" (give it a literal env value, or turn port detection off and list the ports)`}},
		{"bad @SET", "classic", "@SET novalue\n", []string{`classic config line 1: @SET "novalue": want @SET NAME=VALUE`}},
		{"two errors", "classic", "[INPUT]\n  Name tcp\n  Port x\n[INPUT]\n  Name udp\n  Port 0\n", []string{
			`classic config line 3: inputs[0] tcp: port "x": want a number from 1 to 65535`,
			`classic config line 6: inputs[1] udp: port "0": want a number from 1 to 65535`,
		}},
		{"not yaml", "yaml", "pipeline: [\n", []string{"yaml config: not valid YAML: line 1: did not find expected node content"}},
		{"top level list", "yaml", "- a\n", []string{`yaml config line 1: the top level must be a mapping of sections (service, pipeline, …), not a list`}},
		{"classic given as yaml", "yaml", "[INPUT]\n    Name tcp\n", []string{`yaml config line 1: the top level must be a mapping of sections (service, pipeline, …), not a list`}},
		{"pipeline scalar", "yaml", "pipeline: 3\n", []string{`yaml config line 1: pipeline must be a mapping with inputs/filters/outputs, not the value "3"`}},
		{"inputs mapping", "yaml", "pipeline:\n  inputs:\n    name: tcp\n", []string{`yaml config line 3: pipeline.inputs must be a list of plugins, not a mapping`}},
		{"input scalar", "yaml", "pipeline:\n  inputs:\n    - tcp\n", []string{`yaml config line 3: inputs[0] must be a mapping of properties, not the value "tcp"`}},
		{"port list", "yaml", "pipeline:\n  inputs:\n    - name: tcp\n      port: [1, 2]\n", []string{`yaml config line 4: inputs[0]: port must be a plain value, not a list`}},
		{"yaml input without name", "yaml", "pipeline:\n  inputs:\n    - port: 1\n", []string{"yaml config line 3: inputs[0] has no name"}},
		{"undefined bind variable", "yaml", "pipeline:\n  inputs:\n    - name: http\n      listen: ${X}\n", []string{`yaml config line 4: inputs[0] http: listen "${X}" refers to undefined variable "X" (give it a literal env value, or turn port detection off and list the ports)`}},
		{"env list", "yaml", "env: [1]\n", []string{"yaml config line 1: env must be a mapping of NAME: value, not a list"}},
		{"unknown format", "toml", "", []string{`toml config: unknown format "toml": want yaml or classic`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			det, err := DetectPorts(tc.format, tc.content, nil)
			require.Error(t, err)
			assert.Empty(t, det.Ports)
			var msgs []string
			for _, e := range flatten(err) {
				var ce *ConfigError
				require.True(t, errors.As(e, &ce), "%T is not a *ConfigError", e)
				msgs = append(msgs, e.Error())
			}
			assert.Equal(t, tc.want, msgs)
		})
	}
}

func TestDetectEmptyConfigs(t *testing.T) {
	for format, content := range map[v1alpha1.ConfigFormat]string{
		"classic": "", "yaml": "", v1alpha1.ConfigFormat(""): "# nothing\n",
	} {
		det, err := DetectPorts(format, content, nil)
		require.NoError(t, err)
		assert.Empty(t, det.Ports)
	}
	det, err := DetectPorts("classic", "# only comments\n\n[SERVICE]\n  Flush 1\r\n", nil)
	require.NoError(t, err)
	assert.Empty(t, det.Ports)
}

func TestDetectYAMLAliases(t *testing.T) {
	det, err := DetectPorts("yaml", `common: &tcpin
  name: tcp
  port: 6001
pipeline:
  inputs:
    - *tcpin
`, nil)
	require.NoError(t, err)
	require.Len(t, det.Ports, 1)
	assert.Equal(t, TCP(6001), det.Ports[0].Port)
}
