package operator

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// fluentBitBadConfig is what the kubelet puts in terminated.message
// (FallbackToLogsOnError: the last log lines) when Fluent Bit 4 refuses
// its configuration.
const fluentBitBadConfig = "Fluent Bit v4.0.3\n* Copyright (C) 2015-2025 The Fluent Bit Authors\n" +
	"* Fluent Bit is a CNCF sub-project under the umbrella of Fluentd\n* https://fluentbit.io\n\n" +
	"______ _                  _    ______ _ _             ___  _____ \n" +
	"[2026/12/07 12:00:00] [error] [config] section 'nosuchplugin' tried to instance a plugin name that doesn't exist\n" +
	"[2026/12/07 12:00:00] [error] configuration file contains errors, aborting.\n"

func testPod(name string, mutate func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tp", Name: name,
			Labels: map[string]string{LabelPipeline: "logs", LabelName: AppName, LabelManagedBy: ManagedBy}},
		Spec: corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: containerName, Image: "fluent/fluent-bit:4.0.3"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, Image: "fluent/fluent-bit:4.0.3", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func crashLooping(restarts int32, message string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		cs := &p.Status.ContainerStatuses[0]
		cs.Ready, cs.RestartCount = false, restarts
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: "back-off 40s restarting failed container=pipeline pod=" + p.Name}}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", Message: message}}
	}
}

func waiting(reason, message string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		cs := &p.Status.ContainerStatuses[0]
		cs.Ready = false
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	}
}

func unschedulable(p *corev1.Pod) {
	p.Spec.NodeName = ""
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}}
}

func TestPodHealthCause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pod    corev1.Pod
		reason string
		want   []string // parts of the message
	}{
		{"healthy", testPod("logs-a", nil), "", nil},
		{"starting", testPod("logs-a", waiting("ContainerCreating", "")), "", nil},
		{"crash loop", testPod("logs-a", crashLooping(5, fluentBitBadConfig)), v1alpha1.ReasonCrashLoopBackOff, []string{
			"pod logs-a: container pipeline is crash-looping (restarted 5 times), last exit code 1: " +
				"[error] [config] section 'nosuchplugin' tried to instance a plugin name that doesn't exist | " +
				"[error] configuration file contains errors, aborting."}},
		{"crash loop, no message", testPod("logs-a", crashLooping(2, "")), v1alpha1.ReasonCrashLoopBackOff, []string{
			"pod logs-a: container pipeline is crash-looping (restarted 2 times), last exit code 1"}},
		{"killed for memory", testPod("logs-a", func(p *corev1.Pod) {
			crashLooping(3, "")(p)
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated.ExitCode = 137
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated.Reason = "OOMKilled"
		}), v1alpha1.ReasonCrashLoopBackOff, []string{"last exit code 137 (OOMKilled)"}},
		{"exited between back-offs", testPod("logs-a", func(p *corev1.Pod) {
			cs := &p.Status.ContainerStatuses[0]
			cs.Ready, cs.RestartCount = false, 1
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: fluentBitBadConfig}}
		}), v1alpha1.ReasonCrashLoopBackOff, []string{"is crash-looping (restarted 1 times), last exit code 1: [error] [config]"}},
		{"running again, not ready yet", testPod("logs-a", func(p *corev1.Pod) {
			crashLooping(4, fluentBitBadConfig)(p)
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		}), v1alpha1.ReasonCrashLoopBackOff, []string{"is crash-looping (restarted 4 times), last exit code 1: [error] [config]"}},
		{"running and ready after a crash", testPod("logs-a", func(p *corev1.Pod) {
			crashLooping(4, fluentBitBadConfig)(p)
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
			p.Status.ContainerStatuses[0].Ready = true
		}), "", nil},
		{"image pull back-off", testPod("logs-a", waiting("ImagePullBackOff",
			`Back-off pulling image "fluent/fluent-bit:4.0.3"`)), v1alpha1.ReasonImagePullError, []string{
			`pod logs-a cannot pull image "fluent/fluent-bit:4.0.3" (ImagePullBackOff): Back-off pulling image "fluent/fluent-bit:4.0.3"`,
			"tpctl pipeline update --image", "tpctl install --pipeline-image", "air-gap"}},
		{"image pull error, image from the spec", testPod("logs-a", func(p *corev1.Pod) {
			waiting("ErrImagePull", `failed to pull and unpack image "docker.io/fluent/fluent-bit:4.0.3": dial tcp: lookup registry-1.docker.io: no such host`)(p)
			p.Status.ContainerStatuses[0].Image = ""
		}), v1alpha1.ReasonImagePullError, []string{`cannot pull image "fluent/fluent-bit:4.0.3" (ErrImagePull): failed to pull`, "no such host"}},
		{"missing Secret", testPod("logs-a", waiting("CreateContainerConfigError", `secret "creds" not found`)),
			v1alpha1.ReasonContainerConfigError, []string{
				`pod logs-a: container pipeline cannot be created (CreateContainerConfigError): secret "creds" not found`}},
		{"unschedulable", testPod("logs-a", unschedulable), v1alpha1.ReasonUnschedulable, []string{
			"pod logs-a cannot be scheduled: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}},
		{"being deleted", testPod("logs-a", func(p *corev1.Pod) {
			crashLooping(5, "")(p)
			p.DeletionTimestamp = &metav1.Time{}
		}), "", nil},
		{"failed (evicted)", testPod("logs-a", func(p *corev1.Pod) {
			crashLooping(5, "")(p)
			p.Status.Phase = corev1.PodFailed
		}), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PodHealthCause(&tc.pod)
			if tc.reason == "" {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.Equal(t, tc.reason, got.Reason)
			for _, w := range tc.want {
				assert.Contains(t, got.Message, w)
			}
			// The cache keeps what the cause is read from.
			trimmed := tc.pod.DeepCopy()
			trimPod(trimmed)
			assert.Equal(t, got, PodHealthCause(trimmed), "cause after trimming for the cache")
		})
	}
}

