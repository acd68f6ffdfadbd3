package operator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// Defaults of Options.
const (
	// DefaultMetricsAddr serves metrics on loopback only: they are not
	// authenticated, so only processes in the pod's network namespace (a
	// sidecar, kubectl port-forward) may read them.
	DefaultMetricsAddr      = "127.0.0.1:8080"
	DefaultProbeAddr        = ":8081"
	DefaultLeaderElectionID = "tpctl-operator.telemetry.tpctl.dev"
)

// Leader election timing. A leader that cannot renew its Lease within
// DefaultRenewDeadline gives up and the operator exits; a single-node K3s
// restarting its API server takes a minute or so, so the deadline is well
// above that (the values OpenShift uses on single-node clusters for the same
// reason). A stand-by takes over at most DefaultLeaseDuration after the
// leader stops renewing.
const (
	DefaultLeaseDuration = 137 * time.Second
	DefaultRenewDeadline = 107 * time.Second
	DefaultRetryPeriod   = 26 * time.Second
)

// Options configure the operator's manager.
type Options struct {
	// MetricsAddr serves Prometheus metrics; "0" disables it.
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz; "0" disables it.
	ProbeAddr string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the lease (the operator's own namespace;
	// required outside a cluster).
	LeaderElectionNamespace string
	// LeaderElectionID names the lease (DefaultLeaderElectionID when empty).
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod time leader election
	// (DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod when zero).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Namespaces limits the watch to the namespaces of the core instances;
	// empty watches all namespaces. Services are read in every namespace
	// either way (LoadBalancer frontends are node ports).
	Namespaces []string
	// Reserved are the node's own ports (see NodeReservedPorts).
	Reserved pipeline.PortSet
	// DefaultImage runs pipelines that name no image (DefaultPipelineImage when empty).
	DefaultImage string
	// NodePortRange is the cluster's node port range (DefaultNodePortRange when zero).
	NodePortRange PortRange
	// Workers is the number of concurrent reconciles per controller (2 when 0).
	Workers int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Name distinguishes the controllers of several managers in one process
	// (tests); empty in production.
	Name string
	// IdleAfter is how long the reconcilers must be quiet after a burst of
	// work before the free heap is returned to the system
	// (DefaultIdleAfter when zero).
	IdleAfter time.Duration
	// PprofAddr serves net/http/pprof (profiling); empty disables it. It
	// must be a loopback address: profiles are not authenticated.
	PprofAddr string
}

// schemeGroups are the Kubernetes API groups the operator reads, writes or
// refers to in events: not all of client-go's (some sixty group versions,
// whose type tables would be a second copy of client-go's own scheme).
var schemeGroups = []func(*runtime.Scheme) error{
	corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
	coordinationv1.AddToScheme, eventsv1.AddToScheme,
}

// NewScheme returns a scheme with the Kubernetes types the operator uses and
// the tpctl API.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range schemeGroups {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("register Kubernetes types: %w", err)
		}
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register tpctl types: %w", err)
	}
	return s, nil
}

// indexInstance indexes pipelines by spec.instance.
const indexInstance = "spec.instance"

