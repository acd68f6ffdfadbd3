package operator

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
			set.Hold(pipeline.Port{Protocol: proto, Number: int32(n)}, pipeline.Hold{By: "the K3s node (" + r.Component + ")"})
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
	return pipeline.Key(pp), nil
}

// Packaged components of K3s that hold node ports when enabled; names as
// K3s's --disable flag spells them.
const ComponentTraefik = "traefik"

// packagedComponent returns who holds which node ports for a packaged
// component: K3s exposes Traefik through a LoadBalancer Service, so
// servicelb holds 80 and 443 on every node.
func packagedComponent(name string) (holder string, ports []pipeline.Port, ok bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case ComponentTraefik:
		return "Traefik (packaged K3s component)", []pipeline.Port{pipeline.TCP(80), pipeline.TCP(443)}, true
	}
	return "", nil, false
}

// PackagedComponentPorts returns the node ports of the enabled packaged
// components (see ComponentTraefik). An unknown name is an error.
func PackagedComponentPorts(enabled []string) (pipeline.PortSet, error) {
	set := pipeline.NewPortSet()
	for _, name := range enabled {
		holder, ports, ok := packagedComponent(name)
		if !ok {
			return nil, fmt.Errorf("packaged component %q: known: %s", name, ComponentTraefik)
		}
		for _, p := range ports {
			set.Hold(p, pipeline.Hold{By: holder})
		}
	}
	return set, nil
}

// LoadBalancerFrontends returns the ports that LoadBalancer Services other
// than inst's own pipeline Services hold: with K3s's servicelb each of them
// is a host port on every node, so a pipeline frontend on the same number
// would collide. Each port is held since its Service's creation.
func LoadBalancerFrontends(services []*corev1.Service, inst *v1alpha1.CoreInstance) pipeline.PortSet {
	set := pipeline.NewPortSet()
	for _, svc := range services {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || ownPipelineService(svc, inst) {
			continue
		}
		hold := pipeline.Hold{By: "LoadBalancer Service " + svc.Namespace + "/" + svc.Name, Since: svc.CreationTimestamp.Time}
		for _, sp := range svc.Spec.Ports {
			proto := v1alpha1.Protocol(sp.Protocol)
			if sp.Protocol == "" {
				proto = v1alpha1.ProtocolTCP
			}
			if proto.Valid() && sp.Port >= pipeline.MinPort && sp.Port <= pipeline.MaxPort {
				set.Hold(pipeline.Port{Protocol: proto, Number: sp.Port}, hold)
			}
		}
	}
	return set
}

// ownPipelineService reports whether svc is the Service of a pipeline of
// inst: those frontends are the instance's own claims.
func ownPipelineService(svc *corev1.Service, inst *v1alpha1.CoreInstance) bool {
	if svc.Namespace != inst.Namespace || svc.Labels[LabelManagedBy] != ManagedBy || svc.Labels[LabelCore] != inst.Name {
		return false
	}
	ref := metav1.GetControllerOf(svc)
	return ref != nil && ref.Kind == v1alpha1.KindPipeline && ref.APIVersion == v1alpha1.GroupVersion.String()
}
