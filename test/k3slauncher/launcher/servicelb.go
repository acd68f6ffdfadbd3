package launcher

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tpctl/tpctl/test/images"
)

// The service load balancer mirrors K3s's servicelb (pkg/cloudprovider in
// K3s): for every LoadBalancer Service a DaemonSet svclb-<name>-<uid[:8]>
// in kube-system whose pods hold hostPort = port for each Service port and
// forward to the Service's cluster IPs; the Service's ingress lists the
// addresses of the nodes whose svclb pod is Ready. A port already held by
// another pod on the node leaves the new pod Pending (the scheduler's
// NodePorts filter) and the Service without ingress.
const (
	svcNameLabel      = "svccontroller.k3s.cattle.io/svcname"
	svcNamespaceLabel = "svccontroller.k3s.cattle.io/svcnamespace"
	nodeSelectorLabel = "svccontroller.k3s.cattle.io/nodeselector"
	priorityAnnotaton = "svccontroller.k3s.cattle.io/priorityclassname"
	// lbCleanupFinalizer is the finalizer Kubernetes's cloud service
	// controller (which runs K3s's servicelb) puts on LoadBalancer
	// Services: deleting one waits for its load balancer to be removed.
	lbCleanupFinalizer = "service.kubernetes.io/load-balancer-cleanup"
	lbNamespace        = "kube-system"
	lbServiceAccount   = "svclb"
	lbPriorityClass    = "system-node-critical"
)

// ServiceLBImage is the svclb pods' image (K3s's is rancher/klipper-lb).
const ServiceLBImage = images.KlipperLBRef

// SvcLBName is the DaemonSet name K3s gives a Service's load balancer.
func SvcLBName(svc *corev1.Service) string {
	name := svc.Name
	if len(name) > 48 {
		trim := 48
		for name[trim-1] == '-' {
			trim--
		}
		name = name[:trim]
	}
	uid := string(svc.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return fmt.Sprintf("svclb-%s-%s", name, uid)
}

// svcLBDaemonSet is the DaemonSet for svc, as K3s's newDaemonSet builds it
// (without a node selector: no node carries the enablelb label here).
func svcLBDaemonSet(svc *corev1.Service, image string) *appsv1.DaemonSet {
	name := SvcLBName(svc)
	one := intstr.FromInt32(1)
	noToken := false
	prio := lbPriorityClass
	if v, ok := svc.Annotations[priorityAnnotaton]; ok {
		prio = v
	}
	ranges := "0.0.0.0/0"
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		ranges = strings.Join(svc.Spec.LoadBalancerSourceRanges, ",")
	}
	sec := &corev1.PodSecurityContext{}
	for _, fam := range svc.Spec.IPFamilies {
		switch fam {
		case corev1.IPv4Protocol:
			sec.Sysctls = append(sec.Sysctls, corev1.Sysctl{Name: "net.ipv4.ip_forward", Value: "1"})
		case corev1.IPv6Protocol:
			sec.Sysctls = append(sec.Sysctls, corev1.Sysctl{Name: "net.ipv6.conf.all.forwarding", Value: "1"})
			if ranges == "0.0.0.0/0" {
				ranges += ",::/0"
			}
		}
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: lbNamespace,
			Labels: map[string]string{nodeSelectorLabel: "false", svcNameLabel: svc.Name, svcNamespaceLabel: svc.Namespace},
			// No owner reference: the Service may live in another
			// namespace (K3s's apply records the owner in annotations);
			// the controller deletes the DaemonSet itself.
			Annotations: map[string]string{
				"objectset.rio.cattle.io/owner-gvk":       "/v1, Kind=Service",
				"objectset.rio.cattle.io/owner-name":      svc.Name,
				"objectset.rio.cattle.io/owner-namespace": svc.Namespace,
			},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, svcNameLabel: svc.Name, svcNamespaceLabel: svc.Namespace}},
				Spec: corev1.PodSpec{
					PriorityClassName:            prio,
					ServiceAccountName:           lbServiceAccount,
					AutomountServiceAccountToken: &noToken,
					SecurityContext:              sec,
					Tolerations: []corev1.Toleration{
						{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
					},
				},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one},
			},
		},
	}
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	for _, p := range svc.Spec.Ports {
		portName := fmt.Sprintf("lb-%s-%d", strings.ToLower(string(p.Protocol)), p.Port)
		c := corev1.Container{
			Name: portName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Ports: []corev1.ContainerPort{{Name: portName, ContainerPort: p.Port, HostPort: p.Port, Protocol: p.Protocol}},
			Env: []corev1.EnvVar{
				{Name: "SRC_PORT", Value: strconv.Itoa(int(p.Port))},
				{Name: "SRC_RANGES", Value: ranges},
				{Name: "DEST_PROTO", Value: string(p.Protocol)},
			},
			SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}},
		}
		if local {
			c.Env = append(c.Env,
				corev1.EnvVar{Name: "DEST_PORT", Value: strconv.Itoa(int(p.NodePort))},
				corev1.EnvVar{Name: "DEST_IPS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIPs"}}})
		} else {
			c.Env = append(c.Env,
				corev1.EnvVar{Name: "DEST_PORT", Value: strconv.Itoa(int(p.Port))},
				corev1.EnvVar{Name: "DEST_IPS", Value: strings.Join(svc.Spec.ClusterIPs, ",")})
		}
		ds.Spec.Template.Spec.Containers = append(ds.Spec.Template.Spec.Containers, c)
	}
	return ds
}

