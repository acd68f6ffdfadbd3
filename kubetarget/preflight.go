package kubetarget

import (
	"context"
	"fmt"
	"sort"
	"strings"

	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/preflight"
)

// SchemaVersion names the JSON schema of the cluster preflight report.
const SchemaVersion = "tpctl.cluster-preflight/v1"

// Report is the cluster preflight: one row per check, as the host
// preflight's (name, severity, message, remedy), and what it decided.
type Report struct {
	Schema        string             `json:"schema"`
	Server        string             `json:"server"`
	ServerVersion string             `json:"serverVersion,omitempty"`
	Results       []preflight.Result `json:"results"`
	Summary       preflight.Summary  `json:"summary"`
	// ServiceType is the pipelines' default Service type the install
	// gives the core instance.
	ServiceType v1alpha1.ServiceType `json:"serviceType"`
	// Notes are decisions the user must know about (a switch to NodePort).
	Notes []string `json:"notes,omitempty"`
}

// Failed reports whether a check fails.
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

func (r *Report) add(res preflight.Result) {
	r.Results = append(r.Results, res)
	switch res.Severity {
	case preflight.Pass:
		r.Summary.Pass++
	case preflight.Warn:
		r.Summary.Warn++
	default:
		r.Summary.Fail++
	}
}

// Failures names the failed checks.
func (r *Report) Failures() []string {
	var out []string
	for _, res := range r.Results {
		if res.Severity == preflight.Fail {
			out = append(out, res.Name+": "+res.Message)
		}
	}
	return out
}

// PreflightError is a failed cluster preflight: nothing was written.
type PreflightError struct{ Report *Report }

func (e *PreflightError) Error() string {
	return fmt.Sprintf("cluster preflight: %d check(s) failed, nothing was written:\n  %s", e.Report.Summary.Fail,
		strings.Join(e.Report.Failures(), "\n  "))
}

// prepared is what a passed preflight hands the install.
type prepared struct {
	charts                        *chartSet
	operatorValues, instanceValue map[string]any
	serviceType                   v1alpha1.ServiceType
	namespaceExists               bool
}

// Permission is one SelfSubjectAccessReview the install needs to pass.
type Permission struct {
	Verb, Group, Resource, Subresource, Namespace, Name string
	// For says which rendered object (or Role rule) needs it.
	For string
}

func (p Permission) resource() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	return r
}

// String reads e.g. "create deployments.apps in namespace tpctl-system".
func (p Permission) String() string {
	s := p.Verb + " " + p.resource()
	if p.Name != "" {
		s += " named " + p.Name
	}
	if p.Namespace != "" {
		return s + " in namespace " + p.Namespace
	}
	return s + " (cluster-wide)"
}

// checkName is the permission's row name.
func (p Permission) checkName() string {
	n := "Permission-" + p.Verb + "-" + strings.ReplaceAll(p.resource(), "/", "-")
	if p.Namespace != "" {
		n += "-" + p.Namespace
	}
	return n
}

func (p Permission) key() string {
	return strings.Join([]string{p.Verb, p.Group, p.Resource, p.Subresource, p.Namespace, p.Name}, "|")
}

// kindInfo is how the API serves a kind.
type kindInfo struct {
	resource   string
	namespaced bool
}

// helmVerbs are what Helm does with an object of a release: read it,
// create it, replace an adopted one (update), patch it on upgrade, delete
// it on uninstall.
var helmVerbs = []string{"get", "create", "update", "patch", "delete"}

