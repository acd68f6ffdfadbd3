package kubetarget

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
)

// ErrNothingToUninstall: no tpctl release, CRD or namespace is there.
var ErrNothingToUninstall = errors.New("no tpctl release, CRD or namespace in this cluster")

// UninstallResult is what an uninstall removes (or, for a dry run, would
// remove) and keeps.
type UninstallResult struct {
	DryRun   bool            `json:"dryRun,omitempty"`
	KeepData bool            `json:"keepData,omitempty"`
	Releases []ReleaseResult `json:"releases"`
	// Instances and Pipelines are deleted unless KeepData.
	Instances []string `json:"instances"`
	Pipelines []string `json:"pipelines"`
	// CRDs are tpctl's CRDs, deleted unless KeepData; Foreign are CRDs of
	// the same names that are not tpctl's and stay.
	CRDs    []string `json:"crds"`
	Foreign []string `json:"foreignCrds,omitempty"`
	// Namespace is deleted when tpctl created it and nothing else is in it.
	Namespace string   `json:"namespace,omitempty"`
	Plan      []string `json:"plan"`
	Kept      []string `json:"kept,omitempty"`
}

// Uninstall removes exactly the two releases (and, unless keepData, the
// core instance's CoreInstances with every Pipeline of them and tpctl's
// CRDs), and the operator's namespace when tpctl created it. With dryRun
// it only says what it would do.
func (t *Target) Uninstall(ctx context.Context, o Options, keepData, dryRun bool, progress func(string)) (*UninstallResult, error) {
	if progress == nil {
		progress = func(string) {}
	}
	res := &UninstallResult{DryRun: dryRun, KeepData: keepData, Releases: []ReleaseResult{}, Instances: []string{}, Pipelines: []string{}, CRDs: []string{}}
	rels := []struct{ ns, name string }{{InstanceNamespace, InstanceRelease}, {OperatorNamespace, OperatorRelease}}
	for _, r := range rels {
		cur, err := t.release(r.ns, r.name, nil, nil, o, progress).Current(ctx)
		if err != nil {
			return nil, err
		}
		if cur != nil {
			rr := ReleaseResult{Namespace: r.ns, Name: r.name, Revision: cur.Version, Action: "remove"}
			if cur.Chart != nil && cur.Chart.Metadata != nil {
				rr.Chart = cur.Chart.Metadata.Name + " " + cur.Chart.Metadata.Version
			}
			res.Releases = append(res.Releases, rr)
			res.Plan = append(res.Plan, fmt.Sprintf("Helm uninstall of release %s/%s (revision %d, %s)", r.ns, r.name, rr.Revision, rr.Chart))
		}
	}
	instances, pipelines, err := t.releaseInstances(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range instances {
		res.Instances = append(res.Instances, InstanceNamespace+"/"+n)
	}
	for _, p := range pipelines {
		res.Pipelines = append(res.Pipelines, InstanceNamespace+"/"+p.GetName())
	}
	for _, name := range installer.TpctlCRDs() {
		crd, err := t.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("read CRD %s: %w", name, err)
		}
		owned := false
		for _, mf := range crd.ManagedFields {
			owned = owned || mf.Manager == installer.HelmFieldManager
		}
		if owned {
			res.CRDs = append(res.CRDs, name)
		} else {
			res.Foreign = append(res.Foreign, name)
		}
	}
	ns, err := t.Kube.CoreV1().Namespaces().Get(ctx, OperatorNamespace, metav1.GetOptions{})
	switch {
	case err == nil && ns.Annotations[CreatedByAnnotation] != "":
		res.Namespace = OperatorNamespace
	case err == nil:
		res.Kept = append(res.Kept, "namespace "+OperatorNamespace+" (tpctl did not create it)")
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("read namespace %s: %w", OperatorNamespace, err)
	}
	if len(res.Releases) == 0 && len(res.CRDs) == 0 && len(res.Instances) == 0 && res.Namespace == "" {
		return res, ErrNothingToUninstall
	}
	if keepData {
		if len(res.Instances)+len(res.Pipelines) > 0 {
			res.Kept = append(res.Kept, fmt.Sprintf("CoreInstance(s) %s and %d Pipeline(s) (--keep-data; without the operator nothing reconciles them)",
				strings.Join(res.Instances, ", "), len(res.Pipelines)))
		}
		if len(res.CRDs) > 0 {
			res.Kept = append(res.Kept, "CRDs "+strings.Join(res.CRDs, ", ")+" (--keep-data)")
		}
	} else {
		var plan []string
		for _, n := range res.Instances {
			plan = append(plan, fmt.Sprintf("delete CoreInstance %s and its %d Pipeline(s), and wait until their workloads are gone", n, len(res.Pipelines)))
		}
		res.Plan = append(plan, res.Plan...)
		for _, c := range res.CRDs {
			res.Plan = append(res.Plan, "delete CRD "+c)
		}
	}
	for _, c := range res.Foreign {
		res.Kept = append(res.Kept, "CRD "+c+" (not tpctl's)")
	}
	if res.Namespace != "" {
		res.Plan = append(res.Plan, "delete namespace "+OperatorNamespace+" (tpctl created it) when nothing else is left in it")
	}
	if dryRun {
		return res, nil
	}

	limit := o.Timeout
	if limit <= 0 {
		limit = installer.DefaultHelmTimeout
	}
	if !keepData && len(res.Instances) > 0 {
		if err := t.deleteInstances(ctx, instances, pipelines, limit, o.NoWait, progress); err != nil {
			return res, err
		}
	}
	for _, r := range rels {
		if err := t.release(r.ns, r.name, nil, nil, o, progress).Uninstall(ctx, false); err != nil {
			return res, err
		}
	}
	if !keepData {
		for _, name := range res.CRDs {
			if err := t.deleteCRD(ctx, name, limit, progress); err != nil {
				return res, err
			}
		}
	}
	if res.Namespace != "" {
		if left, err := t.namespaceLeftovers(ctx); err != nil {
			return res, err
		} else if len(left) > 0 {
			res.Kept = append(res.Kept, "namespace "+OperatorNamespace+": it still holds "+strings.Join(left, ", "))
			res.Namespace = ""
		} else if err := t.deleteNamespace(ctx, limit, o.NoWait, progress); err != nil {
			return res, err
		}
	}
	return res, nil
}

