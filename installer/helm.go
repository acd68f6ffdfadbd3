package installer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	releasei "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"
)

// DefaultHelmTimeout bounds one install, upgrade or uninstall including the
// wait for its resources.
const DefaultHelmTimeout = 5 * time.Minute

// HelmFieldManager owns the CRDs the Helm step applies (and the namespaces
// it creates): a CRD whose managed fields name it is tpctl's.
const HelmFieldManager = "tpctl-installer"

const helmFieldManager = HelmFieldManager

// HelmRelease installs, upgrades and uninstalls one Helm release from a
// chart archive with the Helm SDK. The installer's plan wraps it as a step:
// Done for "already in place", Apply to install or upgrade, Uninstall.
//
// Decisions:
//
//   - CRDs. Helm installs a chart's crds/ only on first install and never
//     upgrades them. Apply therefore server-side applies every CRD of the
//     chart itself (field manager tpctl-installer) before installing or
//     upgrading, waits until each is Established, and tells Helm to skip
//     them. Uninstall leaves CRDs (and so every CoreInstance and Pipeline)
//     in place unless asked to delete them, as Helm does.
//   - A release stuck in pending-install, pending-upgrade or
//     pending-rollback (a previous run was killed mid-operation) is
//     recovered before Apply proceeds: when the history holds a deployed or
//     superseded revision, Apply rolls back to the newest such revision (the
//     last state known to work) and then upgrades; when it holds none (a
//     first install that never finished, or only failed revisions) Apply
//     uninstalls the release and installs it afresh. Recovery assumes that
//     no other Helm operation on the release runs at the same time, which
//     the installer's lock guarantees.
//   - Objects that must outlive their release (the CoreInstance, which
//     owns every pipeline of the instance) carry helm.sh/resource-policy:
//     keep, so neither an uninstall nor the recovery above deletes them.
//     They keep Helm's ownership label and annotations, so a later install
//     of the same release adopts them; it replaces them by the chart's
//     rendering (Install.Force), so values changed in between apply, while
//     the object's UID and status, and so the owner references to it,
//     stay. Keep names those kinds: recovery refuses to uninstall a
//     release whose manifest has one of them without the keep policy (a
//     chart of an older tpctl).
//   - Every operation waits for the release's resources to be ready, bounded
//     by Timeout and by the context, and reports progress at each phase and
//     every ProgressInterval while waiting.
type HelmRelease struct {
	// Kubeconfig is the path of the kubeconfig file to use ("": the
	// client's default loading rules, $KUBECONFIG then ~/.kube/config).
	Kubeconfig string
	// Context is the kubeconfig context to use ("": its current context).
	Context string
	// Namespace of the release (created when missing, with
	// NamespaceLabels).
	Namespace string
	// NamespaceLabels label the namespace when Apply creates it (through
	// Kubeconfig); a namespace that exists is left as it is.
	NamespaceLabels map[string]string
	// AdvisoryNamespaceLabels label a namespace that exists already (one
	// tpctl did not create) through server-side apply; a label it has with
	// another value stays. Uninstall removes the ones tpctl still owns.
	AdvisoryNamespaceLabels map[string]string
	// Name of the release.
	Name string
	// Chart is the chart archive (.tgz).
	Chart []byte
	// Values override the chart's values.
	Values map[string]any
	// Timeout bounds each Helm operation (DefaultHelmTimeout when 0).
	Timeout time.Duration
	// Progress receives one line per phase and periodic "still waiting"
	// lines; nil discards them.
	Progress func(msg string)
	// ProgressInterval is the period of "still waiting" lines (10s when 0).
	ProgressInterval time.Duration
	// Debug receives Helm's own log lines; nil discards them.
	Debug func(format string, args ...any)
	// CacheDir holds the client's discovery and HTTP caches (default: none
	// given, so the client's own $HOME/.kube/cache). The installer points it
	// into its state directory, which uninstall removes.
	CacheDir string
	// NoWait skips waiting for the release's resources to be ready (for
	// clusters that run no workloads, such as a bare control plane).
	NoWait bool
	// Keep lists kinds whose objects a recovery must never delete (see
	// the decisions above).
	Keep []string
	// Configure replaces the Helm configuration built from Kubeconfig (for
	// tests: an in-memory release store and a fake cluster client). CRDs
	// are applied only through Kubeconfig.
	Configure func() (*action.Configuration, error)
}

