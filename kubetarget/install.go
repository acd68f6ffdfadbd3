package kubetarget

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/installer"
)

// Record says where the record of an install lives.
const Record = "Helm's release Secrets: sh.helm.release.v1." + OperatorRelease + ".v<N> in namespace " + OperatorNamespace +
	" and sh.helm.release.v1." + InstanceRelease + ".v<N> in namespace " + InstanceNamespace + "; nothing is written on this host"

// ReleaseResult is one Helm release after the install.
type ReleaseResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Chart     string `json:"chart"`
	Action    string `json:"action"`
	Revision  int    `json:"revision"`
}

// Result is what an install did (or, for a dry run, would do).
type Result struct {
	DryRun    bool                 `json:"dryRun,omitempty"`
	Preflight *Report              `json:"preflight"`
	Image     string               `json:"operatorImage"`
	Releases  []ReleaseResult      `json:"releases"`
	Instance  string               `json:"instance"`
	Service   v1alpha1.ServiceType `json:"serviceType"`
	// NamespaceCreated: tpctl created (or would create) the operator's
	// namespace, and uninstall deletes it.
	NamespaceCreated bool   `json:"namespaceCreated"`
	Ready            bool   `json:"ready"`
	Record           string `json:"record"`
	// Plan lists the actions in order (dry run and install alike).
	Plan []string `json:"plan"`
}

func (t *Target) planLines(o Options, p *prepared) []string {
	var out []string
	if !p.namespaceExists {
		out = append(out, fmt.Sprintf("create namespace %s (Pod Security restricted: enforce, warn, audit; annotated %s)", OperatorNamespace, CreatedByAnnotation))
	}
	crds, _ := p.charts.crds()
	for _, c := range crds {
		out = append(out, "apply CRD "+c.Name+" (server-side, field manager "+installer.HelmFieldManager+")")
	}
	out = append(out,
		fmt.Sprintf("Helm install or upgrade of release %s/%s, chart %s %s: least-privilege RBAC and the operator Deployment, image %s (pull policy IfNotPresent)",
			OperatorNamespace, OperatorRelease, charts.Operator, p.charts.operatorVer, o.OperatorImage),
		fmt.Sprintf("Helm install or upgrade of release %s/%s, chart %s %s: CoreInstance %s/%s, health check on TCP %d, pipelines default to %s; Pod Security restricted warn and audit labels on namespace %s",
			InstanceNamespace, InstanceRelease, charts.CoreInstance, p.charts.instanceVer, InstanceNamespace, o.instanceName(), installer.HealthCheckPort, p.serviceType, InstanceNamespace))
	if !o.NoWait {
		out = append(out, fmt.Sprintf("wait until CoreInstance %s/%s is Ready", InstanceNamespace, o.instanceName()))
	}
	return out
}

// Install runs the cluster preflight and, when it passes, installs the
// operator and core-instance releases (with dryRun: only the preflight and
// the plan). A failed preflight is a *PreflightError and writes nothing.
func (t *Target) Install(ctx context.Context, o Options, dryRun bool, progress func(string)) (*Result, error) {
	if progress == nil {
		progress = func(string) {}
	}
	rep, p, err := t.Preflight(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &Result{DryRun: dryRun, Preflight: rep, Image: o.OperatorImage, Instance: InstanceNamespace + "/" + o.instanceName(),
		Service: p.serviceType, NamespaceCreated: !p.namespaceExists, Record: Record, Plan: t.planLines(o, p)}
	if rep.Failed() {
		return res, &PreflightError{Report: rep}
	}
	if dryRun {
		return res, nil
	}
	if !p.namespaceExists {
		if err := t.createNamespace(ctx, progress); err != nil {
			return res, err
		}
	}
	for _, r := range []struct {
		ns, name, chart, version string
		data                     []byte
		values                   map[string]any
	}{
		{OperatorNamespace, OperatorRelease, charts.Operator, p.charts.operatorVer, p.charts.operator, p.operatorValues},
		{InstanceNamespace, InstanceRelease, charts.CoreInstance, p.charts.instanceVer, p.charts.instance, p.instanceValue},
	} {
		h := t.release(r.ns, r.name, r.data, r.values, o, progress)
		hr, err := h.Apply(ctx)
		if err != nil {
			return res, err
		}
		res.Releases = append(res.Releases, ReleaseResult{Namespace: r.ns, Name: r.name, Chart: r.chart + " " + r.version, Action: hr.Action, Revision: hr.Revision})
	}
	if o.NoWait {
		return res, nil
	}
	if err := t.waitInstance(ctx, o, progress); err != nil {
		return res, err
	}
	res.Ready = true
	return res, nil
}

func (t *Target) createNamespace(ctx context.Context, progress func(string)) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace, Labels: installer.RestrictedNamespaceLabels(),
		Annotations: map[string]string{CreatedByAnnotation: createdByValue}}}
	progress("creating namespace " + OperatorNamespace)
	_, err := t.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: installer.HelmFieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", OperatorNamespace, err)
	}
	return nil
}

// waitInstance waits until the CoreInstance is Ready for its generation.
func (t *Target) waitInstance(ctx context.Context, o Options, progress func(string)) error {
	limit := o.ReadyTimeout
	if limit <= 0 {
		limit = installer.DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	name, last := o.instanceName(), ""
	for {
		why := t.instanceNotReady(ctx, name)
		if why == "" {
			progress(fmt.Sprintf("CoreInstance %s/%s is Ready", InstanceNamespace, name))
			return nil
		}
		if why != last {
			progress("waiting for CoreInstance " + InstanceNamespace + "/" + name + ": " + why)
			last = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CoreInstance %s/%s not Ready after %s (%s); see `kubectl -n %s describe coreinstance %s` and `kubectl -n %s logs deploy/%s`: %w",
				InstanceNamespace, name, limit, why, InstanceNamespace, name, OperatorNamespace, OperatorRelease, ctx.Err())
		case <-time.After(t.poll()):
		}
	}
}

var coreInstancesGVR = v1alpha1.GroupVersion.WithResource(v1alpha1.ResourceCoreInstance)
var pipelinesGVR = v1alpha1.GroupVersion.WithResource(v1alpha1.ResourcePipeline)

// instanceNotReady says why the CoreInstance is not Ready ("" when it is).
func (t *Target) instanceNotReady(ctx context.Context, name string) string {
	u, err := t.Dyn.Resource(coreInstancesGVR).Namespace(InstanceNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	var inst v1alpha1.CoreInstance
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &inst); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case c == nil:
		return "not reconciled by the operator yet"
	case c.ObservedGeneration < inst.Generation:
		return fmt.Sprintf("generation %d not reconciled yet", inst.Generation)
	case c.Status != metav1.ConditionTrue:
		return c.Reason + ": " + c.Message
	}
	return ""
}
