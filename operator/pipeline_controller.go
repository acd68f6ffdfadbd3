package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// PipelineReconciler turns a pipeline with assigned ports into its
// ConfigMap, workload and Services, and reports whether it is Ready.
type PipelineReconciler struct {
	Client client.Client
	// Reader reads past the cache, which holds only the objects the operator
	// labels: an object of a pipeline's name that someone else created is
	// only visible through it. Nil skips that check (unit tests whose
	// client is not a cache).
	Reader       client.Reader
	Recorder     events.EventRecorder
	DefaultImage string
	// NodePortRange is the cluster's node port range (DefaultNodePortRange when zero).
	NodePortRange PortRange
	Now           func() time.Time

	applied appliedMemo
	// work holds builds back to one at a time while port assignments are
	// being written (nil: never).
	work *portWork
}

func (r *PipelineReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *PipelineReconciler) event(obj, related runtime.Object, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, related, typ, reason, action, note, args...)
	}
}

// workloadStatus is the part of a pipeline's status this reconciler owns.
type workloadStatus struct {
	ObservedGeneration int64                `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition   `json:"conditions,omitempty"`
	ReadyReplicas      int32                `json:"readyReplicas,omitempty"`
	ServiceType        v1alpha1.ServiceType `json:"serviceType,omitempty"`
}

// Reconcile implements reconcile.Reconciler.
func (r *PipelineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.Pipeline{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			r.applied.forget(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if p.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // the garbage collector removes the owned objects
	}
	if err := checkName(p.Name); err != nil {
		return ctrl.Result{}, r.notReady(ctx, p, v1alpha1.ReasonReconcileError, err.Error(), "")
	}
	inst, err := r.instance(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Spec.Instance})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.notReady(ctx, p, v1alpha1.ReasonInstanceNotFound,
				fmt.Sprintf("CoreInstance %s/%s does not exist", p.Namespace, p.Spec.Instance), "")
		}
		return ctrl.Result{}, fmt.Errorf("get instance of pipeline %s: %w", req, err)
	}
	ports := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	if ports == nil || ports.ObservedGeneration != p.Generation {
		// The CoreInstance reconciler assigns the ports of this generation;
		// its status write brings the pipeline back here.
		return ctrl.Result{}, nil
	}
	if ports.Status == metav1.ConditionFalse && ports.Reason != v1alpha1.ReasonPortsExhausted {
		return ctrl.Result{}, r.notReady(ctx, p, ports.Reason, "ports not assigned: "+ports.Message, "")
	}

	release, err := r.work.build(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	defer release()
	objs := &Objects{Pipeline: p, Instance: inst, DefaultImage: r.DefaultImage, NodePortRange: r.NodePortRange}
	if objs.NodePortRange == (PortRange{}) {
		objs.NodePortRange = DefaultNodePortRange
	}
	if err := r.applyAll(ctx, p, objs); err != nil {
		var taken *NameTakenError
		if errors.As(err, &taken) {
			// Someone else's object is left alone. Deleting it raises no
			// event the operator sees (it is not in the cache), so look again later.
			return ctrl.Result{RequeueAfter: nameTakenRetry},
				r.notReady(ctx, p, v1alpha1.ReasonNameTaken, taken.Error(), objs.ServiceType())
		}
		r.event(p, nil, "Warning", v1alpha1.ReasonReconcileError, "Apply", "%s", limit(err.Error()))
		if serr := r.notReady(ctx, p, v1alpha1.ReasonReconcileError, err.Error(), objs.ServiceType()); serr != nil {
			err = errors.Join(err, serr)
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.writeReady(ctx, p, objs.ServiceType())
}

// instance reads a pipeline's instance: its metadata and spec, copied,
// without its status, which the pipeline's objects do not depend on. The
// status lists up to MaxFrontendPortsListed frontends: a copy of it for
// every reconcile of thousands of pipelines was most of what a reconcile
// allocated.
func (r *PipelineReconciler) instance(ctx context.Context, key client.ObjectKey) (*v1alpha1.CoreInstance, error) {
	var cached v1alpha1.CoreInstance
	// The cache's object is only read here, never modified.
	if err := r.Client.Get(ctx, key, &cached, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	inst := &v1alpha1.CoreInstance{TypeMeta: cached.TypeMeta}
	cached.ObjectMeta.DeepCopyInto(&inst.ObjectMeta)
	cached.Spec.DeepCopyInto(&inst.Spec)
	return inst, nil
}

// nameTakenRetry is how often a pipeline whose name is taken looks again.
const nameTakenRetry = 30 * time.Second

// apply applies ac. Only an object the pipeline already controls is applied
// with ForceOwnership; creating one never forces, so an object someone
// created in the meantime fails with a conflict instead of being taken over.
func (r *PipelineReconciler) apply(ctx context.Context, ac runtime.ApplyConfiguration, what string, owned bool) error {
	opts := []client.ApplyOption{client.FieldOwner(FieldManager)}
	if owned {
		opts = append(opts, client.ForceOwnership)
	}
	if err := r.Client.Apply(ctx, ac, opts...); err != nil {
		return fmt.Errorf("apply %s: %w", what, err)
	}
	return nil
}

// NameTakenError says that an object a pipeline would build exists and is
// not controlled by that pipeline; the operator leaves it untouched.
type NameTakenError struct {
	Kind, Namespace, Name, Pipeline string
}

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("%s %s/%s exists and is not managed by pipeline %s", e.Kind, e.Namespace, e.Name, e.Pipeline)
}

// claim reads the named object into obj and reports whether it exists. An
// object that exists and is not controlled by p (by owner UID) is a
// *NameTakenError. The cache is asked first; an object missing there is
// looked up on the API server, since the cache holds only labelled objects.
func (r *PipelineReconciler) claim(ctx context.Context, p *v1alpha1.Pipeline, obj client.Object, kind, name string) (bool, error) {
	key := client.ObjectKey{Namespace: p.Namespace, Name: name}
	err := r.Client.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && r.Reader != nil {
		err = r.Reader.Get(ctx, key, obj)
	}
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get %s %s: %w", kind, name, err)
	case !metav1.IsControlledBy(obj, p):
		return true, &NameTakenError{Kind: kind, Namespace: p.Namespace, Name: name, Pipeline: p.Name}
	}
	return true, nil
}

// ownedObject is one object applyAll would apply.
type ownedObject struct {
	obj        client.Object
	kind, name string
}

// objectPlan lists the objects of p for the workload kind, in apply order.
func objectPlan(p *v1alpha1.Pipeline, kind v1alpha1.WorkloadKind, withService bool) []ownedObject {
	out := []ownedObject{{&corev1.ConfigMap{}, "ConfigMap", ConfigMapName(p.Name)}}
	switch kind {
	case v1alpha1.WorkloadDaemonSet:
		out = append(out, ownedObject{&appsv1.DaemonSet{}, "DaemonSet", p.Name})
	case v1alpha1.WorkloadStatefulSet:
		out = append(out, ownedObject{&corev1.Service{}, "Service", HeadlessServiceName(p.Name)},
			ownedObject{&appsv1.StatefulSet{}, "StatefulSet", p.Name})
	default:
		out = append(out, ownedObject{&appsv1.Deployment{}, "Deployment", p.Name})
	}
	if withService {
		out = append(out, ownedObject{&corev1.Service{}, "Service", p.Name})
	}
	return out
}

// applyAll applies the pipeline's objects and deletes the ones it no longer
// needs. When any object it would apply belongs to someone else, it applies
// nothing and returns a *NameTakenError.
func (r *PipelineReconciler) applyAll(ctx context.Context, p *v1alpha1.Pipeline, objs *Objects) error {
	ns := p.Namespace
	// Each object is looked up once: the lookup decides whether the object
	// is this pipeline's (else nothing is applied) and whether it exists
	// (only an existing, controlled object is applied with force).
	found := map[string]client.Object{}
	for _, o := range objectPlan(p, p.Spec.WorkloadKind(), objs.Service() != nil) {
		exists, err := r.claim(ctx, p, o.obj, o.kind, o.name)
		if err != nil {
			return err
		}
		if exists {
			found[o.kind+"/"+o.name] = o.obj
		}
	}
	existing := func(kind, name string) client.Object { return found[kind+"/"+name] }
	if err := r.applyOnce(ctx, objs.ConfigMap(), existing("ConfigMap", ConfigMapName(p.Name)), "ConfigMap", ns, ConfigMapName(p.Name)); err != nil {
		return err
	}
	kind := p.Spec.WorkloadKind()
	var err error
	switch kind {
	case v1alpha1.WorkloadDaemonSet:
		err = r.applyOnce(ctx, objs.DaemonSet(), existing("DaemonSet", p.Name), "DaemonSet", ns, p.Name)
	case v1alpha1.WorkloadStatefulSet:
		hl := HeadlessServiceName(p.Name)
		if err = r.applyOnce(ctx, objs.HeadlessService(), existing("Service", hl), "Service", ns, hl); err == nil {
			err = r.applyOnce(ctx, objs.StatefulSet(), existing("StatefulSet", p.Name), "StatefulSet", ns, p.Name)
		}
	default:
		err = r.applyOnce(ctx, objs.Deployment(), existing("Deployment", p.Name), "Deployment", ns, p.Name)
	}
	if err != nil {
		return err
	}
	if err := r.deleteOtherKinds(ctx, p, kind); err != nil {
		return err
	}
	if err := r.applyAutoscaler(ctx, p, objs); err != nil {
		return err
	}
	var svc *corev1.Service
	if obj, ok := existing("Service", p.Name).(*corev1.Service); ok {
		svc = obj
	}
	return r.applyService(ctx, p, objs, svc)
}

// deleteOtherKinds removes the workloads of other kinds (after a kind
// change) and the headless Service of a former StatefulSet.
func (r *PipelineReconciler) deleteOtherKinds(ctx context.Context, p *v1alpha1.Pipeline, kind v1alpha1.WorkloadKind) error {
	candidates := map[v1alpha1.WorkloadKind]client.Object{
		v1alpha1.WorkloadDeployment:  &appsv1.Deployment{},
		v1alpha1.WorkloadDaemonSet:   &appsv1.DaemonSet{},
		v1alpha1.WorkloadStatefulSet: &appsv1.StatefulSet{},
	}
	for k, obj := range candidates {
		if k == kind {
			continue
		}
		deleted, err := r.deleteOwned(ctx, p, obj, p.Name)
		if err != nil {
			return err
		}
		if deleted {
			r.event(p, nil, "Normal", "WorkloadKindChanged", "Delete",
				"workload kind is now %s: deleted %s %s", kind, k, p.Name)
		}
	}
	if kind != v1alpha1.WorkloadStatefulSet {
		if _, err := r.deleteOwned(ctx, p, &corev1.Service{}, HeadlessServiceName(p.Name)); err != nil {
			return err
		}
	}
	return nil
}

// deleteOwned deletes the named object if p controls it.
func (r *PipelineReconciler) deleteOwned(ctx context.Context, p *v1alpha1.Pipeline, obj client.Object, name string) (bool, error) {
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, p) {
		return false, nil
	}
	if err := r.Client.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return false, fmt.Errorf("delete %T %s: %w", obj, name, err)
	}
	return true, nil
}

// applyService applies the pipeline's Service, keeping node ports that were
// allocated before, and retries without requested node ports when the API
// server says one is taken. existing is the pipeline's Service when the
// pipeline wants one and it exists (see applyAll's lookup); when it wants
// none, the cache is asked for one to delete.
func (r *PipelineReconciler) applyService(ctx context.Context, p *v1alpha1.Pipeline, objs *Objects, existing *corev1.Service) error {
	if objs.Service() == nil {
		existing = &corev1.Service{}
		switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(p), existing); {
		case apierrors.IsNotFound(err):
			existing = nil
		case err != nil:
			return fmt.Errorf("get Service %s: %w", p.Name, err)
		}
	}
	if existing != nil && existing.Spec.Type == corev1.ServiceTypeNodePort {
		objs.NodePorts = map[string]int32{}
		for _, sp := range existing.Spec.Ports {
			objs.NodePorts[sp.Name] = sp.NodePort
		}
	}
	svc := objs.Service()
	if svc == nil {
		if existing != nil && metav1.IsControlledBy(existing, p) {
			if err := r.Client.Delete(ctx, existing); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete Service %s: %w", p.Name, err)
			}
			r.event(p, nil, "Normal", "ServiceDeleted", "Delete", "no port has a frontend: deleted Service %s", p.Name)
		}
		return nil
	}
	var current client.Object
	if existing != nil {
		current = existing
	}
	err := r.applyOnce(ctx, svc, current, "Service", p.Namespace, p.Name)
	if err != nil && apierrors.IsInvalid(err) && strings.Contains(err.Error(), "already allocated") && !objs.NoNodePortRequest {
		objs.NoNodePortRequest = true
		if err = r.applyOnce(ctx, objs.Service(), current, "Service", p.Namespace, p.Name); err == nil {
			r.event(p, nil, "Warning", "NodePortUnavailable", "Apply",
				"a frontend in the node port range could not be used as the node port (already allocated); Kubernetes allocated another, see Service %s", p.Name)
		}
	}
	// No event for the creation: it is routine (the Service is named after
	// the pipeline and its status gives its type).
	return err
}

// readiness reads the workload's ready and desired replicas.
func (r *PipelineReconciler) readiness(ctx context.Context, p *v1alpha1.Pipeline) (ready, desired int32, settled, found bool, err error) {
	key := client.ObjectKeyFromObject(p)
	var obj client.Object
	switch p.Spec.WorkloadKind() {
	case v1alpha1.WorkloadDaemonSet:
		obj = &appsv1.DaemonSet{}
	case v1alpha1.WorkloadStatefulSet:
		obj = &appsv1.StatefulSet{}
	default:
		obj = &appsv1.Deployment{}
	}
	if err := r.Client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, 0, false, false, nil
		}
		return 0, 0, false, false, fmt.Errorf("get workload %s: %w", key, err)
	}
	ready, desired, settled = WorkloadReadiness(obj)
	return ready, desired, settled, true, nil
}

// WorkloadReadiness returns the ready and desired pods of a Deployment,
// DaemonSet or StatefulSet, and whether its controller has caught up with
// its latest spec (observed generation and updated pods).
func WorkloadReadiness(obj client.Object) (ready, desired int32, settled bool) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		desired = 1
		if w.Spec.Replicas != nil {
			desired = *w.Spec.Replicas
		}
		return w.Status.ReadyReplicas, desired,
			w.Status.ObservedGeneration >= w.Generation && w.Status.UpdatedReplicas >= desired
	case *appsv1.StatefulSet:
		desired = 1
		if w.Spec.Replicas != nil {
			desired = *w.Spec.Replicas
		}
		return w.Status.ReadyReplicas, desired,
			w.Status.ObservedGeneration >= w.Generation && w.Status.UpdatedReplicas >= desired
	case *appsv1.DaemonSet:
		return w.Status.NumberReady, w.Status.DesiredNumberScheduled,
			w.Status.ObservedGeneration >= w.Generation && w.Status.UpdatedNumberScheduled >= w.Status.DesiredNumberScheduled
	}
	return 0, 0, false
}

// ReadyCondition turns workload readiness into the pipeline's Ready condition.
func ReadyCondition(kind v1alpha1.WorkloadKind, ready, desired int32, settled, found bool) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	switch {
	case !found:
		c.Reason, c.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("waiting for the %s to be created", kind)
	case kind == v1alpha1.WorkloadDaemonSet && desired == 0 && settled:
		c.Reason, c.Message = v1alpha1.ReasonUnavailable, "the DaemonSet is scheduled on no node"
	case ready >= desired && settled:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonAvailable
		c.Message = fmt.Sprintf("%d/%d pod(s) ready", ready, desired)
	case ready == 0:
		c.Reason, c.Message = v1alpha1.ReasonUnavailable, fmt.Sprintf("0/%d pod(s) ready", desired)
	default:
		c.Reason, c.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("%d/%d pod(s) ready, rolling out", ready, desired)
	}
	return c
}

func (r *PipelineReconciler) writeReady(ctx context.Context, p *v1alpha1.Pipeline, svcType v1alpha1.ServiceType) error {
	ready, desired, settled, found, err := r.readiness(ctx, p)
	if err != nil {
		return err
	}
	c := ReadyCondition(p.Spec.WorkloadKind(), ready, desired, settled, found)
	if c.Status == metav1.ConditionFalse && found {
		pods, err := r.pipelinePods(ctx, p)
		if err != nil {
			return err
		}
		c = HealthCondition(c, pods)
	}
	if c.Status == metav1.ConditionTrue && svcType == v1alpha1.ServiceTypeLoadBalancer {
		svc := &corev1.Service{}
		switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(p), svc); {
		case apierrors.IsNotFound(err):
			svc = nil // no port has a frontend: there is no Service to wait for
		case err != nil:
			return fmt.Errorf("get Service %s/%s: %w", p.Namespace, p.Name, err)
		}
		c = LoadBalancerCondition(c, svc)
	}
	return r.writeStatus(ctx, p, c, ready, svcType)
}

// LoadBalancerCondition turns a Ready condition False when svc is a
// LoadBalancer Service no load balancer has given an address
// (status.loadBalancer.ingress is empty). A nil svc, another type or a
// condition that is not True is returned unchanged.
func LoadBalancerCondition(c metav1.Condition, svc *corev1.Service) metav1.Condition {
	if c.Status != metav1.ConditionTrue || svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer ||
		len(svc.Status.LoadBalancer.Ingress) > 0 {
		return c
	}
	c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonLoadBalancerPending
	c.Message = fmt.Sprintf("%s; no load balancer has given LoadBalancer Service %s/%s an address yet "+
		"(on K3s: the servicelb pods are Pending because another Service holds the host port, or servicelb is disabled)",
		c.Message, svc.Namespace, svc.Name)
	return c
}

func (r *PipelineReconciler) notReady(ctx context.Context, p *v1alpha1.Pipeline, reason, msg string, svcType v1alpha1.ServiceType) error {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: limit(msg)}
	return r.writeStatus(ctx, p, c, 0, svcType)
}

func (r *PipelineReconciler) writeStatus(ctx context.Context, p *v1alpha1.Pipeline, c metav1.Condition, ready int32, svcType v1alpha1.ServiceType) error {
	c.ObservedGeneration = p.Generation
	st := &p.Status
	if sameCondition(st.Conditions, c) && st.ReadyReplicas == ready && st.ServiceType == svcType &&
		st.ObservedGeneration == p.Generation {
		return nil
	}
	// An event for every change of Ready but the routine ones of a new
	// pipeline: its first status (Progressing: its workload is being
	// created) and the step from there to pods that are not ready yet
	// (Unavailable, with no cause read from the pods: a cause has a reason
	// of its own). Thousands of new pipelines would make thousands of
	// events that say what their status says.
	old := meta.FindStatusCondition(st.Conditions, c.Type)
	first := old == nil && c.Reason == v1alpha1.ReasonProgressing
	starting := old != nil && old.Status == metav1.ConditionFalse && old.Reason == v1alpha1.ReasonProgressing &&
		old.Message == ReadyCondition(p.Spec.WorkloadKind(), 0, 0, false, false).Message &&
		c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonUnavailable
	if !first && !starting && (old == nil || old.Status != c.Status || old.Reason != c.Reason) {
		typ := "Normal"
		if c.Status != metav1.ConditionTrue && c.Reason != v1alpha1.ReasonProgressing {
			typ = "Warning"
		}
		r.event(p, nil, typ, c.Reason, "Reconcile", "Ready=%s: %s", c.Status, c.Message)
	}
	want := workloadStatus{ObservedGeneration: p.Generation, ReadyReplicas: ready, ServiceType: svcType,
		Conditions: []metav1.Condition{withTransition(st.Conditions, c, r.now())}}
	return applyStatus(ctx, r.Client, v1alpha1.KindPipeline, client.ObjectKeyFromObject(p), &want, FieldManagerWorkload)
}