// permissions derives every permission the install (and a later
// uninstall) needs from the rendered objects: Helm's verbs on each object,
// Helm's release Secrets in each release namespace, its wait (Deployments:
// their ReplicaSets and Pods), the CRDs (server-side applied), the
// namespaces, and tpctl's own reads and deletes of its custom resources.
// The rules of each rendered Role and ClusterRole come back apart (rules):
// creating a Role needs either every permission it grants or escalate.
func permissions(objs map[string][]object, kinds map[schema.GroupKind]kindInfo, crdNames []string, createNamespace bool) (direct, rules []Permission, unknown []string) {
	seen := map[string]bool{}
	add := func(list *[]Permission, p Permission) {
		if !seen[p.key()] {
			seen[p.key()] = true
			*list = append(*list, p)
		}
	}
	namespaces := make([]string, 0, len(objs))
	for ns := range objs {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for _, releaseNS := range namespaces {
		for _, v := range []string{"get", "list", "create", "update", "delete"} {
			add(&direct, Permission{Verb: v, Resource: "secrets", Namespace: releaseNS, For: "Helm's release records"})
		}
		for _, o := range objs[releaseNS] {
			gk := schema.GroupKind{Group: groupOf(o.APIVersion), Kind: o.Kind}
			ki, ok := kinds[gk]
			if !ok {
				if !contains(unknown, gk.String()) {
					unknown = append(unknown, gk.String())
				}
				continue
			}
			ns := ""
			if ki.namespaced {
				ns = o.Metadata.Namespace
			}
			what := o.Kind + " " + o.Metadata.Name
			for _, v := range helmVerbs {
				add(&direct, Permission{Verb: v, Group: gk.Group, Resource: ki.resource, Namespace: ns, For: what})
			}
			switch {
			case o.Kind == "Deployment" && gk.Group == "apps":
				add(&direct, Permission{Verb: "list", Group: "apps", Resource: "replicasets", Namespace: ns, For: "Helm's wait for " + what})
				add(&direct, Permission{Verb: "list", Resource: "pods", Namespace: ns, For: "Helm's wait for " + what})
			case gk.Group == v1alpha1.Group:
				add(&direct, Permission{Verb: "list", Group: gk.Group, Resource: ki.resource, Namespace: ns, For: "uninstall's look for " + what})
			}
			if (o.Kind == "Role" || o.Kind == "ClusterRole") && gk.Group == "rbac.authorization.k8s.io" {
				for _, r := range o.Rules {
					for _, g := range r.APIGroups {
						for _, res := range r.Resources {
							name, sub, _ := strings.Cut(res, "/")
							for _, v := range r.Verbs {
								p := Permission{Verb: v, Group: g, Resource: name, Subresource: sub, Namespace: ns, For: "a rule of " + what}
								if len(r.ResourceNames) == 0 {
									add(&rules, p)
								}
								for _, rn := range r.ResourceNames {
									p.Name = rn
									add(&rules, p)
								}
							}
						}
					}
				}
			}
		}
	}
	for _, v := range []string{"list", "delete"} {
		add(&direct, Permission{Verb: v, Group: v1alpha1.Group, Resource: v1alpha1.ResourcePipeline, Namespace: installer.InstanceNamespace, For: "uninstall's deletion of the instance's pipelines"})
	}
	// Uninstall waits until the pipelines' workloads are gone, and looks
	// into a namespace it created before deleting it.
	for _, r := range [][2]string{{"apps", "deployments"}, {"apps", "statefulsets"}, {"apps", "daemonsets"}, {"", "services"}} {
		add(&direct, Permission{Verb: "list", Group: r[0], Resource: r[1], Namespace: installer.InstanceNamespace, For: "uninstall's wait for the pipelines' workloads"})
	}
	if createNamespace {
		for _, r := range [][2]string{{"", "pods"}, {"", "configmaps"}, {"", "services"}, {"apps", "deployments"}} {
			add(&direct, Permission{Verb: "list", Group: r[0], Resource: r[1], Namespace: OperatorNamespace, For: "uninstall's look into namespace " + OperatorNamespace})
		}
	}
	for _, name := range crdNames {
		for _, v := range []string{"get", "create", "patch", "delete"} {
			add(&direct, Permission{Verb: v, Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Name: name, For: "CRD " + name})
		}
	}
	add(&direct, Permission{Verb: "get", Resource: "namespaces", Name: OperatorNamespace, For: "the operator's namespace"})
	if createNamespace {
		add(&direct, Permission{Verb: "create", Resource: "namespaces", For: "namespace " + OperatorNamespace})
		add(&direct, Permission{Verb: "delete", Resource: "namespaces", Name: OperatorNamespace, For: "namespace " + OperatorNamespace + " (uninstall)"})
	}
	add(&direct, Permission{Verb: "patch", Resource: "namespaces", Name: installer.InstanceNamespace, For: "the advisory Pod Security labels of namespace " + installer.InstanceNamespace})
	sort.Strings(unknown)
	return direct, rules, unknown
}

// servedKinds maps every kind the cluster serves to its resource, plus
// the kinds of the charts' CRDs (not served before the install).
func servedKinds(d discovery.DiscoveryInterface, crds map[schema.GroupKind]kindInfo) (map[schema.GroupKind]kindInfo, error) {
	_, lists, err := d.ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discover the cluster's API resources: %w", err)
	}
	out := map[schema.GroupKind]kindInfo{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			out[schema.GroupKind{Group: gv.Group, Kind: r.Kind}] = kindInfo{resource: r.Name, namespaced: r.Namespaced}
		}
	}
	for gk, ki := range crds {
		out[gk] = ki
	}
	return out, nil
}

