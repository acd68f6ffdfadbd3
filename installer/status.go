package installer

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/systemd"
)

// NodeStatus is the node as the API server reports it.
type NodeStatus struct {
	Name           string `json:"name"`
	Ready          bool   `json:"ready"`
	Reason         string `json:"reason,omitempty"`
	KubeletVersion string `json:"kubeletVersion,omitempty"`
	InternalIP     string `json:"internalIP,omitempty"`
}

// StatusReport is `tpctl status`.
type StatusReport struct {
	// Installed: the install state exists; Completed: the last install
	// ran to its end.
	Installed bool      `json:"installed"`
	Completed bool      `json:"completed"`
	K3s       K3sRecord `json:"k3s"`
	// Unit is k3s.service as systemd sees it (UnitError when it cannot be
	// read).
	Unit      *systemd.UnitState `json:"unit,omitempty"`
	UnitError string             `json:"unitError,omitempty"`
	// Role is "agent" on a host `tpctl join` joined ("" on a server).
	Role      string      `json:"role,omitempty"`
	Node      *NodeStatus `json:"node,omitempty"`
	NodeError string      `json:"nodeError,omitempty"`
	// Nodes are the cluster's nodes (on a server; NodesError when they
	// cannot be listed).
	Nodes      []ClusterNode      `json:"nodes,omitempty"`
	NodesError string             `json:"nodesError,omitempty"`
	Payload    bundle.Description `json:"payload"`
	// Operator, Instances and Pipelines (the number of Pipeline objects in
	// every namespace) come from the API server.
	Operator  *OperatorStatus  `json:"operator,omitempty"`
	Instances []InstanceStatus `json:"instances,omitempty"`
	Pipelines *int             `json:"pipelines,omitempty"`
	// Unavailable names each of operator, instance and pipelines that
	// cannot be reported, and why.
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

// Status reads the install state, the unit and the node. Each part that
// cannot be read is reported as such; the report is never half-silent.
func Status(ctx context.Context, o Options) StatusReport {
	env := newEnv(o)
	var rep StatusReport
	if o.Bundle != nil {
		rep.Payload = o.Bundle.Describe()
	}
	rep.Unavailable = map[string]string{}
	noAPI := func(why string) {
		for _, k := range []string{"operator", "instance", "pipelines"} {
			rep.Unavailable[k] = "unavailable: " + why
		}
	}
	if err := env.State.Load(); err != nil {
		rep.NodeError = err.Error()
		noAPI(err.Error())
		return rep
	}
	rep.Installed = env.State.Exists()
	st := env.State.Get()
	rep.Completed, rep.K3s, rep.Role = st.Completed, st.K3s, st.Role
	kubeconfig := env.Kubeconfig()
	if AgentState(st) {
		// An agent reads its own Node with its kubelet's credentials.
		env.join = &joinRun{}
		kubeconfig = env.FS.Path(KubeletKubeconfig(stateConfig(st)))
	}
	if mgr, err := env.Manager(ctx); err != nil {
		rep.UnitError = err.Error()
	} else if us, err := mgr.State(ctx, env.unitName()); err != nil {
		rep.UnitError = err.Error()
	} else {
		rep.Unit = &us
	}
	name := st.Config.NodeName
	switch {
	case !rep.Installed:
		rep.NodeError = "not installed"
	case env.Cluster == nil:
		rep.NodeError = "no Kubernetes client configured"
	default:
		if _, err := os.Stat(kubeconfig); err != nil {
			rep.NodeError = fmt.Sprintf("no kubeconfig: %s", err)
			break
		}
		cl, err := env.Cluster(kubeconfig)
		if err != nil {
			rep.NodeError = err.Error()
			break
		}
		n, err := cl.Node(ctx, name)
		if err != nil {
			rep.NodeError = err.Error()
			break
		}
		rep.Node = nodeStatus(n)
		if nl, ok := cl.(NodeLister); ok && !AgentState(st) {
			if all, err := nl.Nodes(ctx); err != nil {
				rep.NodesError = err.Error()
			} else {
				rep.Nodes = ClusterNodes(all)
			}
		}
	}
	if AgentState(st) {
		noAPI("this host is an agent; run `tpctl status` on the server")
	} else if _, err := os.Stat(env.Kubeconfig()); rep.Installed && err == nil {
		chartStatus(ctx, env, &rep)
	} else {
		noAPI(rep.NodeError)
	}
	return rep
}

func nodeStatus(n *corev1.Node) *NodeStatus {
	ns := &NodeStatus{Name: n.Name, KubeletVersion: n.Status.NodeInfo.KubeletVersion}
	ns.Ready, ns.Reason = NodeReady(n)
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ns.InternalIP = a.Address
			break
		}
	}
	return ns
}

