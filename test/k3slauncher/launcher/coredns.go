package launcher

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/images"
)

// Image references the node needs from the air-gap images directory: the
// pod sandbox and CoreDNS. Tests build them with internal/ociimage
// (CoreDNSImage from the CoreDNS binary of scripts/test-deps).
const PauseImage = images.PauseRef

// CoreDNSImage is the CoreDNS add-on's image.
func CoreDNSImage() string { return "tpctl.test/coredns:" + cluster.PinnedVersions().CoreDNS }

// corefile serves cluster.local from the API. There is no upstream
// resolver: the node shares a test machine that reaches no outside DNS.
const corefile = `.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loop
    reload
    loadbalance
}
`

// deployCoreDNS creates or updates the CoreDNS add-on in kube-system, as
// K3s's coredns manifest does: service account, RBAC, Corefile, Deployment
// and the kube-dns Service on the cluster DNS address.
func deployCoreDNS(ctx context.Context, cs kubernetes.Interface, c Config) error {
	ns := "kube-system"
	labels := map[string]string{"k8s-app": "kube-dns"}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: ns}}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}},
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: ns}, Data: map[string]string{"Corefile": corefile}}
	replicas := int32(1)
	user := int64(65532)
	noEscalation := false
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa.Name,
					// Port 53 as a non-root user without file capabilities:
					// the pod's own network namespace allows low ports.
					SecurityContext:   &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}},
					DNSPolicy:         corev1.DNSDefault,
					PriorityClassName: "system-cluster-critical",
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
					Containers: []corev1.Container{{
						Name:            "coredns",
						Image:           CoreDNSImage(),
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"-conf", "/etc/coredns/Corefile"},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							RunAsUser:                &user,
							AllowPrivilegeEscalation: &noEscalation,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}},
							PeriodSeconds: 2,
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}},
							PeriodSeconds:    10,
							FailureThreshold: 3,
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}},
					}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector:  labels,
			ClusterIP: c.ClusterDNS.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	// Create what is missing; what exists is left alone (a Service with a
	// fixed cluster IP cannot be created twice: that is "invalid", not
	// "already exists").
	apply := []struct {
		what   string
		get    func() error
		create func() error
	}{
		{"ServiceAccount coredns",
			func() error {
				_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, sa.Name, metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
				return err
			}},
		{"ClusterRole system:coredns",
			func() error {
				_, err := cs.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
				return err
			}},
		{"ClusterRoleBinding system:coredns",
			func() error {
				_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, binding.Name, metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
				return err
			}},
		{"ConfigMap coredns",
			func() error { _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{}); return err },
			func() error { _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); return err }},
		{"Deployment coredns",
			func() error {
				_, err := cs.AppsV1().Deployments(ns).Get(ctx, dep.Name, metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
				return err
			}},
		{"Service kube-dns",
			func() error { _, err := cs.CoreV1().Services(ns).Get(ctx, svc.Name, metav1.GetOptions{}); return err },
			func() error { _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); return err }},
	}
	for _, a := range apply {
		err := a.get()
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get %s: %w", a.what, err)
		}
		if err := a.create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", a.what, err)
		}
	}
	return nil
}
