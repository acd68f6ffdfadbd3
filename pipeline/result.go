package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Claims turns one pipeline's effective ports into claims. An entry whose
// protocol and backend appear in prev (the pipeline's status.ports) is
// unchanged: it keeps that entry's age and asks to keep its frontend. Any
// other entry is new or changed, so it is the newest component: Since = now.
// Renaming an entry or moving it in the list does not change it.
func Claims(pipeline string, entries []PortEntry, prev []v1alpha1.PortStatus, now time.Time) []Claim {
	before := make(map[Port]v1alpha1.PortStatus, len(prev))
	for _, st := range prev {
		k := Port{Protocol: st.Protocol, Number: st.Backend}
		if _, dup := before[k]; !dup {
			before[k] = st
		}
	}
	out := make([]Claim, len(entries))
	for i, e := range entries {
		c := Claim{Pipeline: pipeline, Index: i, Name: e.Name, Source: e.Source,
			Protocol: e.Port.Protocol, Backend: e.Port.Number, Since: now}
		if st, ok := before[e.Port]; ok && !st.Since.IsZero() {
			c.Since = st.Since.Time
			c.Previous = st.Frontend
		}
		out[i] = c
	}
	return out
}

// Result is the outcome of Assign for one pipeline.
type Result struct {
	// Ports is the pipeline's status.ports, in entry order.
	Ports []v1alpha1.PortStatus
	// Assigned and Conflicts are the pipeline's share of Assign's results.
	Assigned  []Assignment
	Conflicts []Conflict
}

// Group splits Assign's results by pipeline name.
func Group(assigned []Assignment, conflicts []Conflict) map[string]*Result {
	out := map[string]*Result{}
	get := func(name string) *Result {
		r := out[name]
		if r == nil {
			r = &Result{}
			out[name] = r
		}
		return r
	}
	for _, a := range assigned {
		r := get(a.Pipeline)
		r.Assigned = append(r.Assigned, a)
	}
	for _, c := range conflicts {
		r := get(c.Pipeline)
		r.Conflicts = append(r.Conflicts, c)
	}
	for _, r := range out {
		r.Ports = portStatuses(r.Assigned, r.Conflicts)
	}
	return out
}

func portStatuses(assigned []Assignment, conflicts []Conflict) []v1alpha1.PortStatus {
	type indexed struct {
		index int
		st    v1alpha1.PortStatus
	}
	var all []indexed
	for _, a := range assigned {
		all = append(all, indexed{a.Index, v1alpha1.PortStatus{
			Protocol: a.Protocol, Frontend: a.Frontend, Backend: a.Backend, Name: a.Name,
			Reassigned: a.Reassigned(), Since: metav1.NewTime(a.Since).Rfc3339Copy(), Source: a.Source,
		}})
	}
	for _, c := range conflicts {
		if c.Reason == ConflictDuplicate {
			continue // the first entry with this backend is listed already
		}
		all = append(all, indexed{c.Index, v1alpha1.PortStatus{
			Protocol: c.Protocol, Backend: c.Backend, Name: c.Name,
			Since: metav1.NewTime(c.Since).Rfc3339Copy(), Source: c.Source,
		}})
	}
	slices.SortStableFunc(all, func(a, b indexed) int { return a.index - b.index })
	out := make([]v1alpha1.PortStatus, len(all))
	for i, x := range all {
		out[i] = x.st
	}
	return out
}

// Condition returns the pipeline's PortsAssigned condition (without
// generation or transition time, which the caller sets).
func (r *Result) Condition() metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionPortsAssigned}
	if r == nil || (len(r.Assigned) == 0 && len(r.Conflicts) == 0) {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1alpha1.ReasonNoPorts, "the pipeline exposes no port"
		return c
	}
	if len(r.Conflicts) > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonPortsExhausted
		msgs := make([]string, 0, len(r.Conflicts))
		for _, x := range r.Conflicts {
			if x.Reason != ConflictExhausted {
				c.Reason = v1alpha1.ReasonInvalidPorts
			}
			msgs = append(msgs, x.Source+" "+x.Message)
		}
		c.Message = joinLimited(msgs)
		return c
	}
	var moved, contested []string
	for _, a := range r.Assigned {
		switch {
		case a.Reassigned() || a.Moved():
			moved = append(moved, a.Message())
		case a.Contested():
			contested = append(contested, a.Message())
		}
	}
	if len(moved) == 0 {
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonAssigned
		c.Message = fmt.Sprintf("%d port(s): every frontend equals its backend", len(r.Assigned))
		if len(contested) > 0 {
			c.Message = joinLimited(append([]string{c.Message}, contested...))
		}
		return c
	}
	moved = append(moved, contested...)
	c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonReassigned
	c.Message = joinLimited(moved)
	return c
}

