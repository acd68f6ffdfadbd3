package launcher

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/images"
)

// Mirrors K3s: manifests/local-storage.yaml (StorageClass local-path as the
// default class, the local-path-provisioner Deployment, <data-dir>/storage).

// LocalPathImage is the local-storage provisioner's image (a stand-in:
// see test/images/localpath).
const LocalPathImage = images.LocalPathRef

// StoragePath is K3s's default local storage path, <data-dir>/storage.
func (l Layout) StoragePath() string { return l.path("storage") }

// localStorageObjects are K3s's local-storage manifest's objects, under
// its names: the provisioner's service account, RBAC, configuration and
// Deployment, and the default StorageClass local-path (WaitForFirstConsumer,
// Delete).
func localStorageObjects(l Layout) (*corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *corev1.ConfigMap,
	*appsv1.Deployment, *storagev1.StorageClass) {
	ns := "kube-system"
	labels := map[string]string{"app": "local-path-provisioner"}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-service-account", Namespace: ns}}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-role"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	bind := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-bind"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}},
	}
	path := l.StoragePath()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "local-path-config", Namespace: ns}, Data: map[string]string{
		"config.json": fmt.Sprintf(`{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":[%q]}]}`, path),
	}}
	replicas := int32(1)
	root := int64(0)
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa.Name,
					PriorityClassName:  "system-node-critical",
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
					Containers: []corev1.Container{{
						Name: "local-path-provisioner", Image: LocalPathImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Args: []string{"--path", path},
						Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
						SecurityContext: &corev1.SecurityContext{RunAsUser: &root},
						VolumeMounts:    []corev1.VolumeMount{{Name: "storage", MountPath: path}},
					}},
					Volumes: []corev1.Volume{{Name: "storage", VolumeSource: corev1.VolumeSource{
						HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &dirOrCreate}}}},
				},
			},
		},
	}
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	del := corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local-path", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       "rancher.io/local-path",
		VolumeBindingMode: &wait,
		ReclaimPolicy:     &del,
	}
	return sa, role, bind, cm, dep, sc
}

// deployLocalStorage creates K3s's local-storage objects that are missing.
func deployLocalStorage(ctx context.Context, cs kubernetes.Interface, l Layout) error {
	sa, role, bind, cm, dep, sc := localStorageObjects(l)
	for _, c := range []struct {
		what   string
		create func() error
	}{
		{"ServiceAccount " + sa.Name, func() error {
			_, err := cs.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{})
			return err
		}},
		{"ClusterRole " + role.Name, func() error {
			_, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
			return err
		}},
		{"ClusterRoleBinding " + bind.Name, func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, bind, metav1.CreateOptions{})
			return err
		}},
		{"ConfigMap " + cm.Name, func() error {
			_, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
			return err
		}},
		{"Deployment " + dep.Name, func() error {
			_, err := cs.AppsV1().Deployments(dep.Namespace).Create(ctx, dep, metav1.CreateOptions{})
			return err
		}},
		{"StorageClass " + sc.Name, func() error {
			_, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
			return err
		}},
	} {
		if err := c.create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", c.what, err)
		}
	}
	return nil
}
