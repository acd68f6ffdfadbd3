package manage

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/clusternode"
)

// Node is one node of the cluster, described as `tpctl status` describes
// it (name, roles, Ready and why not, internal address), with the pipeline
// pods of the client's namespace that are on it.
type Node struct {
	clusternode.Node
	// Pods counts the namespace's pipeline pods bound to the node that
	// have neither finished nor begun terminating.
	Pods int `json:"pods"`
	// Pipelines names the pipelines those pods belong to, sorted, each
	// once.
	Pipelines []string `json:"pipelines,omitempty"`
}

// NodeList is the cluster's nodes, sorted by name.
type NodeList struct {
	Nodes []Node `json:"nodes"`
	// Unplaced counts the namespace's pipeline pods bound to no node in
	// the list (not scheduled yet, or on a node that is gone).
	Unplaced int `json:"unplaced,omitempty"`
	// PodsErr says why the namespace's pods could not be listed; the
	// counts are then unknown (zero).
	PodsErr error `json:"-"`
}

// DescribeNodes describes nodes with the pipeline pods among pods (those
// with v1alpha1.LabelPipeline) counted on the node each is bound to.
// Pods that finished (Succeeded, Failed) or are terminating are not
// counted.
func DescribeNodes(nodes []corev1.Node, pods []corev1.Pod) NodeList {
	described := clusternode.DescribeAll(nodes)
	out := NodeList{Nodes: make([]Node, len(described))}
	index := make(map[string]int, len(described))
	names := make([]map[string]bool, len(described))
	for i, n := range described {
		out.Nodes[i] = Node{Node: n}
		index[n.Name] = i
		names[i] = map[string]bool{}
	}
	for i := range pods {
		pod := &pods[i]
		name, ok := pod.Labels[v1alpha1.LabelPipeline]
		if !ok || pod.DeletionTimestamp != nil ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		at, ok := index[pod.Spec.NodeName]
		if pod.Spec.NodeName == "" || !ok {
			out.Unplaced++
			continue
		}
		out.Nodes[at].Pods++
		names[at][name] = true
	}
	for i := range out.Nodes {
		for name := range names[i] {
			out.Nodes[i].Pipelines = append(out.Nodes[i].Pipelines, name)
		}
		sort.Strings(out.Nodes[i].Pipelines)
	}
	return out
}

// ListNodes implements API: the cluster's nodes and the namespace's
// pipeline pods on each. It fails when the nodes cannot be listed (a
// *APIError; IsForbidden tells a missing permission); pods that cannot be
// listed leave the counts unknown and say why in PodsErr.
func (c *Client) ListNodes(ctx context.Context) (NodeList, error) {
	var nodes corev1.NodeList
	if err := c.c.List(ctx, &nodes); err != nil {
		return NodeList{}, apiError("list the cluster's nodes", err)
	}
	var pods corev1.PodList
	err := c.c.List(ctx, &pods, client.InNamespace(c.namespace), client.HasLabels{v1alpha1.LabelPipeline})
	if err != nil {
		out := DescribeNodes(nodes.Items, nil)
		out.PodsErr = apiError(fmt.Sprintf("list pipeline pods in namespace %q", c.namespace), err)
		return out, nil
	}
	return DescribeNodes(nodes.Items, pods.Items), nil
}

// IsForbidden reports whether the API server refused err's request for
// want of permission (403).
func IsForbidden(err error) bool { return apierrors.IsForbidden(err) }