// Preflight checks the cluster for the install o describes; it writes
// nothing (SelfSubjectAccessReviews are not stored).
func (t *Target) Preflight(ctx context.Context, o Options) (*Report, *prepared, error) {
	rep := &Report{Schema: SchemaVersion, Server: t.Server, Results: []preflight.Result{}}
	cs, err := loadCharts(o.Version)
	if err != nil {
		return nil, nil, err
	}
	p := &prepared{charts: cs}
	if p.operatorValues, err = operatorValues(o); err != nil {
		return nil, nil, err
	}

	// Server version against the charts' kubeVersion.
	sv, err := t.Kube.Discovery().ServerVersion()
	if err != nil {
		return nil, nil, fmt.Errorf("reach the API server %s: %w", t.Server, err)
	}
	rep.ServerVersion = sv.GitVersion
	rep.add(versionResult(sv.GitVersion, cs.kubeVersions()))
	if rep.Failed() {
		// The charts do not render for this version: nothing more to ask.
		return rep, p, nil
	}

	// Service type, then the rendered charts.
	rep.ServiceType, rep.Notes = t.serviceType(ctx, o, rep)
	p.serviceType = rep.ServiceType
	p.instanceValue = instanceValues(o, rep.ServiceType)
	rep.add(t.storageClassResult(ctx))

	crds, err := cs.crds()
	if err != nil {
		return nil, nil, err
	}
	crdKinds := map[schema.GroupKind]kindInfo{}
	var crdNames []string
	for _, c := range crds {
		crdKinds[schema.GroupKind{Group: c.Spec.Group, Kind: c.Spec.Names.Kind}] = kindInfo{resource: c.Spec.Names.Plural, namespaced: c.Spec.Scope == "Namespaced"}
		crdNames = append(crdNames, c.Name)
	}
	for _, name := range crdNames {
		rep.add(t.crdResult(ctx, name))
	}

	_, err = t.Kube.CoreV1().Namespaces().Get(ctx, OperatorNamespace, metav1.GetOptions{})
	switch {
	case err == nil:
		p.namespaceExists = true
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		// Forbidden: the permission rows below name it.
	default:
		return nil, nil, fmt.Errorf("read namespace %s: %w", OperatorNamespace, err)
	}

	opObjs, err := render(ctx, cs.operatorCh, OperatorNamespace, OperatorRelease, p.operatorValues, sv.GitVersion)
	if err != nil {
		return nil, nil, err
	}
	ciObjs, err := render(ctx, cs.instanceCh, InstanceNamespace, InstanceRelease, p.instanceValue, sv.GitVersion)
	if err != nil {
		return nil, nil, err
	}
	kinds, err := servedKinds(t.Kube.Discovery(), crdKinds)
	if err != nil {
		return nil, nil, err
	}
	direct, rules, unknown := permissions(map[string][]object{OperatorNamespace: opObjs, InstanceNamespace: ciObjs}, kinds, crdNames, !p.namespaceExists)
	if len(unknown) > 0 {
		rep.add(preflight.Result{Name: "APIResources", Severity: preflight.Fail,
			Message: "the cluster does not serve these kinds the charts create: " + strings.Join(unknown, ", "),
			Remedy:  "use a conformant cluster of a supported version"})
	}
	for _, r := range t.permissionResults(ctx, direct, rules) {
		rep.add(r)
	}
	return rep, p, nil
}

// versionResult checks the server version against the charts' kubeVersion
// constraints.
func versionResult(version string, constraints []string) preflight.Result {
	r := preflight.Result{Name: "KubernetesVersion"}
	for _, c := range constraints {
		if !chartutil.IsCompatibleRange(c, version) {
			r.Severity, r.Message = preflight.Fail, fmt.Sprintf("server version %s is outside the charts' supported range %s", version, c)
			r.Remedy = "install into a cluster whose Kubernetes version is " + c
			return r
		}
	}
	r.Severity, r.Message = preflight.Pass, fmt.Sprintf("server version %s is within the charts' supported range %s", version, strings.Join(constraints, ", "))
	return r
}

