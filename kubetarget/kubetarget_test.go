package kubetarget

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	extfake "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/preflight"
)

const testImage = "registry.example.com/tpctl-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// served is the discovery of a conformant cluster: the kinds the charts
// render.
func served() []*metav1.APIResourceList {
	return []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "namespaces", Kind: "Namespace"}, {Name: "secrets", Kind: "Secret", Namespaced: true},
			{Name: "serviceaccounts", Kind: "ServiceAccount", Namespaced: true}, {Name: "services", Kind: "Service", Namespaced: true},
			{Name: "configmaps", Kind: "ConfigMap", Namespaced: true}, {Name: "pods", Kind: "Pod", Namespaced: true},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Kind: "Deployment", Namespaced: true}, {Name: "daemonsets", Kind: "DaemonSet", Namespaced: true},
		}},
		{GroupVersion: "rbac.authorization.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "roles", Kind: "Role", Namespaced: true}, {Name: "rolebindings", Kind: "RoleBinding", Namespaced: true},
			{Name: "clusterroles", Kind: "ClusterRole"}, {Name: "clusterrolebindings", Kind: "ClusterRoleBinding"},
		}},
		{GroupVersion: "networking.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "networkpolicies", Kind: "NetworkPolicy", Namespaced: true},
		}},
	}
}

// fakeCluster is a Target over fake clients; deny decides each
// SelfSubjectAccessReview (nil: everything allowed).
type fakeCluster struct {
	kube  *fake.Clientset
	ext   *extfake.Clientset
	asked []authv1.ResourceAttributes
}

func newFake(t *testing.T, gitVersion string, deny func(authv1.ResourceAttributes) bool, objs ...runtime.Object) (*Target, *fakeCluster) {
	t.Helper()
	var kubeObjs, extObjs []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*apiextensionsv1.CustomResourceDefinition); ok {
			extObjs = append(extObjs, o)
		} else {
			kubeObjs = append(kubeObjs, o)
		}
	}
	f := &fakeCluster{kube: fake.NewClientset(kubeObjs...), ext: extfake.NewClientset(extObjs...)}
	d := f.kube.Discovery().(*fakediscovery.FakeDiscovery)
	d.FakedServerVersion = &version.Info{GitVersion: gitVersion}
	d.Resources = served()
	f.kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ssar := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := *ssar.Spec.ResourceAttributes
		f.asked = append(f.asked, ra)
		ssar.Status.Allowed = deny == nil || !deny(ra)
		if !ssar.Status.Allowed {
			ssar.Status.Reason = "RBAC: no rule allows it"
		}
		return true, ssar, nil
	})
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	dyn := dynfake.NewSimpleDynamicClient(scheme)
	return &Target{Clients: Clients{Kube: f.kube, Ext: f.ext, Dyn: dyn, Server: "https://cluster.test:6443"}}, f
}

// writes lists the actions that change the cluster (a review is not one).
func (f *fakeCluster) writes() []string {
	var out []string
	for _, a := range append(f.kube.Actions(), f.ext.Actions()...) {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		if a.GetResource().Resource == "selfsubjectaccessreviews" {
			continue
		}
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
	}
	return out
}

func opts() Options { return Options{Version: "v0.3.0", OperatorImage: testImage} }

func result(t *testing.T, rep *Report, name string) preflight.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Name == name {
			return r
		}
	}
	require.Failf(t, "no result", "%s not in %v", name, names(rep))
	return preflight.Result{}
}

func names(rep *Report) []string {
	var out []string
	for _, r := range rep.Results {
		out = append(out, r.Name+"="+r.Severity.String())
	}
	return out
}

// neverHelm fails the test when a release is touched.
func neverHelm(t *testing.T) func(*installer.HelmRelease) installer.HelmClient {
	return func(h *installer.HelmRelease) installer.HelmClient {
		return &fakeHelm{t: t, h: h, forbid: true}
	}
}

