// Package kubetarget installs tpctl's two charts (the operator and the
// core instance) into an existing Kubernetes cluster, and removes exactly
// them again: `tpctl install --target kubernetes` and `tpctl uninstall
// --target kubernetes`.
//
// Nothing on the local host is written: no state file, no unit, no cache.
// The record of what was installed is Helm's own: the release Secrets
// (sh.helm.release.v1.<release>.v<N>) of release tp-operator in namespace
// tpctl-system and release core in namespace default. The tpctl CRDs are
// tpctl's when their managed fields name installer.HelmFieldManager, and
// namespace tpctl-system is tpctl's when it carries CreatedByAnnotation.
//
// Before anything is written a cluster preflight runs (Preflight): server
// version against the charts' kubeVersion, every permission the rendered
// charts need (SelfSubjectAccessReview), CRDs of the same name that are not
// tpctl's, a LoadBalancer implementation, a default StorageClass.
package kubetarget

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
)

// Where the charts go: the same releases and namespaces as on a tpctl host.
const (
	OperatorNamespace = installer.OperatorNamespace
	OperatorRelease   = installer.OperatorRelease
	InstanceNamespace = installer.InstanceNamespace
	InstanceRelease   = installer.InstanceRelease
)

// CreatedByAnnotation marks the operator namespace when tpctl created it;
// uninstall deletes only a namespace that carries it.
const CreatedByAnnotation = "telemetry.tpctl.dev/created-by"

// createdByValue is CreatedByAnnotation's value.
const createdByValue = "tpctl install --target kubernetes"

// PublishedOperatorImage is the operator image a release build publishes,
// by digest (repository@sha256:…). It is stamped at link time by the
// release (-X github.com/tpctl/tpctl/kubetarget.PublishedOperatorImage=…);
// a plain build has none and then needs --operator-image.
var PublishedOperatorImage = ""

// Clients are the API clients of the target cluster.
type Clients struct {
	Kube kubernetes.Interface
	Ext  apiextclient.Interface
	Dyn  dynamic.Interface
	// Server is the API server's URL (for messages).
	Server string
}

// Target is one cluster reached through a kubeconfig and context.
type Target struct {
	// Kubeconfig and Context select the cluster ("": client defaults).
	Kubeconfig, Context string
	Clients
	// Helm wraps a release (the release itself when nil); tests swap it.
	Helm func(*installer.HelmRelease) installer.HelmClient
	// Poll is the interval of the waits (1s when 0).
	Poll time.Duration
}

// Open builds the clients from the kubeconfig (default loading rules when
// empty) and context. It reads local files only; it does not contact the
// cluster.
func Open(kubeconfig, kubeContext string) (*Target, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		where := "the default kubeconfig ($KUBECONFIG, ~/.kube/config)"
		if kubeconfig != "" {
			where = kubeconfig
		}
		if kubeContext != "" {
			where += ", context " + kubeContext
		}
		return nil, fmt.Errorf("load %s: %w", where, err)
	}
	cfg.UserAgent = "tpctl"
	cfg.Timeout = 30 * time.Second
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes CRD client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return &Target{Kubeconfig: kubeconfig, Context: kubeContext,
		Clients: Clients{Kube: kc, Ext: ext, Dyn: dyn, Server: cfg.Host}}, nil
}

func (t *Target) poll() time.Duration {
	if t.Poll > 0 {
		return t.Poll
	}
	return time.Second
}

// release returns the Helm release namespace/name with chart (nil for an
// uninstall) and values.
func (t *Target) release(namespace, name string, chart []byte, values map[string]any, o Options, progress func(string)) installer.HelmClient {
	h := &installer.HelmRelease{Kubeconfig: t.Kubeconfig, Context: t.Context, Namespace: namespace, Name: name,
		Chart: chart, Values: values, Timeout: o.Timeout, NoWait: o.NoWait, Progress: progress}
	h.Configure = t.helmConfig(namespace)
	if namespace == InstanceNamespace {
		// A shared namespace: warn and audit, never refuse others' pods.
		h.AdvisoryNamespaceLabels = installer.AdvisoryNamespaceLabels()
		h.Keep = []string{v1alpha1.KindCoreInstance}
	}
	if t.Helm != nil {
		return t.Helm(h)
	}
	return h
}

// ResolveImage returns the operator image to install: ref when given,
// else published (PublishedOperatorImage in production). It refuses a build
// that publishes none (it never invents a reference) and a reference
// without a tag or digest.
func ResolveImage(ref, published string) (string, error) {
	if ref == "" {
		ref = published
		if ref == "" {
			return "", errors.New("this tpctl build names no published operator image: pass --operator-image REF, an image the cluster's nodes can pull (for example registry.example.com/tpctl-operator@sha256:<digest>)")
		}
	}
	if _, _, err := splitImage(ref); err != nil {
		return "", fmt.Errorf("--operator-image %q: %w", ref, err)
	}
	return ref, nil
}

// splitImage splits an image reference into the chart's image.repository
// and image.tag, which the chart joins with ':' again: name:tag gives
// (name, tag), name@sha256:hex gives (name@sha256, hex), so the rendered
// image is the reference as given.
func splitImage(ref string) (repo, tag string, err error) {
	if ref == "" || strings.ContainsAny(ref, " \t\n\"'") {
		return "", "", errors.New("not an image reference")
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash || colon == len(ref)-1 {
		return "", "", errors.New("name a tag (name:tag) or a digest (name@sha256:…): an image without one would be whatever :latest is when a node pulls it")
	}
	if at := strings.Index(ref, "@"); at >= 0 && !strings.HasPrefix(ref[at+1:], "sha256:") {
		return "", "", errors.New("a digest must be sha256:<hex>")
	}
	return ref[:colon], ref[colon+1:], nil
}

// helmConfig is the Helm configuration of release namespace: the same
// kubeconfig and context, with discovery cached in memory only (Helm's
// default client caches it under ~/.kube/cache; this target writes nothing
// on the local host).
func (t *Target) helmConfig(namespace string) func() (*action.Configuration, error) {
	return func() (*action.Configuration, error) {
		flags := genericclioptions.NewConfigFlags(false)
		kc, kctx, ns := t.Kubeconfig, t.Context, namespace
		flags.KubeConfig, flags.Namespace = &kc, &ns
		if kctx != "" {
			flags.Context = &kctx
		}
		cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
		if err := cfg.Init(memGetter{ConfigFlags: flags}, namespace, "secret"); err != nil {
			return nil, err
		}
		return cfg, nil
	}
}

// memGetter is ConfigFlags with an in-memory discovery cache.
type memGetter struct{ *genericclioptions.ConfigFlags }

func (g memGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	rc, err := g.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	return memory.NewMemCacheClient(dc), nil
}

func (g memGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(dc)
	return restmapper.NewShortcutExpander(mapper, dc, nil), nil
}