// HelmResult says what Apply did.
type HelmResult struct {
	// Action is "installed", "upgraded" or "unchanged".
	Action string
	// Recovered describes a stuck release that was recovered first, if any.
	Recovered string
	// Revision and ChartVersion of the deployed release.
	Revision     int
	ChartVersion string
}

func (h *HelmRelease) progress(format string, args ...any) {
	if h.Progress != nil {
		h.Progress(fmt.Sprintf(format, args...))
	}
}

func (h *HelmRelease) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultHelmTimeout
}

// clientSideApply is how upgrades and rollbacks write objects: as Helm 3
// did (a three-way merge patch), which Helm 4's Upgrade and Rollback take as
// "false" for their ServerSideApply. Server-side apply, Helm 4's default,
// cannot replace an adopted object (Install.ForceReplace, see the decisions
// on HelmRelease), and a release written one way and then the other leaves
// fields owned by two managers; so every operation uses client-side apply.
const clientSideApply = "false"

// waitStrategy is how Helm waits for a release's resources: Helm 3's polling
// of Deployments, Pods, Services, PVCs, Jobs' completion and so on
// (kube.LegacyStrategy), or with NoWait only for the chart's hooks.
func (h *HelmRelease) waitStrategy() kube.WaitStrategy {
	if h.NoWait {
		return kube.HookOnlyStrategy
	}
	return kube.LegacyStrategy
}

// debugHandler passes Helm's log records to HelmRelease.Debug as one line
// each: the message, then key=value for every attribute.
type debugHandler struct {
	debug func(format string, args ...any)
	attrs []slog.Attr
	group string
}

func (d debugHandler) Enabled(context.Context, slog.Level) bool { return true }

func (d debugHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range d.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Resolve())
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", d.key(a.Key), a.Value.Resolve())
		return true
	})
	d.debug("%s", b.String())
	return nil
}

func (d debugHandler) key(k string) string {
	if d.group != "" {
		return d.group + "." + k
	}
	return k
}

func (d debugHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	d.attrs = slices.Clip(d.attrs)
	for _, a := range attrs {
		d.attrs = append(d.attrs, slog.Attr{Key: d.key(a.Key), Value: a.Value})
	}
	return d
}

func (d debugHandler) WithGroup(name string) slog.Handler {
	if name != "" {
		d.group = d.key(name)
	}
	return d
}

func (h *HelmRelease) flags() *genericclioptions.ConfigFlags {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &h.Kubeconfig
	flags.Namespace = &h.Namespace
	if h.Context != "" {
		flags.Context = &h.Context
	}
	if h.CacheDir != "" {
		flags.CacheDir = &h.CacheDir
	}
	return flags
}

func (h *HelmRelease) config() (*action.Configuration, error) {
	if h.Configure != nil {
		cfg, err := h.Configure()
		if err != nil {
			return nil, fmt.Errorf("set up Helm for release %s/%s: %w", h.Namespace, h.Name, err)
		}
		return cfg, nil
	}
	handler := slog.DiscardHandler
	if h.Debug != nil {
		handler = debugHandler{debug: h.Debug}
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(handler))
	if err := cfg.Init(h.flags(), h.Namespace, "secret"); err != nil {
		return nil, fmt.Errorf("set up Helm for release %s/%s: %w", h.Namespace, h.Name, err)
	}
	return cfg, nil
}

// crdClient is the CRD client of Kubeconfig's cluster.
func (h *HelmRelease) crdClient() (apiextclient.Interface, error) {
	rc, err := h.flags().ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", h.Kubeconfig, err)
	}
	cs, err := apiextclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("make CRD client: %w", err)
	}
	return cs, nil
}

// LoadChart reads the chart archive.
func (h *HelmRelease) LoadChart() (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(h.Chart))
	if err != nil {
		return nil, fmt.Errorf("read chart archive of release %s: %w", h.Name, err)
	}
	return ch, nil
}

// Current returns the release's latest revision, or nil when there is none.
func (h *HelmRelease) Current(ctx context.Context) (*release.Release, error) {
	cfg, err := h.config()
	if err != nil {
		return nil, err
	}
	return latest(cfg, h.Name)
}

func latest(cfg *action.Configuration, name string) (*release.Release, error) {
	last, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release %s: %w", name, err)
	}
	rel, err := v1Release(last)
	if err != nil {
		return nil, fmt.Errorf("read release %s: %w", name, err)
	}
	return rel, nil
}

