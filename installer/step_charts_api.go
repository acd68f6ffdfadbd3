package installer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// ChartAPI is the little of the Kubernetes API that the chart steps and
// `tpctl status` read beyond Helm: what the waits read (Cluster: /readyz,
// the node, Deployments) and tpctl's own resources.
type ChartAPI interface {
	Cluster
	CoreInstance(ctx context.Context, namespace, name string) (*v1alpha1.CoreInstance, error)
	// CoreInstances and PipelineCount look in every namespace.
	CoreInstances(ctx context.Context) ([]v1alpha1.CoreInstance, error)
	PipelineCount(ctx context.Context) (int, error)
	// CRDs returns the names of tpctl's CRDs that exist.
	CRDs(ctx context.Context) ([]string, error)
	// ReleaseInstances returns the names of the CoreInstances of namespace
	// that Helm release release made (Helm's ownership annotations name
	// it): none when the CRD is absent.
	ReleaseInstances(ctx context.Context, namespace, release string) ([]string, error)
	// DeleteInstance deletes the CoreInstance and every Pipeline of it
	// (spec.instance) in namespace, and returns how many of them still
	// exist (0: all gone).
	DeleteInstance(ctx context.Context, namespace, name string) (int, error)
	// Service reads one object: the health-check pipeline's Service and
	// the node's addresses (Cluster.Node) give the health-check URL.
	Service(ctx context.Context, namespace, name string) (*corev1.Service, error)
}

// Helm's ownership metadata (helm.sh/helm/v4/pkg/action), which it checks
// before it adopts an object that exists.
const (
	helmReleaseNameAnnotation      = "meta.helm.sh/release-name"
	helmReleaseNamespaceAnnotation = "meta.helm.sh/release-namespace"
)

// TpctlCRDs are the CRDs the operator chart brings.
func TpctlCRDs() []string {
	return []string{
		v1alpha1.ResourceCoreInstance + "." + v1alpha1.Group,
		v1alpha1.ResourcePipeline + "." + v1alpha1.Group,
	}
}

// kubeChartAPI is ChartAPI over client-go: kubeCluster's reads and
// tpctl's resources through the dynamic and CRD clients.
type kubeChartAPI struct {
	*kubeCluster
	dyn dynamic.Interface
	ext apiextclient.Interface
}

// NewChartAPI opens the API through a kubeconfig file.
func NewChartAPI(kubeconfig string) (ChartAPI, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cl, err := newKubeCluster(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes CRD client: %w", err)
	}
	return &kubeChartAPI{kubeCluster: cl, dyn: dyn, ext: ext}, nil
}

func (k *kubeChartAPI) Service(ctx context.Context, ns, name string) (*corev1.Service, error) {
	return k.cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
}

var (
	coreInstancesGVR = v1alpha1.GroupVersion.WithResource(v1alpha1.ResourceCoreInstance)
	pipelinesGVR     = v1alpha1.GroupVersion.WithResource(v1alpha1.ResourcePipeline)
)

func (k *kubeChartAPI) CoreInstance(ctx context.Context, ns, name string) (*v1alpha1.CoreInstance, error) {
	u, err := k.dyn.Resource(coreInstancesGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var inst v1alpha1.CoreInstance
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &inst); err != nil {
		return nil, fmt.Errorf("decode CoreInstance %s/%s: %w", ns, name, err)
	}
	return &inst, nil
}

func (k *kubeChartAPI) CoreInstances(ctx context.Context) ([]v1alpha1.CoreInstance, error) {
	l, err := k.dyn.Resource(coreInstancesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]v1alpha1.CoreInstance, len(l.Items))
	for i, u := range l.Items {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out[i]); err != nil {
			return nil, fmt.Errorf("decode CoreInstance %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
	}
	return out, nil
}

func (k *kubeChartAPI) PipelineCount(ctx context.Context) (int, error) {
	l, err := k.dyn.Resource(pipelinesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	return len(l.Items), nil
}

func (k *kubeChartAPI) CRDs(ctx context.Context) ([]string, error) {
	var out []string
	for _, name := range TpctlCRDs() {
		_, err := k.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			out = append(out, name)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("read CRD %s: %w", name, err)
		}
	}
	return out, nil
}

func (k *kubeChartAPI) ReleaseInstances(ctx context.Context, ns, release string) ([]string, error) {
	l, err := k.dyn.Resource(coreInstancesGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list CoreInstances of %s: %w", ns, err)
	}
	var out []string
	for _, u := range l.Items {
		a := u.GetAnnotations()
		if a[helmReleaseNameAnnotation] == release && a[helmReleaseNamespaceAnnotation] == ns {
			out = append(out, u.GetName())
		}
	}
	return out, nil
}