func TestPipelineCausePicksTheMostTelling(t *testing.T) {
	healthy := testPod("logs-c", nil)
	pull := testPod("logs-a", waiting("ImagePullBackOff", "back-off"))
	crashB := testPod("logs-b", crashLooping(4, ""))
	crashD := testPod("logs-d", crashLooping(9, ""))
	pending := testPod("logs-0", unschedulable)

	assert.Nil(t, PipelineCause(nil))
	assert.Nil(t, PipelineCause([]corev1.Pod{healthy}))

	got := PipelineCause([]corev1.Pod{healthy, pending, pull, crashD, crashB})
	require.NotNil(t, got)
	assert.Equal(t, v1alpha1.ReasonCrashLoopBackOff, got.Reason, "a crash loop says most")
	assert.True(t, strings.HasPrefix(got.Message, "pod logs-b:"), "the first crashing pod by name: %s", got.Message)
	assert.True(t, strings.HasSuffix(got.Message, " (and 3 more pod(s) not running)"), got.Message)

	got = PipelineCause([]corev1.Pod{pending, pull})
	require.NotNil(t, got)
	assert.Equal(t, v1alpha1.ReasonImagePullError, got.Reason)

	got = PipelineCause([]corev1.Pod{healthy, pending})
	require.NotNil(t, got)
	assert.Equal(t, v1alpha1.ReasonUnschedulable, got.Reason)
	assert.NotContains(t, got.Message, "more pod")
}

func TestHealthCondition(t *testing.T) {
	crash := []corev1.Pod{testPod("logs-a", crashLooping(5, fluentBitBadConfig)), testPod("logs-b", nil)}

	c := HealthCondition(ReadyCondition(v1alpha1.WorkloadDeployment, 1, 2, true, true), crash)
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, v1alpha1.ReasonCrashLoopBackOff, c.Reason)
	assert.True(t, strings.HasPrefix(c.Message, "1/2 pod(s) ready, rolling out; pod logs-a: container pipeline is crash-looping"), c.Message)

	c = HealthCondition(ReadyCondition(v1alpha1.WorkloadDeployment, 0, 1, true, true), crash[:1])
	assert.Equal(t, v1alpha1.ReasonCrashLoopBackOff, c.Reason)
	assert.True(t, strings.HasPrefix(c.Message, "0/1 pod(s) ready; pod logs-a"), c.Message)

	// No cause in the pods: the workload's words stay.
	unavailable := ReadyCondition(v1alpha1.WorkloadDeployment, 0, 1, true, true)
	assert.Equal(t, unavailable, HealthCondition(unavailable, []corev1.Pod{testPod("logs-a", waiting("ContainerCreating", ""))}))

	// Ready, and reasons that are not about pods, are left alone.
	available := ReadyCondition(v1alpha1.WorkloadDeployment, 1, 1, true, true)
	assert.Equal(t, available, HealthCondition(available, crash))
	lb := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonLoadBalancerPending, Message: "no address"}
	assert.Equal(t, lb, HealthCondition(lb, crash))
}