// history returns every stored revision of the release.
func history(cfg *action.Configuration, name string) ([]*release.Release, error) {
	all, err := cfg.Releases.History(name)
	if err != nil {
		return nil, fmt.Errorf("read history of release %s: %w", name, err)
	}
	out := make([]*release.Release, 0, len(all))
	for _, r := range all {
		rel, err := v1Release(r)
		if err != nil {
			return nil, fmt.Errorf("read history of release %s: %w", name, err)
		}
		if rel != nil {
			out = append(out, rel)
		}
	}
	return out, nil
}

// v1Release is the release record Helm's storage returns (an interface since
// Helm 4) as the v1 release, the only kind the v2 charts tpctl ships make.
func v1Release(r releasei.Releaser) (*release.Release, error) {
	switch rel := r.(type) {
	case nil:
		return nil, nil
	case *release.Release:
		return rel, nil
	case release.Release:
		return &rel, nil
	default:
		return nil, fmt.Errorf("unsupported release record %T", r)
	}
}

// Done reports whether the release is deployed with this chart's version
// and these values, so that Apply would change nothing.
func (h *HelmRelease) Done(ctx context.Context) (bool, error) {
	ch, err := h.LoadChart()
	if err != nil {
		return false, err
	}
	rel, err := h.Current(ctx)
	if err != nil || rel == nil {
		return false, err
	}
	return isCurrent(rel, ch, h.Values)
}

func isCurrent(rel *release.Release, ch *chart.Chart, vals map[string]any) (bool, error) {
	if rel.Info == nil || rel.Info.Status != rcommon.StatusDeployed || rel.Chart == nil || rel.Chart.Metadata == nil {
		return false, nil
	}
	if rel.Chart.Metadata.Name != ch.Metadata.Name || rel.Chart.Metadata.Version != ch.Metadata.Version {
		return false, nil
	}
	a, err := json.Marshal(nonNil(rel.Config))
	if err != nil {
		return false, fmt.Errorf("encode values of release %s: %w", rel.Name, err)
	}
	b, err := json.Marshal(nonNil(vals))
	if err != nil {
		return false, fmt.Errorf("encode values: %w", err)
	}
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return false, fmt.Errorf("decode values of release %s: %w", rel.Name, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return false, fmt.Errorf("decode values: %w", err)
	}
	return jsonEqual(x, y), nil
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a) // maps marshal with sorted keys
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// watch reports "still waiting" every ProgressInterval until stop is called.
func (h *HelmRelease) watch(what string) (stop func()) {
	every := h.ProgressInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.progress("%s: still waiting (%s of %s)", what, time.Since(start).Round(time.Second), h.timeout())
			}
		}
	}()
	return func() { close(done) }
}