// NewManager builds a manager running both reconcilers against cfg.
func NewManager(cfg *rest.Config, o Options) (manager.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = DefaultLeaderElectionID
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = DefaultMetricsAddr
	}
	if o.ProbeAddr == "" {
		o.ProbeAddr = DefaultProbeAddr
	}
	if o.ProbeAddr == "0" {
		o.ProbeAddr = ""
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if err := checkLoopback(o.PprofAddr); err != nil {
		return nil, fmt.Errorf("pprof address: %w", err)
	}
	owned := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})
	byObject := map[client.Object]cache.ByObject{}
	// Services are cached whatever their labels: every LoadBalancer
	// Service's frontends are taken (see IndexLoadBalancerServices).
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &appsv1.Deployment{}, &appsv1.DaemonSet{}, &appsv1.StatefulSet{}, &autoscalingv2.HorizontalPodAutoscaler{}} {
		byObject[obj] = cache.ByObject{Label: owned}
	}
	// Only pipeline pods, for their health (see PodHealthCause).
	byObject[&corev1.Pod{}] = cache.ByObject{Label: labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, LabelName: AppName})}
	// The cache keeps only the fields the reconcilers read (see
	// TrimForCache): it holds several objects per pipeline.
	cacheOpts := cache.Options{ByObject: byObject, DefaultTransform: TrimForCache}
	if len(o.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
		// Only Services are read everywhere (list and watch, nothing else):
		// a LoadBalancer Service in any namespace holds node ports.
		byObject[&corev1.Service{}] = cache.ByObject{Namespaces: map[string]cache.Config{cache.AllNamespaces: {}}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		PprofBindAddress:              o.PprofAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if o.ProbeAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, fmt.Errorf("add health check: %w", err)
		}
		if err := mgr.AddReadyzCheck("cache", func(req *http.Request) error {
			if !mgr.GetCache().WaitForCacheSync(req.Context()) {
				return errors.New("informer caches not synced")
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("add ready check: %w", err)
		}
	}
	if err := Setup(mgr, o); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Setup registers the field index and both reconcilers with mgr.
func Setup(mgr manager.Manager, o Options) error {
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Pipeline{}, indexInstance, func(obj client.Object) []string {
		return []string{obj.(*v1alpha1.Pipeline).Spec.Instance}
	}); err != nil {
		return fmt.Errorf("index pipelines by instance: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Service{}, IndexLoadBalancerServices, IndexLoadBalancer); err != nil {
		return fmt.Errorf("index LoadBalancer Services: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexPodPipeline, IndexPodByPipeline); err != nil {
		return fmt.Errorf("index pods by pipeline: %w", err)
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 2
	}
	reserved := o.Reserved
	if reserved == nil {
		reserved = pipeline.NewPortSet()
	}
	idle := newIdleReturner(o.IdleAfter, func() {
		debug.FreeOSMemory()
		DropBinaryPages()
	})
	if err := mgr.Add(idle); err != nil {
		return fmt.Errorf("add the idle memory return: %w", err)
	}
	members := &memberIndex{}
	work := newPortWork()
	ci := &CoreInstanceReconciler{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder("tpctl-operator"), Reserved: reserved, Now: o.Now,
		Members: members, work: work,
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("coreinstance"+o.Name).
		For(&v1alpha1.CoreInstance{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Pipeline{}, &memberHandler{index: members, readyDelay: DefaultReadyDelay}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(idle.wrap(ci))
	if err != nil {
		return fmt.Errorf("set up the CoreInstance controller: %w", err)
	}
	pr := &PipelineReconciler{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("tpctl-operator"),
		DefaultImage: o.DefaultImage, NodePortRange: o.NodePortRange, Now: o.Now, work: work,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("pipeline"+o.Name).
		For(&v1alpha1.Pipeline{}, builder.WithPredicates(pipelineNeedsObjects())).
		Owns(&corev1.ConfigMap{}, ownedChanged).
		Owns(&corev1.Service{}, ownedChanged).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&appsv1.StatefulSet{}).
		// The autoscaler's status changes every sync; only its spec
		// (someone edited it) and its deletion matter.
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToPipeline),
			builder.WithPredicates(podCauseChanged())).
		Watches(&v1alpha1.CoreInstance{}, handler.EnqueueRequestsFromMapFunc(instanceToPipelines(mgr.GetClient())),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(idle.wrap(pr))
	if err != nil {
		return fmt.Errorf("set up the Pipeline controller: %w", err)
	}
	return nil
}

// checkLoopback refuses an address that is not empty and not on loopback.
func checkLoopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	return nil
}

// Run builds the manager and runs it until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	mgr, err := NewManager(cfg, o)
	if err != nil {
		return err
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run operator: %w", err)
	}
	return nil
}

// ownedChanged lets through changes to the ConfigMaps and Services the
// operator owns except their creation: the operator created them itself (and
// at start-up every pipeline is reconciled anyway). Updates (someone edited
// one) and deletions bring the pipeline back. Workloads pass every event:
// their creation is when the Ready condition can first be read.
var ownedChanged = builder.WithPredicates(predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
})

// pipelineNeedsObjects lets through the pipeline events that change what
// the Pipeline reconciler builds: creation, deletion, a spec or label change,
// and a new port assignment. Its own Ready status writes and the owner
// reference the instance adds do not.
func pipelineNeedsObjects() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(*v1alpha1.Pipeline)
			n, okNew := e.ObjectNew.(*v1alpha1.Pipeline)
			if !okOld || !okNew {
				return true
			}
			return o.Generation != n.Generation ||
				(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
				!maps.Equal(o.Labels, n.Labels) ||
				o.Status.PortSummary != n.Status.PortSummary ||
				!equality.Semantic.DeepEqual(o.Status.Ports, n.Status.Ports) ||
				!equality.Semantic.DeepEqual(
					meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionPortsAssigned),
					meta.FindStatusCondition(n.Status.Conditions, v1alpha1.ConditionPortsAssigned))
		},
	}
}

func instanceToPipelines(c client.Client) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list v1alpha1.PipelineList
		if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace()),
			client.MatchingFields{indexInstance: obj.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list pipelines of instance", "instance", obj.GetName())
			return nil
		}
		out := make([]reconcile.Request, len(list.Items))
		for i := range list.Items {
			out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
		}
		return out
	}
}

func readyStatus(p *v1alpha1.Pipeline) metav1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status
		}
	}
	return metav1.ConditionUnknown
}
