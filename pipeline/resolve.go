package pipeline

import (
	"errors"
	"fmt"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// PortEntry is one port of a pipeline after merging spec.ports with the
// ports detected from its configuration.
type PortEntry struct {
	Port Port
	// Name is the entry's name from spec.ports, or empty.
	Name string
	// Source is "ports[i]" for spec entries, or the plugin that listens
	// ("inputs[0] forward (default port)") for detected ones.
	Source string
}

// Resolved is the effective port list of a pipeline.
type Resolved struct {
	// Ports: the spec's entries in order, then detected ports that no spec
	// entry already lists, in configuration order.
	Ports []PortEntry
	// Warnings from port detection (for example included files not read).
	Warnings []string
}

// ResolvePorts validates spec and returns its effective ports. A spec entry
// and a detected port with the same protocol and number are one port (the
// spec entry names it); two detected plugins on the same protocol and number
// are a clash, reported like a duplicate spec entry. Literal values of
// spec.env resolve ${NAME} references in the configuration. The error is nil
// or a *ValidationError.
func ResolvePorts(spec *v1alpha1.PipelineSpec) (Resolved, error) {
	probs := validateFields(spec)
	var res Resolved
	seen := map[Port]string{}
	for i, p := range spec.Ports {
		key := Key(p)
		if _, dup := seen[key]; dup {
			continue // reported by validateFields
		}
		src := fmt.Sprintf("ports[%d]", i)
		seen[key] = src
		res.Ports = append(res.Ports, PortEntry{Port: key, Name: p.Name, Source: src})
	}
	if spec.AutoDetect() && spec.Config.Content != "" {
		det, err := DetectPorts(spec.ConfigFormat(), spec.Config.Content, literalEnv(spec))
		if err != nil {
			for _, e := range flatten(err) {
				probs = append(probs, FieldError{Field: "config", Message: e.Error()})
			}
		}
		res.Warnings = det.Warnings
		detectedBy := map[Port]string{}
		for _, d := range det.Ports {
			if prev, dup := detectedBy[d.Port]; dup {
				probs = append(probs, FieldError{Message: fmt.Sprintf(
					"config %s %s and %s %s share a backend", prev, d.Port, d.Source(), d.Port)})
				continue
			}
			detectedBy[d.Port] = d.Source()
			if _, listed := seen[d.Port]; listed {
				continue
			}
			seen[d.Port] = d.Source()
			res.Ports = append(res.Ports, PortEntry{Port: d.Port, Source: d.Source()})
		}
	}
	if len(probs) > 0 {
		return Resolved{}, &ValidationError{Problems: probs}
	}
	return res, nil
}

// literalEnv returns the env entries with literal values; values from
// Secrets or fields are not known without the cluster.
func literalEnv(spec *v1alpha1.PipelineSpec) map[string]string {
	vars := map[string]string{}
	for _, e := range spec.Env {
		if e.ValueFrom == nil {
			vars[e.Name] = e.Value
		}
	}
	return vars
}

// flatten unwraps errors.Join results.
func flatten(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}
