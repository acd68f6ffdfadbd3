//go:build integration

package kubetarget

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/test/cluster"
)

// kubeconfigWithAlice copies the control plane's admin kubeconfig and adds
// a context "alice" that impersonates user alice.
func kubeconfigWithAlice(t *testing.T, cp *cluster.ControlPlane) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cp.Kubeconfig())
	require.NoError(t, err)
	cur := cfg.Contexts[cfg.CurrentContext]
	alice := cfg.AuthInfos[cur.AuthInfo].DeepCopy()
	alice.Impersonate = "alice"
	alice.ImpersonateGroups = []string{"system:authenticated"}
	cfg.AuthInfos["alice"] = alice
	ctx := cur.DeepCopy()
	ctx.AuthInfo = "alice"
	cfg.Contexts["alice"] = ctx
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// helmSecrets lists Helm's release records in namespace.
func helmSecrets(t *testing.T, tg *Target, ns string) []string {
	t.Helper()
	l, err := tg.Kube.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm"})
	require.NoError(t, err)
	var out []string
	for _, s := range l.Items {
		out = append(out, s.Name)
	}
	return out
}

func TestClusterPreflightOnARealAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp := cluster.StartControlPlane(ctx, t)
	kc := kubeconfigWithAlice(t, cp)
	admin, err := Open(kc, "")
	require.NoError(t, err)

	// alice may do everything the charts need but create, update, patch
	// or delete NetworkPolicies (she may read them).
	resources := []string{"secrets", "namespaces", "serviceaccounts", "services", "configmaps", "pods", "deployments",
		"replicasets", "daemonsets", "statefulsets", "roles", "rolebindings", "clusterroles", "clusterrolebindings",
		"customresourcedefinitions", "coreinstances", "coreinstances/status", "pipelines", "pipelines/status",
		"horizontalpodautoscalers", "events", "storageclasses", "nodes"}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "almost-admin"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"*"}, Resources: resources, Verbs: []string{"*"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
	}}
	_, err = admin.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.Kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "almost-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	o := Options{Version: "v0.3.0", OperatorImage: "registry.example.com/tpctl-operator:0.3.0", NoWait: true, Timeout: time.Minute}

	t.Run("a user without a permission is refused, naming it", func(t *testing.T) {
		alice, err := Open(kc, "alice")
		require.NoError(t, err)
		res, err := alice.Install(ctx, o, false, nil)
		var pe *PreflightError
		require.ErrorAs(t, err, &pe)
		var failed []string
		for _, r := range res.Preflight.Results {
			if r.Severity == preflight.Fail {
				failed = append(failed, r.Name)
			}
		}
		assert.ElementsMatch(t, []string{
			"Permission-create-networkpolicies.networking.k8s.io-tpctl-system",
			"Permission-update-networkpolicies.networking.k8s.io-tpctl-system",
			"Permission-patch-networkpolicies.networking.k8s.io-tpctl-system",
			"Permission-delete-networkpolicies.networking.k8s.io-tpctl-system",
		}, failed)
		assert.Contains(t, err.Error(), "not allowed to create networkpolicies.networking.k8s.io in namespace tpctl-system (needed for NetworkPolicy ")
		_, err = admin.Kube.CoreV1().Namespaces().Get(ctx, OperatorNamespace, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing written: %v", err)
		assert.Empty(t, helmSecrets(t, admin, "default"))
	})

	t.Run("a CRD of the same name that is not tpctl's is refused", func(t *testing.T) {
		foreign := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "pipelines.telemetry.tpctl.dev"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "telemetry.tpctl.dev", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "pipelines", Singular: "pipeline", Kind: "Pipeline", ListKind: "PipelineList"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1alpha1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptrTrue()}}}}}}
		_, err := admin.Ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, foreign, metav1.CreateOptions{FieldManager: "another-tool"})
		require.NoError(t, err)
		res, err := admin.Install(ctx, o, false, nil)
		require.Error(t, err)
		var crdRow preflight.Result
		for _, r := range res.Preflight.Results {
			if r.Name == "CRD-pipelines.telemetry.tpctl.dev" {
				crdRow = r
			}
			if strings.HasPrefix(r.Name, "Permission-") {
				t.Errorf("admin lacks a permission: %+v", r)
			}
		}
		assert.Equal(t, preflight.Fail, crdRow.Severity)
		assert.Contains(t, crdRow.Message, "managed by another-tool")
		_, err = admin.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "coreinstances.telemetry.tpctl.dev", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing written: %v", err)

		// The uninstall leaves it alone too.
		_, err = admin.Uninstall(ctx, o, false, false, nil)
		require.ErrorIs(t, err, ErrNothingToUninstall)
		require.NoError(t, admin.Ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, foreign.Name, metav1.DeleteOptions{}))
		// The API server's CRD finalizer retries with a growing delay when
		// the resource's storage is still initialising ("storage is
		// (re)initializing"), which under load took over a minute: wait as
		// long as uninstall would (the Helm timeout).
		require.Eventually(t, func() bool {
			_, err := admin.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, foreign.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, installer.DefaultHelmTimeout, 200*time.Millisecond, "the foreign CRD was deleted")
	})

	t.Run("install then uninstall with the admin", func(t *testing.T) {
		res, err := admin.Install(ctx, o, false, nil)
		require.NoError(t, err)
		require.Len(t, res.Releases, 2)
		assert.Equal(t, "installed", res.Releases[0].Action)
		assert.True(t, res.NamespaceCreated)
		assert.Equal(t, []string{"sh.helm.release.v1.tp-operator.v1"}, helmSecrets(t, admin, OperatorNamespace))
		assert.Equal(t, []string{"sh.helm.release.v1.core.v1"}, helmSecrets(t, admin, "default"))
		dep, err := admin.Kube.AppsV1().Deployments(OperatorNamespace).Get(ctx, OperatorRelease, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, o.OperatorImage, dep.Spec.Template.Spec.Containers[0].Image)

		// Again: the CRDs are tpctl's now, and Helm has nothing to change.
		res, err = admin.Install(ctx, o, false, nil)
		require.NoError(t, err)
		assert.Equal(t, "unchanged", res.Releases[0].Action)

		un, err := admin.Uninstall(ctx, o, false, false, nil)
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"coreinstances.telemetry.tpctl.dev", "pipelines.telemetry.tpctl.dev"}, un.CRDs)
		assert.Equal(t, []string{"default/core"}, un.Instances)
		assert.Empty(t, helmSecrets(t, admin, "default"))
		_, err = admin.Kube.AppsV1().Deployments(OperatorNamespace).Get(ctx, OperatorRelease, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
		for _, name := range un.CRDs {
			_, err = admin.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), name)
		}
		ns, err := admin.Kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		require.NoError(t, err)
		for k := range ns.Labels {
			assert.NotContains(t, k, "pod-security", "the advisory labels go with the release")
		}
	})
}

func ptrTrue() *bool { b := true; return &b }
