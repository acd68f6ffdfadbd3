package manage

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// IsHealthCheck reports whether p is an instance's health-check pipeline,
// which the operator creates and owns.
func IsHealthCheck(p *v1alpha1.Pipeline) bool {
	return p.Labels[v1alpha1.LabelRole] == v1alpha1.RoleHealthCheck
}

// ServiceTypeText is the Service type in effect (as the operator reports
// it), else the one asked for, else "default".
func ServiceTypeText(p *v1alpha1.Pipeline) string {
	switch {
	case p.Status.ServiceType != "":
		return string(p.Status.ServiceType)
	case p.Spec.ServiceType != "":
		return string(p.Spec.ServiceType)
	}
	return "default"
}

// ReadyText is "ready/desired" replicas ("ready" alone for a DaemonSet,
// whose desired count depends on the nodes).
func ReadyText(p *v1alpha1.Pipeline) string {
	r := strconv.Itoa(int(p.Status.ReadyReplicas))
	if p.Spec.WorkloadKind() == v1alpha1.WorkloadDaemonSet {
		return r
	}
	return r + "/" + strconv.Itoa(int(p.Spec.ReplicaCount()))
}

// StatusText is a one-word state: the Ready condition's reason, or the
// PortsAssigned one when ports failed, or Pending before the operator wrote
// anything for this generation.
func StatusText(p *v1alpha1.Pipeline) string {
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned); c != nil &&
		c.Status == metav1.ConditionFalse && c.ObservedGeneration == p.Generation {
		return c.Reason
	}
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return "Pending"
	}
	if c.ObservedGeneration != p.Generation {
		return "Updating"
	}
	return c.Reason
}

// PortTriplet is one port for display: the assigned triplet, or the asked-for
// backend while no frontend is known (Pending).
type PortTriplet struct {
	Protocol   v1alpha1.Protocol
	Frontend   int32
	Backend    int32
	Reassigned bool
	Pending    bool
	Name       string
	Source     string
}

// Text renders "tcp/2201->2200" (frontend->backend when they differ),
// "tcp/5170", or "tcp/5170?" while pending.
func (t PortTriplet) Text() string {
	s := pipeline.Port{Protocol: t.Protocol, Number: t.Frontend}.String()
	switch {
	case t.Pending:
		return pipeline.Port{Protocol: t.Protocol, Number: t.Backend}.String() + "?"
	case t.Frontend == 0:
		return pipeline.Port{Protocol: t.Protocol, Number: t.Backend}.String() + "!"
	case t.Frontend != t.Backend:
		s += "->" + strconv.Itoa(int(t.Backend))
	}
	return s
}

// Triplets returns the pipeline's ports: the operator's status when it has
// any, else the explicit spec ports marked pending.
func Triplets(p *v1alpha1.Pipeline) []PortTriplet {
	if len(p.Status.Ports) > 0 {
		out := make([]PortTriplet, len(p.Status.Ports))
		for i, s := range p.Status.Ports {
			out[i] = PortTriplet{Protocol: s.Protocol, Frontend: s.Frontend, Backend: s.Backend,
				Reassigned: s.Reassigned || (s.Frontend != 0 && s.Frontend != s.Backend), Name: s.Name, Source: s.Source}
		}
		return out
	}
	out := make([]PortTriplet, len(p.Spec.Ports))
	for i, sp := range p.Spec.Ports {
		k := pipeline.Key(sp)
		out[i] = PortTriplet{Protocol: k.Protocol, Backend: k.Number, Pending: true, Name: sp.Name, Source: "ports[" + strconv.Itoa(i) + "]"}
	}
	return out
}

// PortsText joins the triplets' texts with ", ".
func PortsText(p *v1alpha1.Pipeline) string {
	ts := Triplets(p)
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Text()
	}
	return strings.Join(parts, ", ")
}

// HealthCheckText is "tcp/2020" or "off".
func HealthCheckText(inst *v1alpha1.CoreInstance) string {
	if !inst.Spec.HealthCheckEnabled() {
		return "off"
	}
	return pipeline.TCP(inst.Spec.HealthCheckPort()).String()
}

// InstanceReadyText is the instance's Ready condition status ("True",
// "False") or "Unknown".
func InstanceReadyText(inst *v1alpha1.CoreInstance) string {
	if c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return string(c.Status)
	}
	return "Unknown"
}