// releaseInstances returns the CoreInstances release core made (Helm's
// ownership annotations name it) and every Pipeline of them.
func (t *Target) releaseInstances(ctx context.Context) ([]string, []unstructured.Unstructured, error) {
	l, err := t.Dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil // no CRD
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list CoreInstances of %s: %w", InstanceNamespace, err)
	}
	var names []string
	for _, u := range l.Items {
		a := u.GetAnnotations()
		if a["meta.helm.sh/release-name"] == InstanceRelease && a["meta.helm.sh/release-namespace"] == InstanceNamespace {
			names = append(names, u.GetName())
		}
	}
	if len(names) == 0 {
		return nil, nil, nil
	}
	return t.instancePipelines(ctx, names)
}

// instancePipelines returns names and every Pipeline of those instances.
func (t *Target) instancePipelines(ctx context.Context, names []string) ([]string, []unstructured.Unstructured, error) {
	pl, err := t.Dyn.Resource(pipelinesGVR).Namespace(InstanceNamespace).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("list Pipelines of %s: %w", InstanceNamespace, err)
	}
	var pipelines []unstructured.Unstructured
	if pl != nil {
		for _, p := range pl.Items {
			inst, _, _ := unstructured.NestedString(p.Object, "spec", "instance")
			if contains(names, inst) {
				pipelines = append(pipelines, p)
			}
		}
	}
	sort.Slice(pipelines, func(i, j int) bool { return pipelines[i].GetName() < pipelines[j].GetName() })
	return names, pipelines, nil
}

// deleteInstances deletes the instances, then their pipelines (the
// instance first: its operator then no longer recreates its health-check
// pipeline; a pipeline that appears meanwhile is deleted at the next look),
// and waits until they and the workloads and Services the operator made
// for the pipelines (labelled with their names) are gone.
func (t *Target) deleteInstances(ctx context.Context, instances []string, pipelines []unstructured.Unstructured, limit time.Duration, noWait bool, progress func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, n := range instances {
		progress(fmt.Sprintf("deleting CoreInstance %s/%s and its %d Pipeline(s)", InstanceNamespace, n, len(pipelines)))
		if err := t.Dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete CoreInstance %s/%s: %w", InstanceNamespace, n, err)
		}
	}
	var names []string
	for _, p := range pipelines {
		names = append(names, p.GetName())
	}
	for {
		_, now, err := t.instancePipelines(ctx, instances)
		if err != nil {
			return err
		}
		for _, p := range now {
			if !contains(names, p.GetName()) {
				names = append(names, p.GetName())
			}
			if p.GetDeletionTimestamp() != nil {
				continue
			}
			uid := p.GetUID()
			err := t.Dyn.Resource(pipelinesGVR).Namespace(InstanceNamespace).Delete(ctx, p.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("delete Pipeline %s/%s: %w", InstanceNamespace, p.GetName(), err)
			}
		}
		sel := ""
		if len(names) > 0 {
			req, err := labels.NewRequirement(v1alpha1.LabelPipeline, selection.In, names)
			if err != nil {
				return fmt.Errorf("select the pipelines' objects: %w", err)
			}
			sel = labels.NewSelector().Add(*req).String()
		}
		left, err := t.instanceLeftovers(ctx, instances, names, sel, noWait)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still there after %s: %s: %w", limit, strings.Join(left, ", "), ctx.Err())
		case <-time.After(t.poll()):
		}
	}
}

