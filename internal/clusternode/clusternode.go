// Package clusternode describes a cluster's nodes the way tpctl shows them
// (`tpctl status`, the terminal UI's nodes page): name, roles, Ready with
// its reason, internal address. Pure functions over Node objects; no I/O.
package clusternode

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// RoleAgent is the role of a node without node-role labels: K3s labels no
// role on agents.
const RoleAgent = "agent"

// RolePrefix starts the labels that name a node's roles
// (node-role.kubernetes.io/<role>), as kubectl reads them.
const RolePrefix = "node-role.kubernetes.io/"

// Node is one node of the cluster.
type Node struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Ready bool     `json:"ready"`
	// Reason says why the node is not Ready (empty when it is).
	Reason     string `json:"reason,omitempty"`
	InternalIP string `json:"internalIP,omitempty"`
}

// Ready reports the node's Ready condition and, when it is not true, its
// reason and message ("Ready" when it is).
func Ready(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return true, "Ready"
			}
			return false, fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	return false, "no Ready condition yet"
}

// Describe describes one node: its roles (the node-role labels, sorted;
// RoleAgent when there is none), Ready and its first internal address.
func Describe(n *corev1.Node) Node {
	cn := Node{Name: n.Name}
	for l := range n.Labels {
		if r, ok := strings.CutPrefix(l, RolePrefix); ok && r != "" {
			cn.Roles = append(cn.Roles, r)
		}
	}
	sort.Strings(cn.Roles)
	if len(cn.Roles) == 0 {
		cn.Roles = []string{RoleAgent}
	}
	cn.Ready, cn.Reason = Ready(n)
	if cn.Ready {
		cn.Reason = ""
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			cn.InternalIP = a.Address
			break
		}
	}
	return cn
}

// DescribeAll describes nodes, sorted by name.
func DescribeAll(nodes []corev1.Node) []Node {
	out := make([]Node, 0, len(nodes))
	for i := range nodes {
		out = append(out, Describe(&nodes[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
