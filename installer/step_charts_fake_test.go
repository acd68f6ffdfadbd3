package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/charts"
)

// fakeCluster is the API, Helm and containerd of a node for the chart
// steps: Helm operations change what the API reports, and a stand-in for
// the operator makes a CoreInstance Ready after readyAfter looks.
type fakeCluster struct {
	mu           sync.Mutex
	readyzErr    error
	uninstallErr error
	releases     map[string]*fakeRelease
	deployments  map[string]*appsv1.Deployment
	instances    map[string]*v1alpha1.CoreInstance
	pipelines    int
	crds         []string
	readyAfter   int
	looks        map[string]int
	// services are the health-check pipelines' Services the stand-in
	// operator makes; probed the URLs asked from the host, of which the
	// first refuse are refused.
	services map[string]*corev1.Service
	probed   []string
	refuse   int
	// calls logs Helm's changes; refs are containerd's images; imports
	// the archives given to `ctr images import`; k3s the binary ctr ran.
	calls   []string
	refs    []string
	pinned  map[string]bool
	imports []string
	k3s     string
}

type fakeRelease struct {
	chart, version string
	values         map[string]any
	revision       int
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{releases: map[string]*fakeRelease{}, deployments: map[string]*appsv1.Deployment{},
		instances: map[string]*v1alpha1.CoreInstance{}, readyAfter: 3, looks: map[string]int{}, services: map[string]*corev1.Service{},
		pinned: map[string]bool{}}
}

func (c *fakeCluster) api(string) (ChartAPI, error) { return c, nil }

func (c *fakeCluster) helm(h *HelmRelease) HelmClient { return &fakeHelm{c: c, h: h} }

func (c *fakeCluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// ctr answers `images ls -q` and `images import FILE` (the archive's name
// gives the reference, as the real archive's manifest would).
func (c *fakeCluster) ctr(_ context.Context, k3s string, args ...string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.k3s = k3s
	switch strings.Join(args[:min(len(args), 4)], " ") {
	case "-n k8s.io images ls":
		// ls -q [name==REF[,labels."io.cri-containerd.pinned"==pinned]]
		var name string
		var wantPinned bool
		if len(args) > 5 {
			for _, part := range strings.Split(args[5], ",") {
				if v, ok := strings.CutPrefix(part, "name=="); ok {
					name = v
				} else if part == `labels."io.cri-containerd.pinned"==pinned` {
					wantPinned = true
				} else {
					return nil, fmt.Errorf("unexpected filter %q", part)
				}
			}
		}
		var out []string
		for _, r := range c.refs {
			if (name == "" || r == name) && (!wantPinned || c.pinned[r]) {
				out = append(out, r)
			}
		}
		return []byte(strings.Join(out, "\n") + "\n"), nil
	case "-n k8s.io images label":
		if len(args) != 6 || args[5] != "io.cri-containerd.pinned=pinned" || !slices.Contains(c.refs, args[4]) {
			return nil, fmt.Errorf("ctr: image label %v: not found or unexpected", args[4:])
		}
		c.pinned[args[4]] = true
		return []byte(args[4] + "\n"), nil
	case "-n k8s.io images import":
		file := args[4]
		c.imports = append(c.imports, file)
		tag := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "tpctl-operator-"), ".tar")
		c.refs = append(c.refs, "tpctl.local/tpctl-operator:"+tag)
		return []byte("unpacking … done\n"), nil
	}
	return nil, fmt.Errorf("unexpected ctr %v", args)
}

func notFound(resource, name string) error {
	return apierrors.NewNotFound(v1alpha1.Resource(resource), name)
}

func (c *fakeCluster) Readyz(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readyzErr
}

func (c *fakeCluster) Deployment(_ context.Context, ns, name string) (*appsv1.Deployment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.deployments[ns+"/"+name]
	if !ok {
		return nil, notFound("deployments", name)
	}
	return d.DeepCopy(), nil
}