// Apply installs the release, or upgrades it, after recovering a stuck one
// and applying the chart's CRDs.
func (h *HelmRelease) Apply(ctx context.Context) (HelmResult, error) {
	ch, err := h.LoadChart()
	if err != nil {
		return HelmResult{}, err
	}
	cfg, err := h.config()
	if err != nil {
		return HelmResult{}, err
	}
	res := HelmResult{ChartVersion: ch.Metadata.Version}
	cur, err := latest(cfg, h.Name)
	if err != nil {
		return res, err
	}
	if cur != nil {
		ok, err := isCurrent(cur, ch, h.Values)
		if err != nil {
			return res, err
		}
		if ok {
			res.Action, res.Revision = "unchanged", cur.Version
			h.progress("release %s is deployed with chart %s %s: no change", h.Name, ch.Metadata.Name, ch.Metadata.Version)
			return res, nil
		}
	}
	if cur, res.Recovered, err = h.recover(ctx, cfg, cur); err != nil {
		return res, err
	}
	if err := h.applyCRDs(ctx, ch); err != nil {
		return res, err
	}
	if err := h.createNamespace(ctx); err != nil {
		return res, err
	}
	if len(h.AdvisoryNamespaceLabels) > 0 {
		cs, err := h.kubeClient()
		if err != nil {
			return res, err
		}
		if err := h.applyAdvisoryLabels(ctx, cs); err != nil {
			return res, err
		}
	}
	var rel *release.Release
	if cur == nil {
		h.progress("installing release %s (chart %s %s) in namespace %s", h.Name, ch.Metadata.Name, ch.Metadata.Version, h.Namespace)
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace = h.Name, h.Namespace, true
		in.WaitStrategy, in.Timeout, in.SkipCRDs = h.waitStrategy(), h.timeout(), true
		// Only adopted objects (kept by an earlier release of this name) are
		// updated rather than created: replace them by the chart's version.
		// Replacing needs client-side apply (see clientSideApply).
		in.ServerSideApply, in.ForceReplace = false, true
		stop := h.watch("install " + h.Name)
		var out releasei.Releaser
		out, err = in.RunWithContext(ctx, ch, h.Values)
		stop()
		if err == nil {
			rel, err = v1Release(out)
		}
		if err != nil {
			return res, fmt.Errorf("install release %s: %w", h.Name, err)
		}
		res.Action = "installed"
	} else {
		h.progress("upgrading release %s from revision %d (chart %s) to chart %s %s", h.Name, cur.Version,
			chartVersion(cur), ch.Metadata.Name, ch.Metadata.Version)
		up := action.NewUpgrade(cfg)
		up.Namespace, up.WaitStrategy, up.Timeout, up.SkipCRDs, up.MaxHistory = h.Namespace, h.waitStrategy(), h.timeout(), true, 10
		up.ServerSideApply = clientSideApply
		stop := h.watch("upgrade " + h.Name)
		var out releasei.Releaser
		out, err = up.RunWithContext(ctx, h.Name, ch, h.Values)
		stop()
		if err == nil {
			rel, err = v1Release(out)
		}
		if err != nil {
			return res, fmt.Errorf("upgrade release %s: %w", h.Name, err)
		}
		res.Action = "upgraded"
	}
	res.Revision = rel.Version
	h.progress("release %s %s: revision %d, chart %s %s, ready", h.Name, res.Action, rel.Version, ch.Metadata.Name, ch.Metadata.Version)
	return res, nil
}

func chartVersion(rel *release.Release) string {
	if rel.Chart == nil || rel.Chart.Metadata == nil {
		return "unknown"
	}
	return rel.Chart.Metadata.Version
}