// WriteStatus renders the report as text.
func WriteStatus(w io.Writer, r StatusReport) error {
	var b strings.Builder
	switch {
	case !r.Installed:
		b.WriteString("installed:  no (tpctl has installed nothing on this host)\n")
	case r.Completed:
		b.WriteString("installed:  yes\n")
	default:
		b.WriteString("installed:  partly (the last install did not finish; run `tpctl install` again)\n")
	}
	if r.Role != "" {
		fmt.Fprintf(&b, "role:       %s\n", r.Role)
	}
	if r.K3s.Version != "" || r.K3s.Source != "" {
		fmt.Fprintf(&b, "k3s:        %s (from %s)\n", orUnknown(r.K3s.Version), orUnknown(r.K3s.Source))
	}
	if r.Unit != nil {
		fmt.Fprintf(&b, "unit:       %s %s/%s, %s, restarts %d\n", r.Unit.Name, r.Unit.ActiveState, r.Unit.SubState, orUnknown(r.Unit.UnitFileState), r.Unit.NRestarts)
	} else {
		fmt.Fprintf(&b, "unit:       unknown (%s)\n", r.UnitError)
	}
	if r.Node != nil {
		ready := "NotReady (" + r.Node.Reason + ")"
		if r.Node.Ready {
			ready = "Ready"
		}
		fmt.Fprintf(&b, "node:       %s %s, kubelet %s, %s\n", r.Node.Name, ready, orUnknown(r.Node.KubeletVersion), orUnknown(r.Node.InternalIP))
	} else {
		fmt.Fprintf(&b, "node:       unknown (%s)\n", r.NodeError)
	}
	if len(r.Nodes) > 0 {
		fmt.Fprintf(&b, "nodes:      %d\n", len(r.Nodes))
		writeNodes(&b, r.Nodes)
	} else if r.NodesError != "" {
		fmt.Fprintf(&b, "nodes:      unknown (%s)\n", r.NodesError)
	}
	pl := "complete"
	if !r.Payload.Complete {
		pl = fmt.Sprintf("%d artifacts, %d missing (see `tpctl version`)", len(r.Payload.Artifacts), len(r.Payload.Missing))
	}
	fmt.Fprintf(&b, "payload:    %s\n", pl)
	if r.Operator != nil {
		fmt.Fprintf(&b, "operator:   %s/%s %d/%d ready, image %s\n", r.Operator.Namespace, r.Operator.Name,
			r.Operator.ReadyReplicas, r.Operator.Replicas, orUnknown(r.Operator.Image))
	}
	for _, in := range r.Instances {
		ready := "Ready"
		if !in.Ready {
			ready = "NotReady (" + in.Reason + ")"
		}
		hc := "health check off"
		if in.HealthCheckEnabled {
			hc = fmt.Sprintf("health check tcp/%d", in.HealthCheckPort)
		}
		fmt.Fprintf(&b, "instance:   %s/%s %s, %s, %d pipeline(s)\n", in.Namespace, in.Name, ready, hc, in.Pipelines)
	}
	if r.Pipelines != nil {
		fmt.Fprintf(&b, "pipelines:  %d\n", *r.Pipelines)
	}
	for _, k := range []string{"operator", "instance", "pipelines"} {
		if why, ok := r.Unavailable[k]; ok {
			fmt.Fprintf(&b, "%-11s %s\n", k+":", why)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
