package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/internal/clusternode"
)

// Cluster is the little of the Kubernetes API the waits read.
type Cluster interface {
	// Readyz returns nil when the API server's /readyz says ok.
	Readyz(ctx context.Context) error
	Node(ctx context.Context, name string) (*corev1.Node, error)
	Deployment(ctx context.Context, namespace, name string) (*appsv1.Deployment, error)
}

// kubeCluster is Cluster over client-go: the one reader of /readyz, nodes
// and Deployments inside the installer (ChartAPI embeds it).
type kubeCluster struct{ cs kubernetes.Interface }

// NewCluster opens the API through a kubeconfig file.
func NewCluster(kubeconfig string) (Cluster, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return newKubeCluster(cfg)
}

// restConfig is the client configuration of every installer reader: the
// kubeconfig file, a 10s bound on each request, tpctl-installer as agent.
func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 10 * time.Second
	cfg.UserAgent = "tpctl-installer"
	return cfg, nil
}

func newKubeCluster(cfg *rest.Config) (*kubeCluster, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &kubeCluster{cs: cs}, nil
}

func (k *kubeCluster) Readyz(ctx context.Context) error {
	body, err := k.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w", err)
	}
	if s := strings.TrimSpace(string(body)); s != "ok" {
		return fmt.Errorf("/readyz: %s", s)
	}
	return nil
}

func (k *kubeCluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	return k.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

func (k *kubeCluster) Deployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	return k.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
}

// CoreAddons are the kube-system Deployments K3s deploys, keyed by the
// component that --disable names.
func CoreAddons(c Config) []string {
	var out []string
	for _, a := range []struct{ component, deployment string }{
		{"coredns", "coredns"},
		{"local-storage", "local-path-provisioner"},
		{"metrics-server", "metrics-server"},
		{"traefik", "traefik"},
	} {
		if !c.Disabled(a.component) {
			out = append(out, a.deployment)
		}
	}
	return out
}

// ReportedSince reports whether the node's Ready condition was reported at
// or after since (always, for a zero since), and when it last was. The API
// keeps heartbeats to the second: pass since truncated to one.
func ReportedSince(n *corev1.Node, since time.Time) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.LastHeartbeatTime.IsZero() {
				return since.IsZero(), "never"
			}
			return !c.LastHeartbeatTime.Time.Before(since), c.LastHeartbeatTime.UTC().Format(time.RFC3339)
		}
	}
	return since.IsZero(), "never"
}

// freshReady is what a node that is Ready still misses when its Ready
// condition was reported before this run (re)started K3s ("" when none).
func (e *Env) freshReady(n *corev1.Node) string {
	since := e.k3sStarted.Truncate(time.Second)
	if ok, last := ReportedSince(n, since); !ok {
		return "node " + e.Config.NodeName + " to report since K3s was started at " + since.UTC().Format(time.RFC3339) + " (its Ready was last reported at " + last + ")"
	}
	return ""
}

// NodeReady reports the node's Ready condition and its reason.
func NodeReady(n *corev1.Node) (bool, string) { return clusternode.Ready(n) }

func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= want && d.Status.UpdatedReplicas >= want
}

// waitStep waits for the kubeconfig, /readyz, the node's Ready condition and
// the core add-ons, each bounded by the context, reporting what it waits on.
type waitStep struct {
	env *Env
	cl  Cluster // opened once the kubeconfig exists
}

func (s *waitStep) Name() string { return "wait for node" }

func (s *waitStep) Describe() string {
	if s.env.cniPending {
		return "wait for " + KubeconfigPath + ", the API server's /readyz and node " + s.env.Config.NodeName +
			" to register; not for node Ready or the core add-ons: with cni: cilium the node has no network plugin until Cilium is installed"
	}
	return "wait for " + KubeconfigPath + ", the API server's /readyz, node Ready and the core add-ons (" + strings.Join(CoreAddons(s.env.Config), ", ") + ")"
}

// check looks once; it returns what is still missing ("" when all is well).
func (s *waitStep) check(ctx context.Context) (string, error) {
	kc := s.env.Kubeconfig()
	if _, err := os.Stat(kc); err != nil {
		return "the kubeconfig " + KubeconfigPath, nil
	}
	cl, err := s.env.cluster(&s.cl, kc)
	if err != nil {
		return "", err
	}
	if err := cl.Readyz(ctx); err != nil {
		return "the API server (" + err.Error() + ")", nil
	}
	n, err := cl.Node(ctx, s.env.Config.NodeName)
	if err != nil {
		return "node " + s.env.Config.NodeName + " to register (" + err.Error() + ")", nil
	}
	if s.env.cniPending {
		return "", nil
	}
	if ok, why := NodeReady(n); !ok {
		return "node " + s.env.Config.NodeName + " to be Ready (" + why + ")", nil
	}
	if stale := s.env.freshReady(n); stale != "" {
		return stale, nil
	}
	var pending []string
	for _, name := range CoreAddons(s.env.Config) {
		d, err := cl.Deployment(ctx, "kube-system", name)
		if err != nil || !deploymentAvailable(d) {
			pending = append(pending, name)
		}
	}
	if len(pending) > 0 {
		return "core add-ons to be available: " + strings.Join(pending, ", "), nil
	}
	return "", nil
}

func (s *waitStep) Done(ctx context.Context) (bool, error) {
	missing, err := s.check(ctx)
	return err == nil && missing == "", err
}

func (s *waitStep) Run(ctx context.Context, ev Events) error {
	if err := waitFor(ctx, s.env, ev, s.check); err != nil {
		return err
	}
	if s.env.cniPending {
		summarize(ev, "node %s registered; it stays NotReady until Cilium is installed", s.env.Config.NodeName)
	} else {
		summarize(ev, "node %s Ready, core add-ons available", s.env.Config.NodeName)
	}
	return nil
}

// waitFor calls check every env.Poll until it reports nothing missing (""),
// emitting a progress event each time what is missing changes; it gives up
// with the context, naming what it waited for.
func waitFor(ctx context.Context, env *Env, ev Events, check func(context.Context) (string, error)) error {
	start := env.Now()
	last := ""
	for {
		missing, err := check(ctx)
		if err != nil || missing == "" {
			return err
		}
		if missing != last {
			ev.Emit(Event{Type: EventProgress, Message: "waiting for " + missing})
			last = missing
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s waiting for %s: %w", env.Now().Sub(start).Round(time.Second), missing, ctx.Err())
		case <-time.After(env.Poll):
		}
	}
}

// cluster opens the API through kubeconfig kc (a host path) the first time
// and keeps it in *cl.
func (e *Env) cluster(cl *Cluster, kc string) (Cluster, error) {
	if *cl != nil {
		return *cl, nil
	}
	if e.Cluster == nil {
		return nil, errors.New("no Kubernetes client configured")
	}
	c, err := e.Cluster(kc)
	if err != nil {
		return nil, err
	}
	*cl = c
	return c, nil
}
