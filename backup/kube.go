package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/manage"
)

// kubeCluster reads the node's API server. NewKubeCluster's client reads
// the kubeconfig file again at every call: K3s rewrites it when it starts
// (after a restore, with the restored CA).
type kubeCluster struct {
	client func() (client.Client, error)
}

// NewKubeCluster returns the Cluster of the kubeconfig at path.
func NewKubeCluster(path string) Cluster {
	return &kubeCluster{client: func() (client.Client, error) { return kubeconfigClient(path) }}
}

func kubeconfigClient(path string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := manage.NewScheme()
	if err != nil {
		return nil, err //nolint:wrapcheck // already says what failed
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// Inventory implements Cluster.
func (k *kubeCluster) Inventory(ctx context.Context, since time.Time) (Inventory, error) {
	c, err := k.client()
	if err != nil {
		return Inventory{}, err
	}
	var cis v1alpha1.CoreInstanceList
	if err := c.List(ctx, &cis); err != nil {
		return Inventory{}, fmt.Errorf("list CoreInstances: %w", err)
	}
	var ps v1alpha1.PipelineList
	if err := c.List(ctx, &ps); err != nil {
		return Inventory{}, fmt.Errorf("list Pipelines: %w", err)
	}
	inv := Inventory{CoreInstances: []Object{}, Pipelines: []Object{}}
	for _, ci := range cis.Items {
		inv.CoreInstances = append(inv.CoreInstances, Object{Namespace: ci.Namespace, Name: ci.Name,
			Ready: meta.IsStatusConditionTrue(ci.Status.Conditions, v1alpha1.ConditionReady)})
	}
	for _, p := range ps.Items {
		o := Object{Namespace: p.Namespace, Name: p.Name, Ready: meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)}
		if o.Ready && !since.IsZero() {
			fresh, err := podReadySince(ctx, c, p.Namespace, p.Name, since)
			if err != nil {
				return Inventory{}, err
			}
			o.Ready = fresh
		}
		for _, port := range p.Status.Ports {
			o.Frontends = append(o.Frontends, fmt.Sprintf("%s/%d", strings.ToUpper(string(port.Protocol)), port.Frontend))
		}
		slices.Sort(o.Frontends)
		inv.Pipelines = append(inv.Pipelines, o)
	}
	sortObjects(inv.CoreInstances)
	sortObjects(inv.Pipelines)
	return inv, nil
}

func sortObjects(o []Object) {
	slices.SortFunc(o, func(a, b Object) int { return strings.Compare(a.Key(), b.Key()) })
}

// podReadySince reports whether a pod of the pipeline became Ready at or
// after since.
func podReadySince(ctx context.Context, c client.Client, ns, pipeline string, since time.Time) (bool, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelPipeline: pipeline}); err != nil {
		return false, fmt.Errorf("list the pods of pipeline %s/%s: %w", ns, pipeline, err)
	}
	for _, pod := range pods.Items {
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && !cond.LastTransitionTime.Time.Before(since) {
				return true, nil
			}
		}
	}
	return false, nil
}

// NodeReady implements Cluster.
func (k *kubeCluster) NodeReady(ctx context.Context, since time.Time) error {
	c, err := k.client()
	if err != nil {
		return err
	}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return fmt.Errorf("the API server does not answer: %w", err)
	}
	if len(nodes.Items) == 0 {
		return errors.New("no node is registered")
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if ok, why := installer.NodeReady(n); !ok {
			return fmt.Errorf("node %s is not Ready: %s", n.Name, why)
		}
		if since.IsZero() {
			continue
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.LastHeartbeatTime.Time.Before(since) {
				return fmt.Errorf("node %s: its kubelet has not reported since K3s started (last at %s)", n.Name, cond.LastHeartbeatTime.UTC().Format(time.RFC3339))
			}
		}
	}
	return nil
}
