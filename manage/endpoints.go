package manage

import (
	"context"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Endpoints implements API: the pipeline, its Service (named like the
// pipeline) and the nodes' addresses give each port's client address.
func (c *Client) Endpoints(ctx context.Context, name string) ([]Endpoint, error) {
	p, err := c.GetPipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	svc := &corev1.Service{}
	if err := c.c.Get(ctx, c.key(p.Name), svc); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, apiError(fmt.Sprintf("get Service of pipeline %q", name), err)
		}
		svc = nil
	}
	var nodes corev1.NodeList
	if err := c.c.List(ctx, &nodes); err != nil {
		// Without node addresses NodePort endpoints say so; the rest still works.
		nodes.Items = nil
	}
	return ComputeEndpoints(p, svc, nodes.Items), nil
}

// ComputeEndpoints derives each assigned port's endpoint from the pipeline's
// status, its Service (nil when not created yet) and the cluster's nodes.
//
//   - ClusterIP: cluster IP and frontend, reachable from inside the cluster.
//   - NodePort: a node's address and the Service port's node port.
//   - LoadBalancer: the load balancer's address and the frontend; while the
//     load balancer has no address, the node port as for NodePort.
func ComputeEndpoints(p *v1alpha1.Pipeline, svc *corev1.Service, nodes []corev1.Node) []Endpoint {
	st := p.Status.ServiceType
	if st == "" && svc != nil {
		st = v1alpha1.ServiceType(svc.Spec.Type)
	}
	if st == "" {
		st = p.Spec.EffectiveServiceType(nil)
	}
	node := NodeAddress(nodes)
	out := make([]Endpoint, 0, len(p.Status.Ports))
	for _, ps := range p.Status.Ports {
		e := Endpoint{Name: ps.Name, Protocol: ps.Protocol, Frontend: ps.Frontend, Backend: ps.Backend,
			Reassigned: ps.Reassigned, ServiceType: st, Source: ps.Source}
		switch {
		case ps.Frontend == 0:
			e.Note = "no frontend: no free port between the backend and 65535"
		case svc == nil:
			e.Note = "Service not created yet"
		default:
			fillAddress(&e, p, svc, node)
		}
		out = append(out, e)
	}
	return out
}

func fillAddress(e *Endpoint, p *v1alpha1.Pipeline, svc *corev1.Service, node string) {
	e.DNS = hostPort(p.Name+"."+p.Namespace+".svc", e.Frontend)
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		q := &svc.Spec.Ports[i]
		proto := q.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if proto == e.Protocol.CoreV1() && q.Port == e.Frontend {
			sp = q
			break
		}
	}
	if sp == nil {
		e.Note = "not in the Service yet"
		return
	}
	e.NodePort = sp.NodePort
	viaNode := func(prefix string) {
		switch {
		case sp.NodePort == 0:
			e.Note = prefix + "no node port allocated yet"
		case node == "":
			e.Note = prefix + "node port " + strconv.Itoa(int(sp.NodePort)) + "; no node address known"
		default:
			e.Address, e.Scope = hostPort(node, sp.NodePort), ScopeNode
			if prefix != "" {
				e.Note = prefix + "using the node port"
			} else if sp.NodePort != e.Frontend {
				e.Note = "node port differs from the frontend (outside the node port range or taken)"
			}
		}
	}
	switch v1alpha1.ServiceType(svc.Spec.Type) {
	case v1alpha1.ServiceTypeNodePort:
		viaNode("")
	case v1alpha1.ServiceTypeLoadBalancer:
		for _, in := range svc.Status.LoadBalancer.Ingress {
			host := in.IP
			if host == "" {
				host = in.Hostname
			}
			if host != "" {
				e.Address, e.Scope = hostPort(host, e.Frontend), ScopeExternal
				return
			}
		}
		viaNode("load balancer address pending; ")
	default:
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			e.Address, e.Scope = hostPort(ip, e.Frontend), ScopeCluster
			return
		}
		e.Note = "no cluster IP yet"
	}
}

func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// NodeAddress returns the address clients use to reach the (first) node:
// its external IP, else its internal IP, else its host name; "" without nodes.
func NodeAddress(nodes []corev1.Node) string {
	for _, want := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP, corev1.NodeHostName} {
		for _, n := range nodes {
			for _, a := range n.Status.Addresses {
				if a.Type == want && a.Address != "" {
					return a.Address
				}
			}
		}
	}
	return ""
}
