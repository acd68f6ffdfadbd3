package launcher

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/images"
)

// Mirrors K3s: manifests/traefik.yaml (the packaged chart, a LoadBalancer
// Service on 80 and 443 in kube-system) and the --disable traefik switch.

// TraefikImage is the packaged Traefik's image (a stand-in: see
// test/images/traefik).
const TraefikImage = images.TraefikRef

// traefikObjects are what K3s's packaged Traefik chart leaves in
// kube-system that tpctl and its users see: the traefik Deployment and the
// traefik LoadBalancer Service holding ports 80 (web) and 443 (websecure)
// on the node through the service load balancer.
func traefikObjects() (*appsv1.Deployment, *corev1.Service) {
	ns := "kube-system"
	labels := map[string]string{"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-kube-system"}
	replicas := int32(1)
	user := int64(65532)
	no, yes := false, true
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "traefik", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-cluster-critical",
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
					Containers: []corev1.Container{{
						Name: "traefik", Image: TraefikImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{
							{Name: "traefik", ContainerPort: 9000, Protocol: corev1.ProtocolTCP},
							{Name: "web", ContainerPort: 8000, Protocol: corev1.ProtocolTCP},
							{Name: "websecure", ContainerPort: 8443, Protocol: corev1.ProtocolTCP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ping", Port: intstr.FromString("traefik")}},
							PeriodSeconds: 2, FailureThreshold: 1,
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							RunAsUser: &user, RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "traefik", Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "web", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")},
				{Name: "websecure", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromString("websecure")},
			},
		},
	}
	return dep, svc
}

// deployTraefik creates the packaged Traefik's objects that are missing.
func deployTraefik(ctx context.Context, cs kubernetes.Interface) error {
	dep, svc := traefikObjects()
	if _, err := cs.AppsV1().Deployments(dep.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Deployment traefik: %w", err)
	}
	if _, err := cs.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Service traefik: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("get Service traefik: %w", err)
	}
	return nil
}