// instanceLeftovers names what of the deleted instances is still there;
// without waiting for workloads (noWait) only the custom resources count.
func (t *Target) instanceLeftovers(ctx context.Context, instances, pipelines []string, sel string, noWait bool) ([]string, error) {
	var left []string
	for _, n := range instances {
		_, err := t.Dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, n, metav1.GetOptions{})
		if err == nil {
			left = append(left, "CoreInstance "+n)
		} else if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	for _, n := range pipelines {
		_, err := t.Dyn.Resource(pipelinesGVR).Namespace(InstanceNamespace).Get(ctx, n, metav1.GetOptions{})
		if err == nil {
			left = append(left, "Pipeline "+n)
		} else if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	if noWait || sel == "" {
		return left, nil
	}
	lo := metav1.ListOptions{LabelSelector: sel}
	apps := t.Kube.AppsV1()
	if l, err := apps.Deployments(InstanceNamespace).List(ctx, lo); err != nil {
		return nil, err
	} else {
		for _, o := range l.Items {
			left = append(left, "Deployment "+o.Name)
		}
	}
	if l, err := apps.StatefulSets(InstanceNamespace).List(ctx, lo); err != nil {
		return nil, err
	} else {
		for _, o := range l.Items {
			left = append(left, "StatefulSet "+o.Name)
		}
	}
	if l, err := apps.DaemonSets(InstanceNamespace).List(ctx, lo); err != nil {
		return nil, err
	} else {
		for _, o := range l.Items {
			left = append(left, "DaemonSet "+o.Name)
		}
	}
	if l, err := t.Kube.CoreV1().Services(InstanceNamespace).List(ctx, lo); err != nil {
		return nil, err
	} else {
		for _, o := range l.Items {
			left = append(left, "Service "+o.Name)
		}
	}
	return left, nil
}

func (t *Target) deleteCRD(ctx context.Context, name string, limit time.Duration, progress func(string)) error {
	progress("deleting CRD " + name)
	crds := t.Ext.ApiextensionsV1().CustomResourceDefinitions()
	if err := crds.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete CRD %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		_, err := crds.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not gone after %s: %w", name, limit, ctx.Err())
		case <-time.After(t.poll()):
		}
	}
}

// namespaceLeftovers names what is in the operator's namespace besides
// what Kubernetes puts in every namespace.
func (t *Target) namespaceLeftovers(ctx context.Context) ([]string, error) {
	var left []string
	core := t.Kube.CoreV1()
	pods, err := core.Pods(OperatorNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list what is left in namespace %s: %w", OperatorNamespace, err)
	}
	for _, p := range pods.Items {
		// The operator's pods go with its Deployment (Helm's uninstall
		// waited for that one, the garbage collector takes its pods).
		if p.DeletionTimestamp == nil && p.Labels["app.kubernetes.io/instance"] != OperatorRelease {
			left = append(left, "Pod "+p.Name)
		}
	}
	secrets, err := core.Secrets(OperatorNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list what is left in namespace %s: %w", OperatorNamespace, err)
	}
	for _, s := range secrets.Items {
		left = append(left, "Secret "+s.Name)
	}
	cms, err := core.ConfigMaps(OperatorNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list what is left in namespace %s: %w", OperatorNamespace, err)
	}
	for _, c := range cms.Items {
		if c.Name != "kube-root-ca.crt" {
			left = append(left, "ConfigMap "+c.Name)
		}
	}
	svcs, err := core.Services(OperatorNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list what is left in namespace %s: %w", OperatorNamespace, err)
	}
	for _, s := range svcs.Items {
		left = append(left, "Service "+s.Name)
	}
	deps, err := t.Kube.AppsV1().Deployments(OperatorNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list what is left in namespace %s: %w", OperatorNamespace, err)
	}
	for _, d := range deps.Items {
		left = append(left, "Deployment "+d.Name)
	}
	return left, nil
}

func (t *Target) deleteNamespace(ctx context.Context, limit time.Duration, noWait bool, progress func(string)) error {
	progress("deleting namespace " + OperatorNamespace)
	nss := t.Kube.CoreV1().Namespaces()
	if err := nss.Delete(ctx, OperatorNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", OperatorNamespace, err)
	}
	if noWait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		_, err := nss.Get(ctx, OperatorNamespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s not gone after %s (its finalizers wait for the namespace controller): %w", OperatorNamespace, limit, ctx.Err())
		case <-time.After(t.poll()):
		}
	}
}