type fakeHelm struct {
	t       *testing.T
	h       *installer.HelmRelease
	forbid  bool
	current *release.Release
	calls   *[]string
}

func (f *fakeHelm) Done(context.Context) (bool, error) { return false, nil }
func (f *fakeHelm) Current(context.Context) (*release.Release, error) {
	return f.current, nil
}
func (f *fakeHelm) Apply(context.Context) (installer.HelmResult, error) {
	if f.forbid {
		f.t.Errorf("release %s/%s applied after a failed preflight", f.h.Namespace, f.h.Name)
	}
	if f.calls != nil {
		*f.calls = append(*f.calls, "apply "+f.h.Namespace+"/"+f.h.Name)
	}
	return installer.HelmResult{Action: "installed", Revision: 1}, nil
}
func (f *fakeHelm) Uninstall(_ context.Context, crds bool) error {
	if f.forbid {
		f.t.Errorf("release %s/%s uninstalled", f.h.Namespace, f.h.Name)
	}
	if f.calls != nil {
		*f.calls = append(*f.calls, "uninstall "+f.h.Namespace+"/"+f.h.Name)
	}
	return nil
}

func TestPreflightPassesOnAConformantClusterAndSwitchesToNodePortWithANote(t *testing.T) {
	tg, f := newFake(t, "v1.36.3", nil)
	var calls []string
	tg.Helm = func(h *installer.HelmRelease) installer.HelmClient { return &fakeHelm{t: t, h: h, calls: &calls} }
	o := opts()
	o.NoWait = true
	res, err := tg.Install(context.Background(), o, false, nil)
	require.NoError(t, err)
	rep := res.Preflight
	assert.False(t, rep.Failed(), names(rep))
	assert.Equal(t, preflight.Pass, result(t, rep, "KubernetesVersion").Severity)
	assert.Contains(t, result(t, rep, "KubernetesVersion").Message, ">=1.30.0-0")
	assert.Equal(t, preflight.Pass, result(t, rep, "Permissions").Severity)
	assert.Equal(t, preflight.Pass, result(t, rep, "CRD-pipelines.telemetry.tpctl.dev").Severity)
	lb := result(t, rep, "LoadBalancer")
	assert.Equal(t, preflight.Warn, lb.Severity)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, rep.ServiceType)
	require.Len(t, rep.Notes, 1)
	assert.Contains(t, rep.Notes[0], "NodePort")
	assert.Equal(t, preflight.Warn, result(t, rep, "DefaultStorageClass").Severity)
	assert.Equal(t, []string{"apply tpctl-system/tp-operator", "apply default/core"}, calls)
	assert.Equal(t, []string{"create namespaces"}, f.writes(), "only the operator's namespace is written besides Helm's releases")
	ns, err := f.kube.CoreV1().Namespaces().Get(context.Background(), OperatorNamespace, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, createdByValue, ns.Annotations[CreatedByAnnotation])
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])

	// The reviews come from the rendered charts: the Deployment, every
	// RBAC kind, the CRDs and a rule of the operator's Role.
	asked := map[string]bool{}
	for _, a := range f.asked {
		asked[a.Verb+" "+a.Group+"/"+a.Resource+"/"+a.Subresource+" "+a.Namespace] = true
	}
	for _, want := range []string{
		"create apps/deployments/ tpctl-system",
		"create rbac.authorization.k8s.io/clusterroles/ ",
		"create rbac.authorization.k8s.io/roles/ default",
		"create networking.k8s.io/networkpolicies/ tpctl-system",
		"create telemetry.tpctl.dev/coreinstances/ default",
		"patch apiextensions.k8s.io/customresourcedefinitions/ ",
		"create /secrets/ default",
		"escalate rbac.authorization.k8s.io/roles/ default",
	} {
		assert.True(t, asked[want], "no review of %q", want)
	}
	// escalate was granted: the Role's own rules were not asked one by one.
	assert.False(t, asked["patch telemetry.tpctl.dev/pipelines/status default"])
}