// recover brings a release stuck in a pending state (or with only failed
// revisions) back to one Helm can upgrade, or removes it. It returns the
// release to upgrade (nil: install afresh) and what it did.
func (h *HelmRelease) recover(ctx context.Context, cfg *action.Configuration, cur *release.Release) (*release.Release, string, error) {
	if cur == nil || cur.Info == nil {
		return cur, "", nil
	}
	status := cur.Info.Status
	if !status.IsPending() && status != rcommon.StatusFailed && status != rcommon.StatusUninstalling {
		return cur, "", nil
	}
	history, err := history(cfg, h.Name)
	if err != nil {
		return nil, "", err
	}
	var good *release.Release
	for _, r := range history {
		if r.Info != nil && (r.Info.Status == rcommon.StatusDeployed || r.Info.Status == rcommon.StatusSuperseded) &&
			r.Version != cur.Version && (good == nil || r.Version > good.Version) {
			good = r
		}
	}
	if status == rcommon.StatusFailed && good != nil {
		return cur, "", nil // Helm upgrades a failed release that has a deployed past
	}
	if good != nil {
		h.progress("release %s is stuck in %s at revision %d: rolling back to revision %d", h.Name, status, cur.Version, good.Version)
		rb := action.NewRollback(cfg)
		rb.Version, rb.WaitStrategy, rb.Timeout = good.Version, h.waitStrategy(), h.timeout()
		rb.ServerSideApply = clientSideApply
		stop := h.watch("rollback " + h.Name)
		err := rb.Run(h.Name)
		stop()
		if err != nil {
			return nil, "", fmt.Errorf("roll back stuck release %s to revision %d: %w", h.Name, good.Version, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("roll back release %s: %w", h.Name, err)
		}
		after, err := latest(cfg, h.Name)
		if err != nil {
			return nil, "", err
		}
		return after, fmt.Sprintf("rolled back from %s revision %d to revision %d", status, cur.Version, good.Version), nil
	}
	if unkept := h.unkept(cur); len(unkept) > 0 {
		return nil, "", fmt.Errorf("release %s is stuck in %s at revision %d with no working revision, and uninstalling it to install afresh would delete %s (its chart does not mark it helm.sh/resource-policy: keep); refusing: see `helm -n %s history %s`",
			h.Name, status, cur.Version, strings.Join(unkept, ", "), h.Namespace, h.Name)
	}
	h.progress("release %s is stuck in %s at revision %d with no working revision: uninstalling it to install afresh", h.Name, status, cur.Version)
	if err := h.uninstall(ctx, cfg); err != nil {
		return nil, "", err
	}
	return nil, fmt.Sprintf("uninstalled %s revision %d", status, cur.Version), nil
}

// createNamespace creates the release's namespace with NamespaceLabels when
// it is missing (Helm's own CreateNamespace sets no labels).
func (h *HelmRelease) createNamespace(ctx context.Context) error {
	if len(h.NamespaceLabels) == 0 {
		return nil
	}
	cs, err := h.kubeClient()
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Get(ctx, h.Namespace, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read namespace %s: %w", h.Namespace, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.Namespace, Labels: h.NamespaceLabels}}
	h.progress("creating namespace %s", h.Namespace)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: helmFieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", h.Namespace, err)
	}
	return nil
}

// unkept names the objects of rel's manifest whose kind is one of Keep and
// that Helm would delete with the release.
func (h *HelmRelease) unkept(rel *release.Release) []string {
	if len(h.Keep) == 0 {
		return nil
	}
	var out []string
	for _, m := range releaseutil.SplitManifests(rel.Manifest) {
		var head releaseutil.SimpleHead
		if err := yaml.Unmarshal([]byte(m), &head); err != nil || !slices.Contains(h.Keep, head.Kind) {
			continue
		}
		name := "(unnamed)"
		if head.Metadata != nil {
			name = head.Metadata.Name
			if strings.EqualFold(strings.TrimSpace(head.Metadata.Annotations[kube.ResourcePolicyAnno]), kube.KeepPolicy) {
				continue
			}
		}
		out = append(out, head.Kind+" "+name)
	}
	sort.Strings(out)
	return out
}

// applyCRDs server-side applies the chart's CRDs and waits until each is
// Established.
func (h *HelmRelease) applyCRDs(ctx context.Context, ch *chart.Chart) error {
	crds := ch.CRDObjects()
	if len(crds) == 0 {
		return nil
	}
	cs, err := h.crdClient()
	if err != nil {
		return err
	}
	for _, c := range crds {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(c.File.Data, &crd); err != nil {
			return fmt.Errorf("read CRD %s of chart %s: %w", c.Filename, ch.Metadata.Name, err)
		}
		crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		body, err := json.Marshal(&crd)
		if err != nil {
			return fmt.Errorf("encode CRD %s: %w", crd.Name, err)
		}
		h.progress("applying CRD %s", crd.Name)
		force := true
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: helmFieldManager, Force: &force}); err != nil {
			return fmt.Errorf("apply CRD %s: %w", crd.Name, err)
		}
		err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, h.timeout(), true, func(ctx context.Context) (bool, error) {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // retried until the timeout
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s to be established: %w", crd.Name, err)
		}
	}
	return nil
}

// Uninstall removes the release and waits for its resources to go; a
// release that does not exist is not an error. With deleteCRDs the chart's
// CRDs are deleted too, and with them every custom resource of their kinds.
func (h *HelmRelease) Uninstall(ctx context.Context, deleteCRDs bool) error {
	cfg, err := h.config()
	if err != nil {
		return err
	}
	if err := h.uninstall(ctx, cfg); err != nil {
		return err
	}
	if len(h.AdvisoryNamespaceLabels) > 0 {
		cs, err := h.kubeClient()
		if err != nil {
			return err
		}
		if err := h.removeAdvisoryLabels(ctx, cs); err != nil {
			return err
		}
	}
	if !deleteCRDs {
		return nil
	}
	ch, err := h.LoadChart()
	if err != nil {
		return err
	}
	cs, err := h.crdClient()
	if err != nil {
		return err
	}
	for _, c := range ch.CRDObjects() {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(c.File.Data, &crd); err != nil {
			return fmt.Errorf("read CRD %s: %w", c.Filename, err)
		}
		h.progress("deleting CRD %s", crd.Name)
		if err := cs.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil &&
			!apierrors.IsNotFound(err) {
			return fmt.Errorf("delete CRD %s: %w", crd.Name, err)
		}
		// The API server first deletes every resource of the CRD's kind.
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, h.timeout(), true, func(ctx context.Context) (bool, error) {
			_, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s to be deleted: %w", crd.Name, err)
		}
	}
	return nil
}