// CoreInstance is a look at the instance: the stand-in operator reports
// Ready once the instance was looked at readyAfter times (a Done, then the
// first look of the wait see it unreconciled).
func (c *fakeCluster) CoreInstance(_ context.Context, ns, name string) (*v1alpha1.CoreInstance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.instances[ns+"/"+name]
	if !ok || len(c.crds) == 0 {
		return nil, notFound(v1alpha1.ResourceCoreInstance, name)
	}
	c.looks[ns+"/"+name]++
	if c.looks[ns+"/"+name] >= c.readyAfter {
		inst.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonAvailable, Message: "1 pipeline(s) ready", ObservedGeneration: inst.Generation}}
		inst.Status.PipelineCount = 1
		c.healthService(ns, name)
	}
	return inst.DeepCopy(), nil
}

// healthService makes the health-check pipeline's Service, of the type the
// core-instance release's values give pipelines: a NodePort Service gets
// node port 31234, a LoadBalancer Service the ingress 198.51.100.7 (c.mu
// held).
func (c *fakeCluster) healthService(ns, name string) {
	key := ns + "/" + name + "-health"
	if _, ok := c.services[key]; ok {
		return
	}
	typ := corev1.ServiceTypeLoadBalancer
	if r, ok := c.releases[ns+"/"+InstanceRelease]; ok {
		if d, ok := r.values["pipelineDefaults"].(map[string]any); ok {
			if t, ok := d["serviceType"].(string); ok {
				typ = corev1.ServiceType(t)
			}
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-health"},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.43.0.20", Ports: []corev1.ServicePort{{Name: "health", Protocol: corev1.ProtocolTCP, Port: HealthCheckPort}}}}
	switch typ {
	case corev1.ServiceTypeNodePort:
		svc.Spec.Ports[0].NodePort = 31234
	case corev1.ServiceTypeLoadBalancer:
		svc.Spec.Ports[0].NodePort = 31234
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}}
	}
	c.services[key] = svc
}

func (c *fakeCluster) Service(_ context.Context, ns, name string) (*corev1.Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.services[ns+"/"+name]
	if !ok {
		return nil, notFound("services", name)
	}
	return s.DeepCopy(), nil
}

func (c *fakeCluster) Node(_ context.Context, name string) (*corev1.Node, error) {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.99"}}}}, nil
}

// probe is the HealthProbe: it records the URL and refuses the first
// c.refuse requests.
func (c *fakeCluster) probe(_ context.Context, url string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probed = append(c.probed, url)
	if c.refuse > 0 {
		c.refuse--
		return errors.New("connection refused")
	}
	return nil
}

func (c *fakeCluster) CoreInstances(context.Context) ([]v1alpha1.CoreInstance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.crds) == 0 {
		return nil, notFound(v1alpha1.ResourceCoreInstance, "")
	}
	var out []v1alpha1.CoreInstance
	for _, k := range sortedKeysOf(c.instances) {
		out = append(out, *c.instances[k].DeepCopy())
	}
	return out, nil
}

func (c *fakeCluster) PipelineCount(context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.crds) == 0 {
		return 0, notFound(v1alpha1.ResourcePipeline, "")
	}
	return c.pipelines, nil
}

func (c *fakeCluster) CRDs(context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.crds), nil
}

func (c *fakeCluster) ReleaseInstances(_ context.Context, ns, release string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, k := range sortedKeysOf(c.instances) {
		inst := c.instances[k]
		if inst.Namespace == ns && inst.Annotations[helmReleaseNameAnnotation] == release && inst.Annotations[helmReleaseNamespaceAnnotation] == ns {
			out = append(out, inst.Name)
		}
	}
	return out, nil
}

// DeleteInstance deletes at once: the pipelines of the fake all belong to
// its one instance.
func (c *fakeCluster) DeleteInstance(_ context.Context, ns, name string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.instances[ns+"/"+name]; ok {
		delete(c.instances, ns+"/"+name)
		c.calls = append(c.calls, fmt.Sprintf("deleted CoreInstance %s/%s and %d pipeline(s)", ns, name, c.pipelines))
		c.pipelines = 0
	}
	return 0, nil
}

