package launcher

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Mirrors K3s: manifests/metrics-server/ (the metrics-server Deployment and
// Service in kube-system) and the --disable metrics-server switch, as far
// as tpctl sees them: a kube-system Deployment named metrics-server that
// becomes available once its pod runs. It serves no metrics: the pod runs
// the pause image, and the APIService v1beta1.metrics.k8s.io K3s registers
// is not created (so `kubectl top` and the aggregated discovery errors K3s
// shows while metrics-server starts are not mirrored; test/README.md lists
// the gap).

// metricsServerObjects are the Deployment and Service of K3s's
// metrics-server manifest, under their names and labels.
func metricsServerObjects() (*appsv1.Deployment, *corev1.Service) {
	ns := "kube-system"
	labels := map[string]string{"k8s-app": "metrics-server"}
	replicas := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-node-critical",
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
					Containers: []corev1.Container{{
						Name: "metrics-server", Image: PauseImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 10250, Protocol: corev1.ProtocolTCP}},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: ns, Labels: map[string]string{
			"kubernetes.io/name": "Metrics-server", "kubernetes.io/cluster-service": "true"}},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("https")}},
		},
	}
	return dep, svc
}

// deployMetricsServer creates the metrics-server objects that are missing.
func deployMetricsServer(ctx context.Context, cs kubernetes.Interface) error {
	dep, svc := metricsServerObjects()
	if _, err := cs.AppsV1().Deployments(dep.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Deployment metrics-server: %w", err)
	}
	if _, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Service metrics-server: %w", err)
	}
	return nil
}
