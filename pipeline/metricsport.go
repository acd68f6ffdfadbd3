package pipeline

import "github.com/tpctl/tpctl/api/v1alpha1"

// FirstMetricsPort is where the search for a pipeline's metrics port starts:
// Fluent Bit's own default HTTP port.
const FirstMetricsPort int32 = 2020

// MetricsPortAnnotation on a pipeline pod names its metrics port (the
// operator sets it on the pod template; tpctl reads it).
const MetricsPortAnnotation = v1alpha1.Group + "/metrics-port"

// MetricsPortName names the container port of Fluent Bit's built-in HTTP
// server in a pipeline pod. It is never in the pipeline's Service.
const MetricsPortName = "metrics"

// MetricsPort returns the port of Fluent Bit's built-in HTTP server in the
// pods of a pipeline with the given assigned ports: the first port from
// FirstMetricsPort up that is no backend of the pipeline, of either
// protocol, so it can never collide with a port the pipeline's own
// configuration listens on. It is internal to the pod: no frontend, no
// Service port. ok is false only when every port from FirstMetricsPort to
// MaxPort is a backend.
func MetricsPort(ports []v1alpha1.PortStatus) (port int32, ok bool) {
	used := make(map[int32]bool, len(ports))
	for _, st := range ports {
		used[st.Backend] = true
	}
	for p := FirstMetricsPort; p <= MaxPort; p++ {
		if !used[p] {
			return p, true
		}
	}
	return 0, false
}