func TestPreflightAsksEveryRoleRuleWithoutEscalate(t *testing.T) {
	deny := func(a authv1.ResourceAttributes) bool {
		return a.Verb == "escalate" || (a.Resource == "pipelines" && a.Subresource == "status" && a.Verb == "patch")
	}
	tg, f := newFake(t, "v1.36.3", deny)
	tg.Helm = neverHelm(t)
	res, err := tg.Install(context.Background(), opts(), false, nil)
	var pe *PreflightError
	require.ErrorAs(t, err, &pe)
	r := result(t, res.Preflight, "Permission-patch-pipelines.telemetry.tpctl.dev-status-default")
	assert.Equal(t, preflight.Fail, r.Severity)
	assert.Contains(t, r.Message, "not allowed to patch pipelines.telemetry.tpctl.dev/status in namespace default")
	assert.Contains(t, r.Message, "a rule of Role tp-operator")
	assert.Contains(t, err.Error(), "patch pipelines.telemetry.tpctl.dev/status")
	assert.Empty(t, f.writes(), "a failed preflight writes nothing")
}

func TestPreflightRefusesAMissingPermissionNamingIt(t *testing.T) {
	deny := func(a authv1.ResourceAttributes) bool {
		return a.Verb == "create" && a.Resource == "clusterroles"
	}
	tg, f := newFake(t, "v1.36.3", deny)
	tg.Helm = neverHelm(t)
	res, err := tg.Install(context.Background(), opts(), false, nil)
	var pe *PreflightError
	require.ErrorAs(t, err, &pe)
	r := result(t, res.Preflight, "Permission-create-clusterroles.rbac.authorization.k8s.io")
	assert.Equal(t, preflight.Fail, r.Severity)
	assert.Contains(t, r.Message, "create clusterroles.rbac.authorization.k8s.io (cluster-wide)")
	assert.Contains(t, r.Message, "ClusterRole tp-operator-services")
	for _, x := range res.Preflight.Results {
		if x.Name == "Permissions" {
			t.Errorf("a pass row beside a missing permission: %+v", x)
		}
	}
	assert.Empty(t, f.writes())
}

func TestPreflightRefusesAnUnsupportedServerVersion(t *testing.T) {
	tg, f := newFake(t, "v1.29.4", nil)
	tg.Helm = neverHelm(t)
	res, err := tg.Install(context.Background(), opts(), false, nil)
	require.Error(t, err)
	r := result(t, res.Preflight, "KubernetesVersion")
	assert.Equal(t, preflight.Fail, r.Severity)
	assert.Contains(t, r.Message, "v1.29.4 is outside the charts' supported range >=1.30.0-0")
	assert.Empty(t, f.writes())

	// A distribution's suffix does not matter.
	tg, _ = newFake(t, "v1.33.4-gke.1245000", nil)
	rep, _, err := tg.Preflight(context.Background(), opts())
	require.NoError(t, err)
	assert.Equal(t, preflight.Pass, result(t, rep, "KubernetesVersion").Severity)
}

func crd(name string, managers ...string) *apiextensionsv1.CustomResourceDefinition {
	c := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range managers {
		c.ManagedFields = append(c.ManagedFields, metav1.ManagedFieldsEntry{Manager: m, Operation: metav1.ManagedFieldsOperationApply})
	}
	return c
}

