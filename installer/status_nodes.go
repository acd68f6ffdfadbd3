package installer

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterNode is one node of the cluster, as `tpctl status` lists them on a
// server.
type ClusterNode struct {
	Name       string   `json:"name"`
	Roles      []string `json:"roles"`
	Ready      bool     `json:"ready"`
	Reason     string   `json:"reason,omitempty"`
	InternalIP string   `json:"internalIP,omitempty"`
}

// NodeLister lists the cluster's nodes.
type NodeLister interface {
	Nodes(ctx context.Context) ([]corev1.Node, error)
}

// Nodes lists the cluster's nodes.
func (k *kubeCluster) Nodes(ctx context.Context) ([]corev1.Node, error) {
	l, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

const nodeRolePrefix = "node-role.kubernetes.io/"

// ClusterNodes describes nodes by name: their roles (the
// node-role.kubernetes.io/<role> labels, as kubectl shows them; "agent"
// when there is none, as K3s labels no role on agents), Ready and internal
// address.
func ClusterNodes(nodes []corev1.Node) []ClusterNode {
	out := make([]ClusterNode, 0, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		cn := ClusterNode{Name: n.Name}
		for l := range n.Labels {
			if r, ok := strings.CutPrefix(l, nodeRolePrefix); ok && r != "" {
				cn.Roles = append(cn.Roles, r)
			}
		}
		sort.Strings(cn.Roles)
		if len(cn.Roles) == 0 {
			cn.Roles = []string{RoleAgent}
		}
		cn.Ready, cn.Reason = NodeReady(n)
		if cn.Ready {
			cn.Reason = ""
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				cn.InternalIP = a.Address
				break
			}
		}
		out = append(out, cn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// writeNodes renders the node list of a status report.
func writeNodes(b *strings.Builder, nodes []ClusterNode) {
	for _, n := range nodes {
		ready := "Ready"
		if !n.Ready {
			ready = "NotReady (" + n.Reason + ")"
		}
		fmt.Fprintf(b, "  %-24s %-22s %-10s %s\n", n.Name, strings.Join(n.Roles, ","), ready, orUnknown(n.InternalIP))
	}
}
