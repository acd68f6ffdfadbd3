package operator

import (
	"fmt"
	"strings"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
	"github.com/tpctl/tpctl/preflight/ports"
)

// NodeReservedPorts returns the ports the node's own components hold on
// every interface: the rows of the K3s port table with binding "host" that
// apply under conditions (nil selects the node's defaults, e.g. the flannel
// VXLAN port). A pipeline never gets one of them as its frontend: a
// LoadBalancer Service on K3s binds its port on the node's addresses, where
// it would collide. Loopback-only rows do not collide and are left out.
func NodeReservedPorts(tables []ports.Table, conditions map[string]bool) (pipeline.PortSet, error) {
	rows, err := ports.Select(tables, ports.Selection{Tables: []string{ports.TableK3s}, Conditions: conditions})
	if err != nil {
		return nil, fmt.Errorf("select the node's reserved ports: %w", err)
	}
	set := pipeline.NewPortSet()
	for _, r := range rows {
		if r.Binding != ports.BindHost {
			continue
		}
		proto, err := pipeline.ParseProtocol(string(r.Protocol))
		if err != nil {
			return nil, fmt.Errorf("reserved port row %s: %w", r.Spec(), err)
		}
		for n := r.Port; n <= r.Last(); n++ {
			set.Add(pipeline.Port{Protocol: proto, Number: int32(n)})
		}
	}
	return set, nil
}

// DefaultReservedPorts is NodeReservedPorts of the built-in catalog with the
// node's default conditions.
func DefaultReservedPorts() (pipeline.PortSet, error) {
	tables, err := ports.Builtin()
	if err != nil {
		return nil, fmt.Errorf("load the built-in port tables: %w", err)
	}
	return NodeReservedPorts(tables, nil)
}

// ParseReservedPort reads "tcp/6443" or "6443/udp" (pipeline.ParsePortFlag
// syntax without a name) for the --reserve flag.
func ParseReservedPort(s string) (pipeline.Port, error) {
	if strings.Contains(s, "=") {
		return pipeline.Port{}, fmt.Errorf("reserved port %q: a name is not allowed", s)
	}
	pp, err := pipeline.ParsePortFlag(s)
	if err != nil {
		return pipeline.Port{}, fmt.Errorf("reserved port: %w", err)
	}
	proto := pp.Protocol
	if proto == "" {
		proto = v1alpha1.ProtocolTCP
	}
	return pipeline.Port{Protocol: proto, Number: pp.Port}, nil
}

// withHealthCheck returns reserved plus the instance's health-check port.
func withHealthCheck(reserved pipeline.PortSet, inst *v1alpha1.CoreInstance) pipeline.PortSet {
	out := pipeline.NewPortSet()
	for p := range reserved {
		out.Add(p)
	}
	if inst.Spec.HealthCheckEnabled() {
		out.Add(pipeline.TCP(inst.Spec.HealthCheckPort()))
	}
	return out
}