func TestPreflightRefusesACRDThatIsNotTpctls(t *testing.T) {
	foreign := crd("pipelines.telemetry.tpctl.dev", "kubectl-client-side-apply")
	foreign.Annotations = map[string]string{"meta.helm.sh/release-name": "other", "meta.helm.sh/release-namespace": "team"}
	tg, f := newFake(t, "v1.36.3", nil, foreign, crd("coreinstances.telemetry.tpctl.dev", installer.HelmFieldManager))
	tg.Helm = neverHelm(t)
	res, err := tg.Install(context.Background(), opts(), false, nil)
	require.Error(t, err)
	r := result(t, res.Preflight, "CRD-pipelines.telemetry.tpctl.dev")
	assert.Equal(t, preflight.Fail, r.Severity)
	assert.Contains(t, r.Message, "CRD pipelines.telemetry.tpctl.dev exists and is not tpctl's (managed by kubectl-client-side-apply; Helm release team/other)")
	assert.Equal(t, preflight.Pass, result(t, res.Preflight, "CRD-coreinstances.telemetry.tpctl.dev").Severity, "tpctl's own CRD is updated")
	assert.Contains(t, err.Error(), "CRD-pipelines.telemetry.tpctl.dev")
	assert.Empty(t, f.writes())
}

func TestLoadBalancerEvidence(t *testing.T) {
	lbSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ingress", Name: "edge"},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}}}}
	pendingSvc := lbSvc.DeepCopy()
	pendingSvc.Status = corev1.ServiceStatus{}
	metallb := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "controller"},
		Spec:   appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "quay.io/metallb/controller:v0.14.9"}}}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 1}}
	stopped := metallb.DeepCopy()
	stopped.Status.ReadyReplicas = 0
	cloudNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{ProviderID: "aws:///eu-west-1a/i-0abc"}}
	bareNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{ProviderID: "k3s://n1"}}
	for _, tc := range []struct {
		name  string
		objs  []runtime.Object
		force v1alpha1.ServiceType
		want  v1alpha1.ServiceType
		sev   preflight.Severity
		inMsg string
		notes int
	}{
		{"service with an address", []runtime.Object{lbSvc}, "", v1alpha1.ServiceTypeLoadBalancer, preflight.Pass, "ingress/edge has the address 192.0.2.10", 0},
		{"pending service is no evidence", []runtime.Object{pendingSvc, bareNode}, "", v1alpha1.ServiceTypeNodePort, preflight.Warn, "no LoadBalancer implementation found", 1},
		{"running metallb", []runtime.Object{metallb}, "", v1alpha1.ServiceTypeLoadBalancer, preflight.Pass, "metallb/controller", 0},
		{"metallb not running", []runtime.Object{stopped}, "", v1alpha1.ServiceTypeNodePort, preflight.Warn, "pipelines default to NodePort", 1},
		{"cloud nodes", []runtime.Object{cloudNode}, "", v1alpha1.ServiceTypeLoadBalancer, preflight.Pass, "aws node", 0},
		{"forced LoadBalancer without evidence", nil, v1alpha1.ServiceTypeLoadBalancer, v1alpha1.ServiceTypeLoadBalancer, preflight.Warn, "--service-type LoadBalancer", 0},
		{"forced ClusterIP", []runtime.Object{lbSvc}, v1alpha1.ServiceTypeClusterIP, v1alpha1.ServiceTypeClusterIP, preflight.Pass, "(--service-type)", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, _ := newFake(t, "v1.36.3", nil, tc.objs...)
			o := opts()
			o.ServiceType = tc.force
			rep, p, err := tg.Preflight(context.Background(), o)
			require.NoError(t, err)
			r := result(t, rep, "LoadBalancer")
			assert.Equal(t, tc.sev, r.Severity)
			assert.Contains(t, r.Message, tc.inMsg)
			assert.Equal(t, tc.want, rep.ServiceType)
			assert.Len(t, rep.Notes, tc.notes)
			assert.Equal(t, string(tc.want), p.instanceValue["pipelineDefaults"].(map[string]any)["serviceType"], "the core instance gets the decided type")
		})
	}
}