// crdResult refuses a CRD of the same name that is not tpctl's: tpctl
// never takes over another tool's CRD (and so its objects).
func (t *Target) crdResult(ctx context.Context, name string) preflight.Result {
	r := preflight.Result{Name: "CRD-" + name}
	crd, err := t.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.Severity, r.Message = preflight.Pass, "CRD "+name+" does not exist: the install creates it"
		return r
	case err != nil:
		r.Severity, r.Message = preflight.Fail, "cannot read CRD "+name+": "+err.Error()
		r.Remedy = "grant get on customresourcedefinitions"
		return r
	}
	var managers []string
	for _, mf := range crd.ManagedFields {
		if mf.Manager == installer.HelmFieldManager {
			r.Severity, r.Message = preflight.Pass, "CRD "+name+" is tpctl's (applied by "+installer.HelmFieldManager+"): the install updates it"
			return r
		}
		if !contains(managers, mf.Manager) {
			managers = append(managers, mf.Manager)
		}
	}
	owner := "no field manager recorded"
	if len(managers) > 0 {
		owner = "managed by " + strings.Join(managers, ", ")
	}
	if rel := crd.Annotations["meta.helm.sh/release-name"]; rel != "" {
		owner += "; Helm release " + crd.Annotations["meta.helm.sh/release-namespace"] + "/" + rel
	}
	r.Severity = preflight.Fail
	r.Message = fmt.Sprintf("CRD %s exists and is not tpctl's (%s): tpctl does not take it over", name, owner)
	r.Remedy = "remove that CRD's owner (and its objects) first, or install into another cluster"
	return r
}

// permissionResults asks a SelfSubjectAccessReview for each permission:
// one row that passes when all are allowed, else one failing row per
// missing permission. Role rules are asked only when escalate on the
// role kind is not granted.
func (t *Target) permissionResults(ctx context.Context, direct, rules []Permission) []preflight.Result {
	var fails []preflight.Result
	asked := 0
	check := func(p Permission) {
		asked++
		ok, reason, err := t.allowed(ctx, p)
		if ok {
			return
		}
		msg := "not allowed to " + p.String() + " (needed for " + p.For + ")"
		if err != nil {
			msg = "cannot ask whether allowed to " + p.String() + ": " + err.Error()
		} else if reason != "" {
			msg += ": " + reason
		}
		fails = append(fails, preflight.Result{Name: p.checkName(), Severity: preflight.Fail, Message: msg,
			Remedy: "grant it to this user, or install with a kubeconfig user that has it"})
	}
	for _, p := range direct {
		check(p)
	}
	escalate := map[string]bool{}
	for _, p := range rules {
		kind := "roles"
		if p.Namespace == "" {
			kind = "clusterroles"
		}
		k := kind + "|" + p.Namespace
		if _, done := escalate[k]; !done {
			ok, _, _ := t.allowed(ctx, Permission{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: kind, Namespace: p.Namespace})
			asked++
			escalate[k] = ok
		}
		if !escalate[k] {
			check(p)
		}
	}
	if len(fails) > 0 {
		return fails
	}
	return []preflight.Result{{Name: "Permissions", Severity: preflight.Pass,
		Message: fmt.Sprintf("all %d permissions the rendered charts need are granted (SelfSubjectAccessReview)", asked)}}
}

func (t *Target) allowed(ctx context.Context, p Permission) (bool, string, error) {
	ssar := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
		Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Name: p.Name}}}
	out, err := t.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return out.Status.Allowed && !out.Status.Denied, out.Status.Reason, nil
}

// storageClassResult warns when no StorageClass is the default one.
func (t *Target) storageClassResult(ctx context.Context) preflight.Result {
	r := preflight.Result{Name: "DefaultStorageClass"}
	l, err := t.Kube.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		r.Severity, r.Message = preflight.Warn, "cannot list StorageClasses ("+err.Error()+"): whether StatefulSet pipelines' storage binds is unknown"
		r.Remedy = "give StatefulSet pipelines --storage-class NAME of a class that exists"
		return r
	}
	for _, sc := range l.Items {
		for _, a := range []string{"storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"} {
			if sc.Annotations[a] == "true" {
				r.Severity, r.Message = preflight.Pass, "StorageClass "+sc.Name+" is the default: StatefulSet pipelines' storage binds to it"
				return r
			}
		}
	}
	r.Severity = preflight.Warn
	r.Message = fmt.Sprintf("no default StorageClass (%d classes): StatefulSet pipelines' storage will not bind unless a class is named", len(l.Items))
	r.Remedy = "mark a StorageClass default (storageclass.kubernetes.io/is-default-class: \"true\"), or give StatefulSet pipelines --storage-class"
	return r
}

// Known load-balancer implementations, by a fragment of their controller's
// image, and cloud providers (node spec.providerID scheme) whose cloud
// controller manager implements LoadBalancer Services.
var (
	lbImages    = []string{"metallb/controller", "kube-vip-cloud-provider", "openelb", "purelb/allocator", "cloud-controller-manager"}
	lbProviders = []string{"aws", "gce", "azure", "digitalocean", "linode", "hcloud", "oci"}
)