func (h *HelmRelease) uninstall(ctx context.Context, cfg *action.Configuration) error {
	cur, err := latest(cfg, h.Name)
	if err != nil || cur == nil {
		return err
	}
	h.progress("uninstalling release %s (revision %d, %s)", h.Name, cur.Version, cur.Info.Status)
	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = h.waitStrategy(), h.timeout()
	stop := h.watch("uninstall " + h.Name)
	_, err = un.Run(h.Name)
	stop()
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall release %s: %w", h.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("uninstall release %s: %w", h.Name, err)
	}
	return nil
}

// Rollback rolls the release back to a revision of its history, as `helm
// rollback` does: Helm records a new revision with that revision's chart and
// values and applies it, with the same client-side apply and wait as Apply
// (bounded by Timeout and by the context's deadline). The chart's CRDs are
// left as they are (Helm never rolls CRDs back; an older chart's CRD could
// drop a version that stored objects use). It refuses a revision that is
// not in the history and a release that does not exist.
func (h *HelmRelease) Rollback(ctx context.Context, revision int) error {
	if revision < 1 {
		// Helm takes 0 for "the previous revision": never guess which.
		return fmt.Errorf("roll back release %s/%s: invalid revision %d", h.Namespace, h.Name, revision)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("roll back release %s/%s: %w", h.Namespace, h.Name, err)
	}
	cfg, err := h.config()
	if err != nil {
		return err
	}
	cur, err := latest(cfg, h.Name)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("roll back release %s/%s: the release does not exist", h.Namespace, h.Name)
	}
	all, err := history(cfg, h.Name)
	if err != nil {
		return err
	}
	var target *release.Release
	for _, r := range all {
		if r.Version == revision {
			target = r
		}
	}
	if target == nil {
		return fmt.Errorf("roll back release %s/%s: revision %d is not in its history (see `helm -n %s history %s`)", h.Namespace, h.Name, revision, h.Namespace, h.Name)
	}
	status := "unknown"
	if cur.Info != nil {
		status = string(cur.Info.Status)
	}
	h.progress("rolling back release %s from revision %d (%s, chart %s) to revision %d (chart %s)", h.Name, cur.Version, status, chartVersion(cur), revision, chartVersion(target))
	rb := action.NewRollback(cfg)
	rb.Version, rb.WaitStrategy, rb.Timeout, rb.MaxHistory = revision, h.waitStrategy(), h.timeout(), 10
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < rb.Timeout {
		// Helm's Rollback takes no context: its timeout is the bound.
		rb.Timeout = max(time.Until(dl), time.Second)
	}
	rb.ServerSideApply = clientSideApply
	stop := h.watch("rollback " + h.Name)
	err = rb.Run(h.Name)
	stop()
	if err != nil {
		return fmt.Errorf("roll back release %s/%s to revision %d: %w", h.Namespace, h.Name, revision, err)
	}
	after, err := latest(cfg, h.Name)
	if err != nil {
		return err
	}
	if after == nil || after.Info == nil || after.Info.Status != rcommon.StatusDeployed {
		return fmt.Errorf("roll back release %s/%s to revision %d: the release is not deployed afterwards", h.Namespace, h.Name, revision)
	}
	h.progress("release %s rolled back: revision %d, chart %s (that of revision %d), ready", h.Name, after.Version, chartVersion(after), revision)
	return nil
}

// HelmReleases rolls the host's Helm releases back by namespace and name
// (upgrade's Releaser) through Kubeconfig, each with HelmRelease.Rollback.
type HelmReleases struct {
	Kubeconfig string
	// CacheDir, Timeout, NoWait and Progress are HelmRelease's.
	CacheDir string
	Timeout  time.Duration
	NoWait   bool
	Progress func(msg string)
}

// Rollback rolls release namespace/name back to revision.
func (r HelmReleases) Rollback(ctx context.Context, namespace, name string, revision int) error {
	h := &HelmRelease{Kubeconfig: r.Kubeconfig, Namespace: namespace, Name: name, CacheDir: r.CacheDir,
		Timeout: r.Timeout, NoWait: r.NoWait, Progress: r.Progress}
	return h.Rollback(ctx, revision)
}