func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fakeHelm is one release of the fake cluster.
type fakeHelm struct {
	c *fakeCluster
	h *HelmRelease
}

func (f *fakeHelm) key() string { return f.h.Namespace + "/" + f.h.Name }

func (f *fakeHelm) Current(context.Context) (*release.Release, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	r, ok := f.c.releases[f.key()]
	if !ok {
		return nil, nil
	}
	return &release.Release{Name: f.h.Name, Namespace: f.h.Namespace, Version: r.revision, Config: r.values,
		Info:  &release.Info{Status: rcommon.StatusDeployed},
		Chart: &chart.Chart{Metadata: &chart.Metadata{Name: r.chart, Version: r.version}}}, nil
}

func (f *fakeHelm) Done(ctx context.Context) (bool, error) {
	ch, err := f.h.LoadChart()
	if err != nil {
		return false, err
	}
	rel, err := f.Current(ctx)
	if err != nil || rel == nil {
		return false, err
	}
	return isCurrent(rel, ch, f.h.Values)
}

func (f *fakeHelm) Apply(ctx context.Context) (HelmResult, error) {
	ch, err := f.h.LoadChart()
	if err != nil {
		return HelmResult{}, err
	}
	if done, err := f.Done(ctx); err != nil || done {
		return HelmResult{Action: "unchanged", ChartVersion: ch.Metadata.Version}, err
	}
	if f.h.Progress != nil {
		f.h.Progress("applying " + f.key())
	}
	vals, err := json.Marshal(f.h.Values)
	if err != nil {
		return HelmResult{}, err
	}
	var values map[string]any
	if err := json.Unmarshal(vals, &values); err != nil {
		return HelmResult{}, err
	}
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	r, ok := f.c.releases[f.key()]
	action := "upgraded"
	if !ok {
		r, action = &fakeRelease{}, "installed"
		f.c.releases[f.key()] = r
	}
	r.chart, r.version, r.values = ch.Metadata.Name, ch.Metadata.Version, values
	r.revision++
	f.c.calls = append(f.c.calls, fmt.Sprintf("%s %s %s %s", action, f.key(), r.chart, r.version))
	switch r.chart {
	case charts.Operator:
		f.c.crds = TpctlCRDs()
		img := values["image"].(map[string]any)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.h.Namespace, Name: charts.Operator}}
		d.Spec.Replicas = ptr.To[int32](1)
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "operator", Image: fmt.Sprintf("%s:%s", img["repository"], img["tag"])}}
		d.Status.ReadyReplicas = 1
		f.c.deployments[f.h.Namespace+"/"+d.Name] = d
	case charts.CoreInstance:
		name := values["name"].(string)
		proxy := values["proxy"].(map[string]any)
		spec := v1alpha1.CoreInstanceSpec{HTTPProxy: proxy["httpProxy"].(string), HTTPSProxy: proxy["httpsProxy"].(string),
			NoProxy: proxy["noProxy"].(string), HealthCheck: v1alpha1.HealthCheckSpec{Enabled: ptr.To(true), Port: HealthCheckPort}}
		inst, ok := f.c.instances[f.h.Namespace+"/"+name]
		if !ok {
			inst = &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Namespace: f.h.Namespace, Name: name,
				Annotations: map[string]string{helmReleaseNameAnnotation: f.h.Name, helmReleaseNamespaceAnnotation: f.h.Namespace}}}
			f.c.instances[f.h.Namespace+"/"+name] = inst
		}
		if inst.Generation == 0 || !bytes.Equal(mustJSON(inst.Spec), mustJSON(spec)) {
			inst.Spec = spec
			inst.Generation++
		}
	}
	return HelmResult{Action: action, Revision: r.revision, ChartVersion: r.version}, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (f *fakeHelm) Uninstall(_ context.Context, deleteCRDs bool) error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if f.c.uninstallErr != nil {
		return f.c.uninstallErr
	}
	if r, ok := f.c.releases[f.key()]; ok {
		delete(f.c.releases, f.key())
		f.c.calls = append(f.c.calls, "uninstalled "+f.key())
		// The core instance's CoreInstance has resource-policy keep.
		if r.chart == charts.Operator {
			delete(f.c.deployments, f.h.Namespace+"/"+charts.Operator)
		}
	}
	if deleteCRDs && len(f.c.crds) > 0 {
		f.c.crds = nil
		f.c.instances = map[string]*v1alpha1.CoreInstance{}
		f.c.pipelines = 0
		f.c.calls = append(f.c.calls, "deleted CRDs")
	}
	return nil
}