// Contested reports whether a frontend of the pipeline is also asked for by
// a newer reserved holder (see Assignment.Contested).
func (r *Result) Contested() bool {
	if r == nil {
		return false
	}
	for _, a := range r.Assigned {
		if a.Contested() {
			return true
		}
	}
	return false
}

// joinLimited joins messages, keeping well under the 32 KiB limit of a
// condition message.
func joinLimited(msgs []string) string {
	const limit = 4096
	var b strings.Builder
	for i, m := range msgs {
		if m == "" {
			continue
		}
		if b.Len()+len(m) > limit {
			fmt.Fprintf(&b, "; and %d more", len(msgs)-i)
			break
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(m)
	}
	return b.String()
}

// Summary renders ports for the kubectl column: "tcp/5170, tcp/2201->2200"
// (frontend->backend when they differ; "?" for a port without frontend).
func Summary(ports []v1alpha1.PortStatus) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		proto := strings.ToLower(string(p.Protocol))
		switch {
		case p.Frontend == 0:
			parts[i] = proto + "/?->" + strconv.Itoa(int(p.Backend))
		case p.Frontend == p.Backend:
			parts[i] = proto + "/" + strconv.Itoa(int(p.Backend))
		default:
			parts[i] = proto + "/" + strconv.Itoa(int(p.Frontend)) + "->" + strconv.Itoa(int(p.Backend))
		}
	}
	return strings.Join(parts, ", ")
}

// FrontendPorts lists the frontends in use for a CoreInstance's status,
// ordered by protocol and port.
func FrontendPorts(assigned []Assignment) []v1alpha1.FrontendPort {
	out := make([]v1alpha1.FrontendPort, len(assigned))
	for i, a := range assigned {
		out[i] = v1alpha1.FrontendPort{Protocol: a.Protocol, Port: a.Frontend, Pipeline: a.Pipeline, Backend: a.Backend}
	}
	slices.SortFunc(out, func(a, b v1alpha1.FrontendPort) int {
		if a.Protocol != b.Protocol {
			return strings.Compare(string(a.Protocol), string(b.Protocol))
		}
		return int(a.Port - b.Port)
	})
	return out
}

// EntriesFromStatus rebuilds a pipeline's effective ports from its status.
// The operator can claim these for a pipeline whose new spec is invalid, so
// that a typo does not release frontends the pipeline still serves on.
func EntriesFromStatus(prev []v1alpha1.PortStatus) []PortEntry {
	out := make([]PortEntry, len(prev))
	for i, st := range prev {
		out[i] = PortEntry{Port: Port{Protocol: st.Protocol, Number: st.Backend}, Name: st.Name, Source: st.Source}
	}
	return out
}

// Reserved returns the ports no pipeline of the instance may use as
// frontend: taken (the node's own ports, packaged components, other
// programs' LoadBalancer frontends; not modified) and, when enabled, the
// instance's health-check port.
func Reserved(instance *v1alpha1.CoreInstanceSpec, taken PortSet) PortSet {
	s := make(PortSet, len(taken)+1)
	s.Merge(taken)
	if instance != nil && instance.HealthCheckEnabled() {
		s.Hold(TCP(instance.HealthCheckPort()), Hold{By: HealthCheckHolder})
	}
	return s
}

// HealthCheckHolder names the holder of an instance's health-check port.
const HealthCheckHolder = "the instance's health-check pipeline"

// HoldHostListeners adds to reserved the node's host listeners recorded on
// a pipeline (recorded is its v1alpha1.AnnotationHostListeners value), each
// held since the pipeline's creation: entries older than that keep their
// frontends, newer ones skip the number. A value that does not parse adds
// nothing: it could only ever add ports.
func HoldHostListeners(reserved PortSet, pipeline string, created time.Time, recorded string) {
	ls, err := ParseHostListeners(recorded)
	if err != nil {
		return
	}
	for _, l := range ls {
		reserved.Hold(l.Port, Hold{Since: created,
			By: "host program " + l.Program + " (seen on the node when pipeline " + pipeline + " was created)"})
	}
}

// HealthCheckPortName names the health-check pipeline's only port.
const HealthCheckPortName = "health"

// HealthCheckPortStatus is the status of an instance's health-check
// pipeline's port: frontend = backend = the instance's health-check port,
// which no other pipeline of the instance gets (see Reserved); its age is
// kept from prev when the port is unchanged.
func HealthCheckPortStatus(instance *v1alpha1.CoreInstanceSpec, prev []v1alpha1.PortStatus, now time.Time) v1alpha1.PortStatus {
	port := instance.HealthCheckPort()
	st := v1alpha1.PortStatus{Protocol: v1alpha1.ProtocolTCP, Frontend: port, Backend: port,
		Name: HealthCheckPortName, Since: metav1.NewTime(now), Source: "healthCheck.port"}
	for _, old := range prev {
		if old.Protocol == st.Protocol && old.Backend == port && !old.Since.IsZero() {
			st.Since = old.Since
		}
	}
	st.Since = st.Since.Rfc3339Copy()
	return st
}