func TestDefaultStorageClass(t *testing.T) {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path",
		Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}}, Provisioner: "rancher.io/local-path"}
	tg, _ := newFake(t, "v1.36.3", nil, sc)
	rep, _, err := tg.Preflight(context.Background(), opts())
	require.NoError(t, err)
	r := result(t, rep, "DefaultStorageClass")
	assert.Equal(t, preflight.Pass, r.Severity)
	assert.Contains(t, r.Message, "local-path")

	other := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "slow"}, Provisioner: "x"}
	tg, _ = newFake(t, "v1.36.3", nil, other)
	rep, _, err = tg.Preflight(context.Background(), opts())
	require.NoError(t, err)
	r = result(t, rep, "DefaultStorageClass")
	assert.Equal(t, preflight.Warn, r.Severity)
	assert.Contains(t, r.Message, "will not bind")
	assert.False(t, rep.Failed(), "no default class is a warning, not a refusal")
}

func TestDryRunWritesNothing(t *testing.T) {
	tg, f := newFake(t, "v1.36.3", nil)
	tg.Helm = neverHelm(t)
	res, err := tg.Install(context.Background(), opts(), true, nil)
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	assert.Empty(t, f.writes())
	plan := strings.Join(res.Plan, "\n")
	assert.Contains(t, plan, "create namespace tpctl-system")
	assert.Contains(t, plan, testImage)
	assert.Contains(t, plan, "pipelines default to NodePort")
}

func TestResolveImage(t *testing.T) {
	_, err := ResolveImage("", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--operator-image")
	ref, err := ResolveImage("", testImage)
	require.NoError(t, err)
	assert.Equal(t, testImage, ref)
	for _, bad := range []string{"registry.example.com:5000/op", "op", "op:", "op@md5:abc", "op :1"} {
		_, err := ResolveImage(bad, "")
		assert.Error(t, err, bad)
	}
	// The chart joins repository and tag with ':': every form comes back.
	for _, ref := range []string{testImage, "registry.example.com:5000/op:1.2", "op:v1@sha256:abcd"} {
		repo, tag, err := splitImage(ref)
		require.NoError(t, err, ref)
		assert.Equal(t, ref, repo+":"+tag)
	}
}

func TestOperatorImageReachesTheRenderedDeployment(t *testing.T) {
	cs, err := loadCharts("v0.3.0")
	require.NoError(t, err)
	vals, err := operatorValues(opts())
	require.NoError(t, err)
	rel, err := renderManifest(context.Background(), cs.operatorCh, OperatorNamespace, OperatorRelease, vals, "v1.36.3")
	require.NoError(t, err)
	assert.Contains(t, rel, `image: "`+testImage+`"`)
}

func TestUninstallRemovesOnlyTpctlsAndRefusesNothingThere(t *testing.T) {
	tg, f := newFake(t, "v1.36.3", nil)
	tg.Helm = neverHelm(t)
	_, err := tg.Uninstall(context.Background(), Options{}, false, false, nil)
	require.ErrorIs(t, err, ErrNothingToUninstall)
	assert.Empty(t, f.writes())

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace, Annotations: map[string]string{CreatedByAnnotation: createdByValue}}}
	foreign := crd("pipelines.telemetry.tpctl.dev", "someone-else")
	tg, f = newFake(t, "v1.36.3", nil, ns, foreign, crd("coreinstances.telemetry.tpctl.dev", installer.HelmFieldManager))
	var calls []string
	rel := &release.Release{Version: 3}
	tg.Helm = func(h *installer.HelmRelease) installer.HelmClient {
		return &fakeHelm{t: t, h: h, calls: &calls, current: rel}
	}
	o := Options{NoWait: true}
	res, err := tg.Uninstall(context.Background(), o, false, true, nil)
	require.NoError(t, err)
	assert.Empty(t, f.writes(), "dry run")
	assert.Empty(t, calls, "dry run")
	assert.Equal(t, []string{"coreinstances.telemetry.tpctl.dev"}, res.CRDs)
	assert.Equal(t, []string{"pipelines.telemetry.tpctl.dev"}, res.Foreign)
	assert.Contains(t, strings.Join(res.Kept, "\n"), "CRD pipelines.telemetry.tpctl.dev (not tpctl's)")

	res, err = tg.Uninstall(context.Background(), o, false, false, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"uninstall default/core", "uninstall tpctl-system/tp-operator"}, calls)
	assert.ElementsMatch(t, []string{"delete customresourcedefinitions", "delete namespaces"}, f.writes())
	_, err = f.ext.ApiextensionsV1().CustomResourceDefinitions().Get(context.Background(), "pipelines.telemetry.tpctl.dev", metav1.GetOptions{})
	assert.NoError(t, err, "a CRD that is not tpctl's stays")

	// --keep-data: the releases go, the CRDs stay.
	tg, f = newFake(t, "v1.36.3", nil, crd("coreinstances.telemetry.tpctl.dev", installer.HelmFieldManager))
	calls = nil
	tg.Helm = func(h *installer.HelmRelease) installer.HelmClient {
		return &fakeHelm{t: t, h: h, calls: &calls, current: rel}
	}
	res, err = tg.Uninstall(context.Background(), o, true, false, nil)
	require.NoError(t, err)
	assert.Len(t, calls, 2)
	assert.Empty(t, f.writes())
	assert.Contains(t, strings.Join(res.Kept, "\n"), "CRDs coreinstances.telemetry.tpctl.dev (--keep-data)")

	// A namespace tpctl did not create stays.
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}
	tg, f = newFake(t, "v1.36.3", nil, other)
	tg.Helm = func(h *installer.HelmRelease) installer.HelmClient {
		return &fakeHelm{t: t, h: h, calls: &calls, current: rel}
	}
	res, err = tg.Uninstall(context.Background(), o, false, false, nil)
	require.NoError(t, err)
	assert.Empty(t, f.writes())
	assert.Contains(t, strings.Join(res.Kept, "\n"), "namespace tpctl-system (tpctl did not create it)")
}