// loadBalancer looks for evidence that LoadBalancer Services get an
// address: a LoadBalancer Service that has one, a running controller of a
// known implementation, or nodes of a cloud provider that implements them.
// It returns the evidence ("" none) and what it could not look at.
func (t *Target) loadBalancer(ctx context.Context) (evidence string, unseen []string) {
	svcs, err := t.Kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		unseen = append(unseen, "Services ("+err.Error()+")")
	} else {
		for _, s := range svcs.Items {
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(s.Status.LoadBalancer.Ingress) > 0 {
				ing := s.Status.LoadBalancer.Ingress[0]
				addr := ing.IP
				if addr == "" {
					addr = ing.Hostname
				}
				return fmt.Sprintf("LoadBalancer Service %s/%s has the address %s", s.Namespace, s.Name, addr), nil
			}
		}
	}
	match := func(images []string) string {
		for _, img := range images {
			for _, k := range lbImages {
				if strings.Contains(img, k) {
					return img
				}
			}
		}
		return ""
	}
	deps, err := t.Kube.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		unseen = append(unseen, "Deployments ("+err.Error()+")")
	} else {
		for _, d := range deps.Items {
			if img := match(containerImages(d.Spec.Template.Spec)); img != "" && d.Status.ReadyReplicas > 0 {
				return fmt.Sprintf("Deployment %s/%s runs the load-balancer controller %s", d.Namespace, d.Name, img), nil
			}
		}
	}
	dss, err := t.Kube.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		unseen = append(unseen, "DaemonSets ("+err.Error()+")")
	} else {
		for _, d := range dss.Items {
			if img := match(containerImages(d.Spec.Template.Spec)); img != "" && d.Status.NumberReady > 0 {
				return fmt.Sprintf("DaemonSet %s/%s runs the load-balancer controller %s", d.Namespace, d.Name, img), nil
			}
		}
	}
	nodes, err := t.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		unseen = append(unseen, "Nodes ("+err.Error()+")")
	} else {
		for _, n := range nodes.Items {
			scheme, _, ok := strings.Cut(n.Spec.ProviderID, "://")
			if ok && contains(lbProviders, scheme) {
				return fmt.Sprintf("node %s is a %s node (providerID %s), whose cloud controller implements LoadBalancer Services", n.Name, scheme, n.Spec.ProviderID), nil
			}
		}
	}
	return "", unseen
}

func containerImages(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

// serviceType decides the pipelines' default Service type and adds the
// LoadBalancer row.
func (t *Target) serviceType(ctx context.Context, o Options, rep *Report) (v1alpha1.ServiceType, []string) {
	evidence, unseen := t.loadBalancer(ctx)
	r := preflight.Result{Name: "LoadBalancer"}
	switch {
	case o.ServiceType != "" && o.ServiceType != v1alpha1.ServiceTypeLoadBalancer:
		r.Severity, r.Message = preflight.Pass, "pipelines default to "+string(o.ServiceType)+" (--service-type)"
		rep.add(r)
		return o.ServiceType, nil
	case evidence != "":
		r.Severity, r.Message = preflight.Pass, evidence+": pipelines default to LoadBalancer"
		rep.add(r)
		return v1alpha1.ServiceTypeLoadBalancer, nil
	case o.ServiceType == v1alpha1.ServiceTypeLoadBalancer:
		r.Severity = preflight.Warn
		r.Message = "no LoadBalancer implementation found, but --service-type LoadBalancer: pipelines' frontends stay pending until one gives their Services an address"
		rep.add(r)
		return v1alpha1.ServiceTypeLoadBalancer, nil
	}
	msg := "no LoadBalancer implementation found (no LoadBalancer Service with an address, no known controller, no cloud provider's nodes)"
	if len(unseen) > 0 {
		msg += "; could not list " + strings.Join(unseen, ", ")
	}
	r.Severity, r.Message = preflight.Warn, msg+": pipelines default to NodePort"
	r.Remedy = "install with --service-type LoadBalancer if the cluster has a load balancer tpctl does not recognise"
	rep.add(r)
	note := "The core instance's default Service type is NodePort, not LoadBalancer: this cluster shows no LoadBalancer implementation. " +
		"A frontend inside the node port range is the node port; `tpctl pipeline endpoints` shows the others."
	return v1alpha1.ServiceTypeNodePort, []string{note}
}
