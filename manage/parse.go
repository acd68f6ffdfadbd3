package manage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// ParseServiceType accepts ClusterIP, LoadBalancer or NodePort in any
// letter case.
func ParseServiceType(s string) (v1alpha1.ServiceType, error) {
	for _, t := range ServiceTypes() {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("service type %q: want ClusterIP, LoadBalancer or NodePort", s)
}

// ServiceTypes lists the Service types a pipeline may use.
func ServiceTypes() []v1alpha1.ServiceType {
	return []v1alpha1.ServiceType{v1alpha1.ServiceTypeClusterIP, v1alpha1.ServiceTypeLoadBalancer, v1alpha1.ServiceTypeNodePort}
}

// ParseWorkloadKind accepts deployment, daemonset or statefulset in any
// letter case.
func ParseWorkloadKind(s string) (v1alpha1.WorkloadKind, error) {
	for _, k := range WorkloadKinds() {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	return "", fmt.Errorf("workload %q: want deployment, daemonset or statefulset", s)
}

// WorkloadKinds lists the workload kinds a pipeline may use.
func WorkloadKinds() []v1alpha1.WorkloadKind {
	return []v1alpha1.WorkloadKind{v1alpha1.WorkloadDeployment, v1alpha1.WorkloadDaemonSet, v1alpha1.WorkloadStatefulSet}
}

// ParseReplicas parses a replica count: a whole number from 0.
func ParseReplicas(s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("replicas %q: want a whole number from 0", s)
	}
	return int32(n), nil
}

// ParsePorts parses port entries as pipeline.ParsePortFlag reads them
// ("tcp/5170", "5170/udp", "syslog=udp/5140") and checks that no backend is
// listed twice. A bad entry is reported with its position; a duplicate is a
// *DuplicateBackendError naming both entries.
func ParsePorts(texts []string) ([]v1alpha1.PipelinePort, error) {
	out := make([]v1alpha1.PipelinePort, 0, len(texts))
	var errs []error
	for i, s := range texts {
		p, err := pipeline.ParsePortFlag(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("port %d: %w", i+1, err))
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := CheckDuplicateBackends(out, texts); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckDuplicateBackends returns a *DuplicateBackendError for the first
// backend (protocol, port) that appears twice, or nil. texts, when it has
// one entry per port, gives the entries as the user wrote them; otherwise
// they are rendered in --port syntax.
func CheckDuplicateBackends(ports []v1alpha1.PipelinePort, texts []string) error {
	j, i, dup := pipeline.DuplicateBackend(ports)
	if !dup {
		return nil
	}
	text := func(i int) string {
		if len(texts) == len(ports) {
			return texts[i]
		}
		return pipeline.FormatPortFlag(ports[i])
	}
	return &DuplicateBackendError{Port: pipeline.Key(ports[i]), First: PortRef{Index: j, Text: text(j)}, Second: PortRef{Index: i, Text: text(i)}}
}

// DetectConfigFormat tells a Fluent Bit configuration's format from its file
// name (.yaml/.yml → yaml, .conf/.ini → classic) and, failing that, from
// its content (a line starting with '[' or '@' → classic).
func DetectConfigFormat(path, content string) v1alpha1.ConfigFormat {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return v1alpha1.ConfigFormatYAML
	case ".conf", ".ini":
		return v1alpha1.ConfigFormatClassic
	}
	for _, line := range strings.Split(content, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasPrefix(t, "[") || strings.HasPrefix(t, "@") {
			return v1alpha1.ConfigFormatClassic
		}
		return v1alpha1.ConfigFormatYAML
	}
	return v1alpha1.ConfigFormatYAML
}

// ParseConfigFormat accepts yaml or classic in any letter case.
func ParseConfigFormat(s string) (v1alpha1.ConfigFormat, error) {
	switch strings.ToLower(s) {
	case "yaml", "yml":
		return v1alpha1.ConfigFormatYAML, nil
	case "classic", "conf":
		return v1alpha1.ConfigFormatClassic, nil
	}
	return "", fmt.Errorf("config format %q: want yaml or classic", s)
}
