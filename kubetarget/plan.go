package kubetarget

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/installer"
)

// Options are what the user chose.
type Options struct {
	// Version is tpctl's build version; the charts built into tpctl take
	// charts.SemVer of it.
	Version string
	// OperatorImage is the operator's image reference (see ResolveImage).
	OperatorImage string
	// InstanceName names the CoreInstance (installer.DefaultInstanceName
	// when empty).
	InstanceName string
	// PipelineImage and PipelineArgs are the instance's pipeline defaults.
	PipelineImage string
	PipelineArgs  []string
	// ServiceType forces the pipelines' default Service type; empty: the
	// preflight decides (LoadBalancer when the cluster has a load
	// balancer, else NodePort).
	ServiceType v1alpha1.ServiceType
	// Timeout bounds each Helm operation, ReadyTimeout the wait for the
	// CoreInstance (installer's defaults when 0).
	Timeout, ReadyTimeout time.Duration
	// NoWait skips waiting for the releases' resources and the
	// CoreInstance (a cluster that runs no pods, as a bare API server).
	NoWait bool
}

func (o Options) instanceName() string {
	if o.InstanceName == "" {
		return installer.DefaultInstanceName
	}
	return o.InstanceName
}

// chartSet is the two chart archives and their parsed form.
type chartSet struct {
	operator, instance       []byte
	operatorCh, instanceCh   *chart.Chart
	operatorVer, instanceVer string
}

func loadCharts(version string) (*chartSet, error) {
	v := charts.SemVer(version)
	s := &chartSet{operatorVer: v, instanceVer: v}
	var err error
	if s.operator, err = charts.Archive(charts.Operator, v); err != nil {
		return nil, fmt.Errorf("package chart %s: %w", charts.Operator, err)
	}
	if s.instance, err = charts.Archive(charts.CoreInstance, v); err != nil {
		return nil, fmt.Errorf("package chart %s: %w", charts.CoreInstance, err)
	}
	if s.operatorCh, err = loader.LoadArchive(bytes.NewReader(s.operator)); err != nil {
		return nil, fmt.Errorf("read chart %s: %w", charts.Operator, err)
	}
	if s.instanceCh, err = loader.LoadArchive(bytes.NewReader(s.instance)); err != nil {
		return nil, fmt.Errorf("read chart %s: %w", charts.CoreInstance, err)
	}
	return s, nil
}

// kubeVersions returns the charts' kubeVersion constraints, deduplicated.
func (s *chartSet) kubeVersions() []string {
	var out []string
	for _, ch := range []*chart.Chart{s.operatorCh, s.instanceCh} {
		if kv := ch.Metadata.KubeVersion; kv != "" && !contains(out, kv) {
			out = append(out, kv)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// crds returns the operator chart's CRDs.
func (s *chartSet) crds() ([]apiextensionsv1.CustomResourceDefinition, error) {
	var out []apiextensionsv1.CustomResourceDefinition
	for _, c := range s.operatorCh.CRDObjects() {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(c.File.Data, &crd); err != nil {
			return nil, fmt.Errorf("read CRD %s of chart %s: %w", c.Filename, charts.Operator, err)
		}
		out = append(out, crd)
	}
	return out, nil
}

// operatorValues are the values tpctl gives the operator chart in an
// existing cluster: the image from a registry, and no K3s packaged
// components (the cluster is not tpctl's K3s).
func operatorValues(o Options) (map[string]any, error) {
	repo, tag, err := splitImage(o.OperatorImage)
	if err != nil {
		return nil, fmt.Errorf("--operator-image %q: %w", o.OperatorImage, err)
	}
	return map[string]any{
		"image":              map[string]any{"repository": repo, "tag": tag, "pullPolicy": "IfNotPresent"},
		"packagedComponents": []any{},
	}, nil
}

// instanceValues are the core-instance chart's values.
func instanceValues(o Options, svc v1alpha1.ServiceType) map[string]any {
	defaults := map[string]any{"serviceType": string(svc)}
	if o.PipelineImage != "" {
		defaults["image"] = o.PipelineImage
	}
	if len(o.PipelineArgs) > 0 {
		args := make([]any, len(o.PipelineArgs))
		for i, a := range o.PipelineArgs {
			args[i] = a
		}
		defaults["args"] = args
	}
	return map[string]any{
		"name":             o.instanceName(),
		"proxy":            map[string]any{"httpProxy": "", "httpsProxy": "", "noProxy": ""},
		"healthCheck":      map[string]any{"enabled": true, "port": installer.HealthCheckPort},
		"pipelineDefaults": defaults,
	}
}

// object is one rendered manifest's identity (and a Role's rules).
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Rules []struct {
		APIGroups     []string `json:"apiGroups"`
		Resources     []string `json:"resources"`
		Verbs         []string `json:"verbs"`
		ResourceNames []string `json:"resourceNames"`
	} `json:"rules"`
}

// render renders a chart as `helm template` would for this server
// version, without contacting the cluster, and returns its objects.
func render(ctx context.Context, ch *chart.Chart, namespace, name string, values map[string]any, serverVersion string) ([]object, error) {
	manifest, err := renderManifest(ctx, ch, namespace, name, values, serverVersion)
	if err != nil {
		return nil, err
	}
	var objs []object
	manifests := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(manifests))
	for k := range manifests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var o object
		if err := yaml.Unmarshal([]byte(manifests[k]), &o); err != nil {
			return nil, fmt.Errorf("read rendered manifest of chart %s: %w", ch.Metadata.Name, err)
		}
		if o.Kind == "" {
			continue
		}
		if o.Metadata.Namespace == "" {
			o.Metadata.Namespace = namespace
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// renderManifest renders the chart's templates (not its CRDs).
func renderManifest(ctx context.Context, ch *chart.Chart, namespace, name string, values map[string]any, serverVersion string) (string, error) {
	in := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	in.DryRunStrategy, in.ReleaseName, in.Namespace, in.Replace = action.DryRunClient, name, namespace, true
	if serverVersion != "" {
		kv, err := common.ParseKubeVersion(serverVersion)
		if err != nil {
			return "", fmt.Errorf("server version %q: %w", serverVersion, err)
		}
		in.KubeVersion = kv
	}
	out, err := in.RunWithContext(ctx, ch, values)
	if err != nil {
		return "", fmt.Errorf("render chart %s: %w", ch.Metadata.Name, err)
	}
	rel, ok := out.(*release.Release)
	if !ok {
		return "", fmt.Errorf("render chart %s: unexpected release record %T", ch.Metadata.Name, out)
	}
	return rel.Manifest, nil
}

// groupOf returns the API group of an apiVersion ("" for v1).
func groupOf(apiVersion string) string {
	if i := strings.Index(apiVersion, "/"); i >= 0 {
		return apiVersion[:i]
	}
	return ""
}
