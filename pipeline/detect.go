package pipeline

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// DetectedPort is a port that a plugin of a Fluent Bit configuration listens on.
type DetectedPort struct {
	Port Port
	// Section is "inputs" or "outputs".
	Section string
	// Index is the plugin's position among the sections of its kind, from 0.
	Index int
	// Plugin is the plugin name in lower case, such as "forward".
	Plugin string
	// Line is the 1-based line of the plugin's definition (0 when unknown).
	Line int
	// Default is true when the configuration sets no port and the plugin's
	// documented default applies.
	Default bool
}

// Source names where the port came from: "inputs[0] forward" or
// "inputs[0] forward (default port)".
func (d DetectedPort) Source() string {
	s := d.Section + "[" + strconv.Itoa(d.Index) + "] " + d.Plugin
	if d.Default {
		s += " (default port)"
	}
	return s
}

// Detection is the result of reading a configuration for listening ports.
type Detection struct {
	// Ports in configuration order.
	Ports []DetectedPort
	// Warnings describe what detection could not see, such as included files
	// or plugins bound to loopback only.
	Warnings []string
}

// ConfigError is a problem found while reading a configuration.
type ConfigError struct {
	Format v1alpha1.ConfigFormat
	// Line is 1-based; 0 when the problem has no single line.
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s config line %d: %s", e.Format, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s config: %s", e.Format, e.Msg)
}

// DetectPorts reads a Fluent Bit configuration and returns the ports its
// listening plugins use: each explicit port setting, and otherwise the
// plugin's documented default. vars supplies values for ${NAME} references in
// addition to the configuration's own variables (@SET lines, the YAML env
// section); the caller may pass the literal env values of the pipeline.
// Problems are returned as a join of *ConfigError values.
func DetectPorts(format v1alpha1.ConfigFormat, content string, vars map[string]string) (Detection, error) {
	if len(content) > v1alpha1.MaxConfigBytes {
		return Detection{}, &ConfigError{Format: format,
			Msg: fmt.Sprintf("%d bytes: larger than the %d a pipeline may have", len(content), v1alpha1.MaxConfigBytes)}
	}
	switch format {
	case v1alpha1.ConfigFormatClassic:
		return detectClassic(content, vars)
	case v1alpha1.ConfigFormatYAML, "":
		return detectYAML(content, vars)
	}
	return Detection{}, &ConfigError{Format: format, Msg: fmt.Sprintf("unknown format %q: want yaml or classic", format)}
}

// plugin is one plugin definition as the parsers see it.
type plugin struct {
	section string // "inputs" or "outputs"
	index   int
	line    int
	props   map[string]prop // keys in lower case
}

type prop struct {
	value string
	line  int
}

// listener describes how a plugin listens, given its properties.
type listener struct {
	protocol v1alpha1.Protocol
	port     int32    // documented default
	bindKeys []string // properties that hold the bind address
	listens  bool
}

// listenerFor knows the plugins that accept connections or datagrams. Only
// these expose ports; every other plugin connects out or reads locally.
func listenerFor(section, name string, mode string) (listener, error) {
	tcp := func(port int32) listener {
		return listener{protocol: v1alpha1.ProtocolTCP, port: port, bindKeys: []string{"listen"}, listens: true}
	}
	udp := func(port int32) listener {
		return listener{protocol: v1alpha1.ProtocolUDP, port: port, bindKeys: []string{"listen"}, listens: true}
	}
	if section == "outputs" {
		switch name {
		case "prometheus_exporter":
			l := tcp(2021)
			l.bindKeys = []string{"host", "listen"}
			return l, nil
		case "vivo_exporter":
			l := tcp(2025)
			l.bindKeys = []string{"host"}
			return l, nil
		}
		return listener{}, nil
	}
	switch name {
	case "forward":
		return tcp(24224), nil
	case "http":
		return tcp(9880), nil
	case "tcp":
		return tcp(5170), nil
	case "udp":
		return udp(5170), nil
	case "opentelemetry":
		return tcp(4318), nil
	case "splunk":
		return tcp(8088), nil
	case "elasticsearch":
		return tcp(9200), nil
	case "statsd":
		return udp(8125), nil
	case "collectd":
		return udp(25826), nil
	case "mqtt":
		return tcp(1883), nil
	case "prometheus_remote_write":
		return tcp(8080), nil
	case "syslog":
		switch strings.ToLower(mode) {
		case "", "unix_udp", "unix_tcp":
			return listener{}, nil // a Unix socket, no port
		case "tcp":
			return tcp(5140), nil
		case "udp":
			return udp(5140), nil
		}
		return listener{}, fmt.Errorf("mode %q: want unix_udp, unix_tcp, tcp or udp", mode)
	}
	return listener{}, nil
}