func TestLastLogLines(t *testing.T) {
	assert.Equal(t, "", LastLogLines(""))
	assert.Equal(t, "[error] [config] section 'nosuchplugin' tried to instance a plugin name that doesn't exist | "+
		"[error] configuration file contains errors, aborting.", LastLogLines(fluentBitBadConfig))
	// Without error lines: the last line, colours and control characters gone.
	assert.Equal(t, "[ info] [engine] started", LastLogLines("one\n\x1b[1m[2026/12/07 12:00:00.123]\x1b[0m [ info] [engine] started\r\n\n"))
	assert.Equal(t, "sink: parse arguments: flag provided but not defined: -no-such-flag", LastLogLines(
		"  -udp string\n    \tcomma-separated UDP ports to receive on\nsink: parse arguments: flag provided but not defined: -no-such-flag\n"))
	assert.Equal(t, "[ warn] stopping", LastLogLines(
		"one\n\x1b[1m[2026/12/07 12:00:00.123]\x1b[0m [ info] [engine] started\r\n[ warn] stopping\x07\n\n"))
	long := strings.Repeat("é", 1000)
	got := LastLogLines("[error] " + long)
	assert.LessOrEqual(t, len(got), maxLogText)
	assert.True(t, strings.HasSuffix(got, "…"))
	assert.True(t, strings.HasPrefix(got, "[error] éé"))
	for _, in := range []string{fluentBitBadConfig, "a\nb\nc", "[error] " + long, "x | y | z"} {
		once := LastLogLines(in)
		assert.Equal(t, once, LastLogLines(once), "idempotent on %q", in)
	}
}

func TestTrimPodForCache(t *testing.T) {
	pod := testPod("logs-a", crashLooping(5, strings.Repeat("[error] a long line of the log\n", 200)))
	pod.Annotations = map[string]string{"a": "b"}
	pod.OwnerReferences = []metav1.OwnerReference{{Name: "rs"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "config"}}
	pod.Spec.Containers[0].Args = []string{"-c", "/x"}
	pod.Status.ContainerStatuses[0].State.Waiting.Message = strings.Repeat("m", 5000)

	obj, err := TrimForCache(pod.DeepCopy())
	require.NoError(t, err)
	got := obj.(*corev1.Pod)
	assert.Equal(t, map[string]string{LabelPipeline: "logs"}, got.Labels)
	assert.Nil(t, got.Annotations)
	assert.Nil(t, got.OwnerReferences)
	assert.Equal(t, corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: containerName, Image: "fluent/fluent-bit:4.0.3"}}}, got.Spec)
	cs := got.Status.ContainerStatuses[0]
	assert.LessOrEqual(t, len(cs.State.Waiting.Message), maxKubeletText)
	assert.LessOrEqual(t, len(cs.LastTerminationState.Terminated.Message), maxLogText)
	assert.Equal(t, int32(5), cs.RestartCount)
	assert.Equal(t, []string{"logs"}, IndexPodByPipeline(got))

	again, err := TrimForCache(got.DeepCopy())
	require.NoError(t, err)
	assert.Equal(t, got, again, "idempotent")
}

func TestPodCauseChangedPredicate(t *testing.T) {
	pr := podCauseChanged()
	healthy := testPod("logs-a", nil)
	starting := testPod("logs-a", waiting("ContainerCreating", ""))
	crash5 := testPod("logs-a", crashLooping(5, "boom"))
	crash6 := testPod("logs-a", crashLooping(6, "boom"))
	update := func(o, n corev1.Pod) bool {
		return pr.Update(event.UpdateEvent{ObjectOld: &o, ObjectNew: &n})
	}
	assert.False(t, update(starting, healthy), "starting and running: the workload status tells")
	assert.False(t, update(crash5, crash5), "nothing new")
	assert.True(t, update(healthy, crash5), "starts crash-looping")
	assert.True(t, update(crash5, crash6), "a new restart")
	assert.True(t, update(crash6, healthy), "recovers")
	assert.False(t, pr.Create(event.CreateEvent{Object: &starting}))
	assert.True(t, pr.Create(event.CreateEvent{Object: &crash5}), "seen crash-looping at start")
	assert.False(t, pr.Delete(event.DeleteEvent{Object: &healthy}))
	assert.True(t, pr.Delete(event.DeleteEvent{Object: &crash5}))

	reqs := podToPipeline(t.Context(), &crash5)
	require.Len(t, reqs, 1)
	assert.Equal(t, "tp", reqs[0].Namespace)
	assert.Equal(t, "logs", reqs[0].Name)
	assert.Empty(t, podToPipeline(t.Context(), &corev1.Pod{}))
}