func TestUninstallDeletesTheInstanceAndOnlyItsPipelines(t *testing.T) {
	tg, _ := newFake(t, "v1.36.3", nil, crd("coreinstances.telemetry.tpctl.dev", installer.HelmFieldManager),
		crd("pipelines.telemetry.tpctl.dev", installer.HelmFieldManager))
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	inst := &v1alpha1.CoreInstance{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindCoreInstance},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "core",
			Annotations: map[string]string{"meta.helm.sh/release-name": "core", "meta.helm.sh/release-namespace": "default"}}}
	other := inst.DeepCopy()
	other.Name, other.Annotations = "mine", nil
	pipe := func(name, instance string) *v1alpha1.Pipeline {
		return &v1alpha1.Pipeline{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Pipeline"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: v1alpha1.PipelineSpec{Instance: instance}}
	}
	dyn := dynfake.NewSimpleDynamicClient(scheme, inst, other, pipe("core-health", "core"), pipe("edge", "core"), pipe("keep", "mine"))
	tg.Dyn = dyn
	var order []string
	dyn.PrependReactor("delete", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		order = append(order, a.GetResource().Resource+" "+a.(k8stesting.DeleteAction).GetName())
		return false, nil, nil
	})
	rel := &release.Release{Version: 1}
	tg.Helm = func(h *installer.HelmRelease) installer.HelmClient { return &fakeHelm{t: t, h: h, current: rel} }
	res, err := tg.Uninstall(context.Background(), Options{NoWait: true}, false, false, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"default/core"}, res.Instances)
	assert.Equal(t, []string{"default/core-health", "default/edge"}, res.Pipelines)
	require.NotEmpty(t, order)
	assert.Equal(t, "coreinstances core", order[0], "the instance first: its operator would recreate the health check")
	assert.ElementsMatch(t, []string{"coreinstances core", "pipelines core-health", "pipelines edge"}, order)
	_, err = dyn.Resource(pipelinesGVR).Namespace("default").Get(context.Background(), "keep", metav1.GetOptions{})
	assert.NoError(t, err, "another instance's pipeline stays")
}
