package installer

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/internal/clusternode"
)

// ClusterNode is one node of the cluster, as `tpctl status` lists them on a
// server (and the terminal UI's nodes page shows them).
type ClusterNode = clusternode.Node

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

// ClusterNodes describes nodes by name: their roles (the
// node-role.kubernetes.io/<role> labels, as kubectl shows them; "agent"
// when there is none, as K3s labels no role on agents), Ready and internal
// address (clusternode.DescribeAll).
func ClusterNodes(nodes []corev1.Node) []ClusterNode {
	return clusternode.DescribeAll(nodes)
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