// wantsLB reports whether the service load balancer serves svc: a
// LoadBalancer Service without a loadBalancerClass (the cloud service
// controller leaves classed Services to their own controller).
func wantsLB(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

// lbIngress lists the addresses of the nodes running a Ready svclb pod of
// svc: their ExternalIPs when any node has one, else their InternalIPs,
// IPv4 only (this node is single-stack), sorted, as K3s's getStatus does.
func lbIngress(pods []*corev1.Pod, nodes map[string]*corev1.Node) []corev1.LoadBalancerIngress {
	var ext, internal []string
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.PodIP == "" || !podReady(p) {
			continue
		}
		n, ok := nodes[p.Spec.NodeName]
		if !ok {
			continue
		}
		for _, a := range n.Status.Addresses {
			switch a.Type {
			case corev1.NodeExternalIP:
				ext = append(ext, a.Address)
			case corev1.NodeInternalIP:
				internal = append(internal, a.Address)
			}
		}
	}
	ips := internal
	if len(ext) > 0 {
		ips = ext
	}
	slices.Sort(ips)
	ips = slices.Compact(ips)
	var out []corev1.LoadBalancerIngress
	for _, ip := range ips {
		if !strings.Contains(ip, ":") {
			out = append(out, corev1.LoadBalancerIngress{IP: ip})
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// serviceLB is the controller: it watches Services, svclb pods and
// DaemonSets and nodes, and reconciles one Service at a time.
type serviceLB struct {
	cs    kubernetes.Interface
	image string
	logf  func(format string, args ...any)
}

// run serves until ctx ends.
func (lb *serviceLB) run(ctx context.Context) error {
	if err := lb.ensureServiceAccount(ctx); err != nil {
		return err
	}
	all := informers.NewSharedInformerFactory(lb.cs, 0)
	system := informers.NewSharedInformerFactoryWithOptions(lb.cs, 0, informers.WithNamespace(lbNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = svcNameLabel }))
	svcs := all.Core().V1().Services()
	nodes := all.Core().V1().Nodes()
	pods := system.Core().V1().Pods()
	dss := system.Apps().V1().DaemonSets()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer q.ShutDown()
	byKey := func(obj any) {
		if k, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			q.Add(k)
		}
	}
	byLabels := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if m, err := meta(obj); err == nil && m.GetLabels()[svcNameLabel] != "" {
			q.Add(m.GetLabels()[svcNamespaceLabel] + "/" + m.GetLabels()[svcNameLabel])
		}
	}
	everyLB := func(any) {
		list, _ := svcs.Lister().List(labels.Everything())
		for _, s := range list {
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				byKey(s)
			}
		}
	}
	handler := func(f func(any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, n any) { f(n) }, DeleteFunc: f}
	}
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		f   func(any)
	}{{svcs.Informer(), byKey}, {pods.Informer(), byLabels}, {dss.Informer(), byLabels}, {nodes.Informer(), everyLB}} {
		if _, err := reg.inf.AddEventHandler(handler(reg.f)); err != nil {
			return fmt.Errorf("service load balancer: watch: %w", err)
		}
	}
	all.Start(ctx.Done())
	system.Start(ctx.Done())
	defer all.Shutdown()
	defer system.Shutdown()
	for typ, ok := range all.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("service load balancer: %v cache did not sync", typ)
		}
	}
	for typ, ok := range system.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("service load balancer: %v cache did not sync", typ)
		}
	}
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	r := lbReconciler{cs: lb.cs, image: lb.image,
		svc: svcs.Lister(), pods: pods.Lister(), nodes: nodes.Lister(), dss: dss.Lister()}
	for {
		key, quit := q.Get()
		if quit {
			return nil
		}
		func() {
			defer q.Done(key)
			ns, name, _ := cache.SplitMetaNamespaceKey(key)
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := r.reconcile(rctx, ns, name); err != nil {
				if !apierrors.IsConflict(err) {
					lb.logf("service load balancer: %s: %s (retrying)", key, err)
				}
				q.AddRateLimited(key)
				return
			}
			q.Forget(key)
		}()
	}
}