// chartPayload is a payload with the K3s files (the same for every
// version), both charts and an operator image archive of version.
func chartPayload(t *testing.T, version string, tamper bool) *bundle.Bundle {
	t.Helper()
	opChart, err := charts.Archive(charts.Operator, version)
	require.NoError(t, err)
	ciChart, err := charts.Archive(charts.CoreInstance, version)
	require.NoError(t, err)
	img := "amd64/tpctl-operator-" + version + ".tar"
	files := map[string][]byte{
		"amd64/k3s":                                   []byte("#!k3s binary\n"),
		"amd64/k3s-airgap-images-amd64.tar.zst":       bytes.Repeat([]byte("img"), 1000),
		"charts/tp-operator-" + version + ".tgz":      opChart,
		"charts/tp-core-instance-" + version + ".tgz": ciChart,
		img:                          []byte("operator image archive " + version),
		"amd64/fluent-bit-4.0.3.tar": []byte("fluent bit image archive"),
	}
	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	art := func(name string, kind bundle.Kind, arch, v, file string) bundle.Artifact {
		return bundle.Artifact{Name: name, Kind: kind, Arch: arch, Version: v, Size: int64(len(files[file])), SHA256: sha(files[file]), File: file}
	}
	m := bundle.Manifest{SchemaVersion: bundle.SchemaVersion, K3sVersion: "v1.36.3+k3s1", Artifacts: []bundle.Artifact{
		art("k3s", bundle.KindK3sBinary, "amd64", "v1.36.3+k3s1", "amd64/k3s"),
		art("k3s-airgap-images", bundle.KindK3sImages, "amd64", "v1.36.3+k3s1", "amd64/k3s-airgap-images-amd64.tar.zst"),
		art(charts.Operator, bundle.KindChart, "", version, "charts/tp-operator-"+version+".tgz"),
		art(charts.CoreInstance, bundle.KindChart, "", version, "charts/tp-core-instance-"+version+".tgz"),
		art("tpctl-operator", bundle.KindOperatorImage, "amd64", version, img),
		art("fluent-bit", bundle.KindPipelineImage, "amd64", "4.0.3", "amd64/fluent-bit-4.0.3.tar"),
	}}
	if tamper {
		// Same size, other bytes: only the digest tells.
		files[img] = bytes.ToUpper(files[img])
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	fsys := fstest.MapFS{bundle.ManifestFile: {Data: raw}}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: v}
	}
	b, err := bundle.New(fsys, "amd64")
	require.NoError(t, err)
	require.True(t, b.Complete(), "%v", b.Missing)
	return b
}

// chartInstall is a test install with the chart steps on a fake cluster.
type chartInstall struct {
	*testInstall
	cluster *fakeCluster
	charts  Charts
}

func newChartInstall(t *testing.T, c Config, version string) *chartInstall {
	t.Helper()
	ti := newTestInstall(t, c)
	fc := newFakeCluster()
	ci := &chartInstall{testInstall: ti, cluster: fc,
		charts: Charts{Version: "v" + version, Helm: fc.helm, Ctr: fc.ctr, HealthProbe: fc.probe,
			Executable: func() (string, error) { return "", errors.New("the payload has the image: no build") }}}
	ti.opts.Bundle = chartPayload(t, version, false)
	ti.opts.ChartAPI = fc.api
	ti.opts.Charts = &ci.charts
	return ci
}

// messages returns the messages of the events of type typ of step.
func (r *recorder) messages(step string, typ EventType) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Type == typ && (step == "" || e.Step == step) {
			out = append(out, e.Message)
		}
	}
	return out
}