// connectsOut lists input plugins whose port setting names a remote server,
// so a port there is expected and not worth a warning.
func connectsOut(name string) bool {
	switch name {
	case "health", "prometheus_scrape", "nginx_exporter_metrics", "kafka", "exec_wasi":
		return true
	}
	return false
}

var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// expand replaces ${NAME} references from vars; an unknown name is an error,
// since guessing a port would expose the wrong one.
func expand(s string, vars map[string]string) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q refers to undefined variable %q (give it a literal env value, or turn port detection off and list the ports)", s, missing[0])
	}
	return out, nil
}

// portsOf turns plugin definitions into detected ports.
func portsOf(format v1alpha1.ConfigFormat, plugins []plugin, vars map[string]string) (Detection, error) {
	var det Detection
	var errs []error
	fail := func(line int, msg string, args ...any) {
		errs = append(errs, &ConfigError{Format: format, Line: line, Msg: fmt.Sprintf(msg, args...)})
	}
	for _, pl := range plugins {
		get := func(key string) (string, int, bool, error) {
			p, ok := pl.props[key]
			if !ok {
				return "", 0, false, nil
			}
			v, err := expand(p.value, vars)
			return strings.TrimSpace(v), p.line, true, err
		}
		name, _, ok, err := get("name")
		where := fmt.Sprintf("%s[%d]", pl.section, pl.index)
		if err != nil {
			fail(pl.line, "%s: name %s", where, err.Error())
			continue
		}
		if !ok || name == "" {
			fail(pl.line, "%s has no name", where)
			continue
		}
		name = strings.ToLower(name)
		where += " " + name
		mode, modeLine, _, err := get("mode")
		if err != nil {
			fail(modeLine, "%s: mode %s", where, err.Error())
			continue
		}
		l, err := listenerFor(pl.section, name, mode)
		if err != nil {
			fail(modeLine, "%s: %s", where, err.Error())
			continue
		}
		portVal, portLine, hasPort, portErr := get("port")
		if !l.listens {
			if hasPort && pl.section == "inputs" && !connectsOut(name) && name != "syslog" {
				det.Warnings = append(det.Warnings, fmt.Sprintf(
					"%s sets port %s but is not a plugin known to listen; list the port in spec.ports if it does", where, pl.props["port"].value))
			}
			continue
		}
		if name == "forward" {
			if up, _, ok, _ := get("unix_path"); ok && up != "" {
				continue // listens on a Unix socket instead of a port
			}
		}
		// The first bind key that is set decides; a loopback address is
		// unreachable from the Service, so there is nothing to expose.
		exposed := true
		for _, key := range l.bindKeys {
			addr, addrLine, ok, err := get(key)
			if err != nil {
				fail(addrLine, "%s: %s %s", where, key, err.Error())
				exposed = false
				break
			}
			if !ok {
				continue
			}
			if isLoopback(addr) {
				det.Warnings = append(det.Warnings, fmt.Sprintf(
					"%s listens on %s only; its port is not reachable through the Service and is not exposed", where, addr))
				exposed = false
			}
			break
		}
		if !exposed {
			continue
		}
		d := DetectedPort{Section: pl.section, Index: pl.index, Plugin: name, Line: pl.line,
			Port: Port{Protocol: l.protocol, Number: l.port}, Default: !hasPort}
		if hasPort {
			if portErr != nil {
				fail(portLine, "%s: port %s", where, portErr.Error())
				continue
			}
			n, err := ParsePortNumber(portVal)
			if err != nil {
				fail(portLine, "%s: %s", where, err.Error())
				continue
			}
			d.Port.Number = n
		}
		det.Ports = append(det.Ports, d)
	}
	return det, errors.Join(errs...)
}

func isLoopback(addr string) bool {
	a := strings.Trim(addr, "[]")
	if strings.EqualFold(a, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(a)
	return err == nil && ip.IsLoopback()
}