func meta(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not an object", obj)
	}
	return m, nil
}

// ensureServiceAccount creates kube-system/svclb, as K3s does at start.
func (lb *serviceLB) ensureServiceAccount(ctx context.Context) error {
	_, err := lb.cs.CoreV1().ServiceAccounts(lbNamespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: lbServiceAccount, Namespace: lbNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("service load balancer: create service account: %w", err)
	}
	return nil
}

// lbReconciler does one Service's work from the informers' caches.
type lbReconciler struct {
	cs    kubernetes.Interface
	image string
	svc   corelisters.ServiceLister
	pods  corelisters.PodLister
	nodes corelisters.NodeLister
	dss   appslisters.DaemonSetLister
}

func (r lbReconciler) reconcile(ctx context.Context, ns, name string) error {
	svc, err := r.svc.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return r.deleteDaemonSets(ctx, ns, name, "")
	}
	if err != nil {
		return fmt.Errorf("get service: %w", err)
	}
	if !wantsLB(svc) {
		return r.release(ctx, svc)
	}
	if !slices.Contains(svc.Finalizers, lbCleanupFinalizer) {
		s := svc.DeepCopy()
		s.Finalizers = append(s.Finalizers, lbCleanupFinalizer)
		if svc, err = r.cs.CoreV1().Services(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("add finalizer: %w", err)
		}
	}
	want := svcLBDaemonSet(svc, r.image)
	if err := r.deleteDaemonSets(ctx, ns, name, want.Name); err != nil {
		return err
	}
	cur, err := r.cs.AppsV1().DaemonSets(lbNamespace).Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := r.cs.AppsV1().DaemonSets(lbNamespace).Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create daemonset %s: %w", want.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get daemonset %s: %w", want.Name, err)
	default:
		if !reflect.DeepEqual(cur.Spec.Template.Spec.Containers, want.Spec.Template.Spec.Containers) ||
			!reflect.DeepEqual(cur.Labels, want.Labels) {
			upd := cur.DeepCopy()
			upd.Labels = want.Labels
			upd.Spec.Template = want.Spec.Template
			if _, err := r.cs.AppsV1().DaemonSets(lbNamespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update daemonset %s: %w", want.Name, err)
			}
		}
	}
	pods, err := r.pods.Pods(lbNamespace).List(labels.SelectorFromSet(labels.Set{svcNameLabel: svc.Name, svcNamespaceLabel: svc.Namespace}))
	if err != nil {
		return fmt.Errorf("list svclb pods: %w", err)
	}
	nodeList, err := r.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	nodes := map[string]*corev1.Node{}
	for _, n := range nodeList {
		nodes[n.Name] = n
	}
	return r.setIngress(ctx, svc, lbIngress(pods, nodes))
}

// release removes svc's load balancer (its DaemonSet), clears its ingress
// and drops the finalizer: the Service is no longer a LoadBalancer, or is
// being deleted.
func (r lbReconciler) release(ctx context.Context, svc *corev1.Service) error {
	if err := r.deleteDaemonSets(ctx, svc.Namespace, svc.Name, ""); err != nil {
		return err
	}
	if svc.DeletionTimestamp == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
		if err := r.setIngress(ctx, svc, nil); err != nil {
			return err
		}
	}
	if i := slices.Index(svc.Finalizers, lbCleanupFinalizer); i >= 0 {
		s, err := r.cs.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get service: %w", err)
		}
		s.Finalizers = slices.DeleteFunc(s.Finalizers, func(f string) bool { return f == lbCleanupFinalizer })
		if _, err := r.cs.CoreV1().Services(svc.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove finalizer: %w", err)
		}
	}
	return nil
}

// deleteDaemonSets deletes the svclb DaemonSets of a Service except keep.
func (r lbReconciler) deleteDaemonSets(ctx context.Context, ns, name, keep string) error {
	list, err := r.dss.DaemonSets(lbNamespace).List(labels.SelectorFromSet(labels.Set{svcNameLabel: name, svcNamespaceLabel: ns}))
	if err != nil {
		return fmt.Errorf("list svclb daemonsets: %w", err)
	}
	for _, ds := range list {
		if ds.Name == keep {
			continue
		}
		if err := r.cs.AppsV1().DaemonSets(lbNamespace).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete daemonset %s: %w", ds.Name, err)
		}
	}
	return nil
}

func (r lbReconciler) setIngress(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress) error {
	if ingressEqual(svc.Status.LoadBalancer.Ingress, ingress) {
		return nil
	}
	s := svc.DeepCopy()
	s.Status.LoadBalancer.Ingress = ingress
	if _, err := r.cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname {
			return false
		}
	}
	return true
}
