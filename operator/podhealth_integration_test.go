//go:build integration

package operator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// No kubelet runs against this API server: the test writes the pipeline
// pod's status as a kubelet would (crash loop, a new restart, an image pull
// error, recovery) and the pipeline's Ready condition follows it.
func TestReadyConditionFollowsThePods(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	newInstance(t, ns, nil)
	p := newPipeline(ns, "crashy", tcpPort(24224))
	p.Spec.ServiceType = v1alpha1.ServiceTypeClusterIP
	require.NoError(t, kc.Create(ctx, p))
	p = assigned(t, ns, "crashy")

	dep := &appsv1.Deployment{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, kc.Get(ctx, key(ns, "crashy"), dep))
	}, waitFor, 50*time.Millisecond)
	// No controller-manager: report the Deployment's one pod as not ready.
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1}
	require.NoError(t, kc.Status().Update(ctx, dep))

	readyIs := func(status metav1.ConditionStatus, reason, message string) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			got := &v1alpha1.Pipeline{}
			require.NoError(c, kc.Get(ctx, key(ns, "crashy"), got))
			cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
			require.NotNil(c, cond)
			assert.Equal(c, status, cond.Status)
			assert.Equal(c, reason, cond.Reason)
			assert.Equal(c, message, cond.Message)
		}, waitFor, 50*time.Millisecond)
	}
	readyIs(metav1.ConditionFalse, v1alpha1.ReasonUnavailable, "0/1 pod(s) ready")

	// The pod as the ReplicaSet controller would create it: the template's labels.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crashy-5d8f7c9b4-x2x7q", Labels: dep.Spec.Template.Labels},
		Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: containerName, Image: "tpctl.test/sink:1"}}},
	}
	if len(pod.Labels) == 0 {
		// The cached Deployment is trimmed; kc reads the API server, so
		// the template is there. Guard against a test that reads nothing.
		t.Fatal("the Deployment's pod template has no labels")
	}
	// No controller-manager creates the namespace's default ServiceAccount,
	// which admission requires of a pod.
	require.NoError(t, kc.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}))
	require.NoError(t, kc.Create(ctx, pod))

	setStatus := func(cs corev1.ContainerStatus, phase corev1.PodPhase) {
		t.Helper()
		require.NoError(t, kc.Get(ctx, key(ns, pod.Name), pod))
		pod.Status = corev1.PodStatus{Phase: phase,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{cs}}
		require.NoError(t, kc.Status().Update(ctx, pod))
	}
	crash := func(restarts int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: containerName, Image: "tpctl.test/sink:1", RestartCount: restarts,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: "back-off 20s restarting failed container=pipeline pod=" + pod.Name}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", Message: fluentBitBadConfig}}}
	}
	const logs = ": [error] [config] section 'nosuchplugin' tried to instance a plugin name that doesn't exist | " +
		"[error] configuration file contains errors, aborting."

	setStatus(crash(2), corev1.PodRunning)
	readyIs(metav1.ConditionFalse, v1alpha1.ReasonCrashLoopBackOff,
		"0/1 pod(s) ready; pod "+pod.Name+": container pipeline is crash-looping (restarted 2 times), last exit code 1"+logs)

	setStatus(crash(3), corev1.PodRunning)
	readyIs(metav1.ConditionFalse, v1alpha1.ReasonCrashLoopBackOff,
		"0/1 pod(s) ready; pod "+pod.Name+": container pipeline is crash-looping (restarted 3 times), last exit code 1"+logs)

	setStatus(corev1.ContainerStatus{Name: containerName, Image: "tpctl.test/sink:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff",
			Message: `Back-off pulling image "tpctl.test/sink:1"`}}}, corev1.PodPending)
	readyIs(metav1.ConditionFalse, v1alpha1.ReasonImagePullError,
		"0/1 pod(s) ready; pod "+pod.Name+` cannot pull image "tpctl.test/sink:1" (ImagePullBackOff): Back-off pulling image "tpctl.test/sink:1"; `+
			"if this host cannot reach that registry, give the pipeline an image it can pull "+
			"(tpctl pipeline update --image, or a mirror with tpctl install --pipeline-image) "+
			"or load the image into K3s's air-gap image directory")

	// Running but not yet ready: no cause, the workload's words.
	setStatus(corev1.ContainerStatus{Name: containerName, Image: "tpctl.test/sink:1", RestartCount: 3,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}, corev1.PodRunning)
	readyIs(metav1.ConditionFalse, v1alpha1.ReasonUnavailable, "0/1 pod(s) ready")

	// Ready: the Deployment says so.
	setStatus(corev1.ContainerStatus{Name: containerName, Image: "tpctl.test/sink:1", RestartCount: 3, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}, corev1.PodRunning)
	require.NoError(t, kc.Get(ctx, key(ns, "crashy"), dep))
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1,
		ReadyReplicas: 1, AvailableReplicas: 1}
	require.NoError(t, kc.Status().Update(ctx, dep))
	readyIs(metav1.ConditionTrue, v1alpha1.ReasonAvailable, "1/1 pod(s) ready")
}