func (k *kubeChartAPI) DeleteInstance(ctx context.Context, ns, name string) (int, error) {
	left := 0
	del := func(gvr schema.GroupVersionResource, u *unstructured.Unstructured) error {
		left++
		if u.GetDeletionTimestamp() != nil {
			return nil
		}
		uid := u.GetUID()
		err := k.dyn.Resource(gvr).Namespace(ns).Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or another object of that name: the next look tells
		}
		if err != nil {
			return fmt.Errorf("delete %s %s/%s: %w", gvr.Resource, ns, u.GetName(), err)
		}
		return nil
	}
	// The instance first: its operator then no longer recreates its
	// health-check pipeline.
	u, err := k.dyn.Resource(coreInstancesGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return 0, fmt.Errorf("read CoreInstance %s/%s: %w", ns, name, err)
	default:
		if err := del(coreInstancesGVR, u); err != nil {
			return 0, err
		}
	}
	l, err := k.dyn.Resource(pipelinesGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return 0, fmt.Errorf("list Pipelines of %s: %w", ns, err)
	default:
		for i := range l.Items {
			if inst, _, _ := unstructured.NestedString(l.Items[i].Object, "spec", "instance"); inst == name {
				if err := del(pipelinesGVR, &l.Items[i]); err != nil {
					return 0, err
				}
			}
		}
	}
	return left, nil
}

// OperatorStatus is the operator Deployment as the API server reports it.
type OperatorStatus struct {
	Namespace     string `json:"namespace"`
	Name          string `json:"name"`
	Image         string `json:"image,omitempty"`
	Replicas      int32  `json:"replicas"`
	ReadyReplicas int32  `json:"readyReplicas"`
}

// InstanceStatus is one CoreInstance.
type InstanceStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Ready     bool   `json:"ready"`
	// Reason says why it is not Ready (or "Available").
	Reason             string `json:"reason,omitempty"`
	HealthCheckEnabled bool   `json:"healthCheckEnabled"`
	HealthCheckPort    int32  `json:"healthCheckPort,omitempty"`
	Pipelines          int32  `json:"pipelines"`
}

// chartStatus fills the operator, instance and pipeline parts of a status
// report; each part it cannot read is named in rep.Unavailable with why.
func chartStatus(ctx context.Context, env *Env, rep *StatusReport) {
	unavailable := func(why string) {
		for _, k := range []string{"operator", "instance", "pipelines"} {
			rep.Unavailable[k] = why
		}
	}
	if env.ChartAPI == nil {
		unavailable("unavailable: no Kubernetes API client configured")
		return
	}
	api, err := env.ChartAPI(env.Kubeconfig())
	if err != nil {
		unavailable("unavailable: " + err.Error())
		return
	}
	if err := api.Readyz(ctx); err != nil {
		unavailable("unavailable: the API server cannot be reached: " + err.Error())
		return
	}
	d, err := api.Deployment(ctx, OperatorNamespace, OperatorRelease)
	switch {
	case apierrors.IsNotFound(err):
		rep.Unavailable["operator"] = fmt.Sprintf("not installed (no Deployment %s/%s; `tpctl install` installs it)", OperatorNamespace, OperatorRelease)
	case err != nil:
		rep.Unavailable["operator"] = "unavailable: " + err.Error()
	default:
		op := &OperatorStatus{Namespace: d.Namespace, Name: d.Name, ReadyReplicas: d.Status.ReadyReplicas, Replicas: 1}
		if d.Spec.Replicas != nil {
			op.Replicas = *d.Spec.Replicas
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
			op.Image = cs[0].Image
		}
		rep.Operator = op
	}
	insts, err := api.CoreInstances(ctx)
	switch {
	case apierrors.IsNotFound(err):
		rep.Unavailable["instance"] = "not installed (the CoreInstance CRD is absent)"
	case err != nil:
		rep.Unavailable["instance"] = "unavailable: " + err.Error()
	case len(insts) == 0:
		rep.Unavailable["instance"] = "none (no CoreInstance in any namespace)"
	default:
		for i := range insts {
			rep.Instances = append(rep.Instances, instanceStatus(&insts[i]))
		}
	}
	n, err := api.PipelineCount(ctx)
	switch {
	case apierrors.IsNotFound(err):
		rep.Unavailable["pipelines"] = "not installed (the Pipeline CRD is absent)"
	case err != nil:
		rep.Unavailable["pipelines"] = "unavailable: " + err.Error()
	default:
		rep.Pipelines = &n
	}
}

func instanceStatus(inst *v1alpha1.CoreInstance) InstanceStatus {
	is := InstanceStatus{Namespace: inst.Namespace, Name: inst.Name, Pipelines: inst.Status.PipelineCount,
		HealthCheckEnabled: inst.Spec.HealthCheckEnabled()}
	if is.HealthCheckEnabled {
		is.HealthCheckPort = inst.Spec.HealthCheckPort()
	}
	if why := instanceNotReady(inst); why != "" {
		is.Reason = why
	} else {
		is.Ready = true
		if c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			is.Reason = c.Reason
		}
	}
	return is
}
