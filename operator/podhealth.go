package operator

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// IndexPodPipeline indexes the cached pipeline pods by the pipeline they
// run, so that a reconcile reads only that pipeline's pods.
const IndexPodPipeline = "metadata.labels.pipeline"

// IndexPodByPipeline is the index function of IndexPodPipeline.
func IndexPodByPipeline(obj client.Object) []string {
	if v := obj.GetLabels()[LabelPipeline]; v != "" {
		return []string{v}
	}
	return nil
}

// Bounds of the kubelet's texts kept in the cache and in a condition.
const (
	// maxLogText bounds the log lines taken from a termination message.
	maxLogText = 300
	// maxKubeletText bounds a waiting message (image pull errors are long).
	maxKubeletText = 512
)

// PodCause is why one pod of a pipeline does not run.
type PodCause struct {
	Reason  string // a v1alpha1 Ready reason
	Message string // names the pod
	rank    int    // lower is more telling
}

// Ranks of the causes: a crash loop says most (the pipeline's own words),
// then an image that cannot be pulled, a container that cannot be created
// and a pod no node takes.
const (
	rankCrash = iota
	rankImage
	rankConfig
	rankUnschedulable
)

// PodHealthCause returns why pod does not run, or nil when nothing in its
// status says so (it runs, or is still starting). A pod being deleted or
// finished has no cause: its controller replaces it.
func PodHealthCause(pod *corev1.Pod) *PodCause {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	var best *PodCause
	for i := range pod.Status.ContainerStatuses {
		if c := containerCause(pod, &pod.Status.ContainerStatuses[i]); c != nil && (best == nil || c.rank < best.rank) {
			best = c
		}
	}
	if best != nil {
		return best
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			msg := fmt.Sprintf("pod %s cannot be scheduled", pod.Name)
			if c.Message != "" {
				msg += ": " + clean(c.Message, maxKubeletText)
			}
			return &PodCause{Reason: v1alpha1.ReasonUnschedulable, Message: msg, rank: rankUnschedulable}
		}
	}
	return nil
}

func containerCause(pod *corev1.Pod, cs *corev1.ContainerStatus) *PodCause {
	if w := cs.State.Waiting; w != nil {
		switch w.Reason {
		case "CrashLoopBackOff":
			return crashCause(pod, cs, cs.LastTerminationState.Terminated)
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
			image := cs.Image
			if image == "" {
				image = specImage(pod, cs.Name)
			}
			msg := fmt.Sprintf("pod %s cannot pull image %q (%s)", pod.Name, image, w.Reason)
			if w.Message != "" {
				msg += ": " + clean(w.Message, maxKubeletText)
			}
			msg += "; if this host cannot reach that registry, give the pipeline an image it can pull " +
				"(tpctl pipeline update --image, or a mirror with tpctl install --pipeline-image) " +
				"or load the image into K3s's air-gap image directory"
			return &PodCause{Reason: v1alpha1.ReasonImagePullError, Message: msg, rank: rankImage}
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
			msg := fmt.Sprintf("pod %s: container %s cannot be created (%s)", pod.Name, cs.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + clean(w.Message, maxKubeletText)
			}
			return &PodCause{Reason: v1alpha1.ReasonContainerConfigError, Message: msg, rank: rankConfig}
		}
		return nil
	}
	// Between two back-offs the kubelet reports the exit itself, then the
	// container runs again for a moment: until it is ready, the last exit
	// is still the news (else the condition would flap at every restart).
	if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
		return crashCause(pod, cs, t)
	}
	if t := cs.LastTerminationState.Terminated; cs.State.Running != nil && !cs.Ready && t != nil && t.ExitCode != 0 {
		return crashCause(pod, cs, t)
	}
	return nil
}

func crashCause(pod *corev1.Pod, cs *corev1.ContainerStatus, t *corev1.ContainerStateTerminated) *PodCause {
	msg := fmt.Sprintf("pod %s: container %s is crash-looping (restarted %d times)", pod.Name, cs.Name, cs.RestartCount)
	if t != nil {
		msg += fmt.Sprintf(", last exit code %d", t.ExitCode)
		if t.Reason != "" && t.Reason != "Error" {
			msg += " (" + t.Reason + ")"
		}
		if logs := LastLogLines(t.Message); logs != "" {
			msg += ": " + logs
		}
	}
	return &PodCause{Reason: v1alpha1.ReasonCrashLoopBackOff, Message: msg, rank: rankCrash}
}

func specImage(pod *corev1.Pod, container string) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			return c.Image
		}
	}
	return ""
}

// PipelineCause picks the most telling cause among a pipeline's pods (the
// highest ranked, then the first pod by name, so the message is stable)
// and says how many other pods have one.
func PipelineCause(pods []corev1.Pod) *PodCause {
	type named struct {
		name  string
		cause *PodCause
	}
	var all []named
	for i := range pods {
		if c := PodHealthCause(&pods[i]); c != nil {
			all = append(all, named{pods[i].Name, c})
		}
	}
	if len(all) == 0 {
		return nil
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].cause.rank != all[j].cause.rank {
			return all[i].cause.rank < all[j].cause.rank
		}
		return all[i].name < all[j].name
	})
	best := *all[0].cause
	if n := len(all) - 1; n > 0 {
		best.Message += fmt.Sprintf(" (and %d more pod(s) not running)", n)
	}
	return &best
}

// HealthCondition explains a Ready condition that is False because too few
// pods are ready (Unavailable, Progressing) with the cause read from the
// pipeline's pods: its reason becomes the cause's and the cause is appended
// to the message. Any other condition is returned unchanged.
func HealthCondition(c metav1.Condition, pods []corev1.Pod) metav1.Condition {
	if c.Status != metav1.ConditionFalse || (c.Reason != v1alpha1.ReasonUnavailable && c.Reason != v1alpha1.ReasonProgressing) {
		return c
	}
	cause := PipelineCause(pods)
	if cause == nil {
		return c
	}
	c.Reason = cause.Reason
	c.Message = limit(c.Message + "; " + cause.Message)
	return c
}

// logTimestamp is the time stamp Fluent Bit starts its log lines with.
var logTimestamp = regexp.MustCompile(`^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)?\] `)

// ansiEscape matches terminal colour sequences.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// LastLogLines reduces a termination message (with the
// FallbackToLogsOnError policy: the container's last log lines) to the
// lines that say most: the last two error lines when there are any (Fluent
// Bit marks them "[error]"), joined by " | ", else the last line; without
// time stamps and colours, and at most maxLogText long. It is idempotent.
func LastLogLines(msg string) string {
	var lines, errs []string
	for _, l := range strings.Split(msg, "\n") {
		l = ansiEscape.ReplaceAllString(l, "")
		l = strings.TrimSpace(logTimestamp.ReplaceAllString(strings.TrimSpace(l), ""))
		if l = clean(l, maxLogText); l == "" {
			continue
		}
		lines = append(lines, l)
		if strings.Contains(l, "[error]") {
			errs = append(errs, l)
		}
	}
	pick, keep := lines, 1
	if len(errs) > 0 {
		pick, keep = errs, 2
	}
	if len(pick) > keep {
		pick = pick[len(pick)-keep:]
	}
	return clean(strings.Join(pick, " | "), maxLogText)
}

// clean makes s one printable line of at most max bytes (ending in "…"
// when cut, on a rune boundary).
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// podCauseChanged lets through the pod events that change a pod's cause
// (see PodHealthCause): a pod that starts or stops crash-looping, a new
// restart, an image pull error. Scheduling, starting and becoming ready
// pass no event here: the workload's status brings the pipeline back then.
func podCauseChanged() predicate.Predicate {
	same := func(a, b *PodCause) bool {
		return (a == nil) == (b == nil) && (a == nil || *a == *b)
	}
	cause := func(obj client.Object) *PodCause {
		if pod, ok := obj.(*corev1.Pod); ok {
			return PodHealthCause(pod)
		}
		return nil
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return cause(e.Object) != nil },
		DeleteFunc:  func(e event.DeleteEvent) bool { return cause(e.Object) != nil },
		UpdateFunc:  func(e event.UpdateEvent) bool { return !same(cause(e.ObjectOld), cause(e.ObjectNew)) },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// podToPipeline maps a pipeline pod to its pipeline by label.
func podToPipeline(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[LabelPipeline]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// pipelinePods lists the cached pods of p.
func (r *PipelineReconciler) pipelinePods(ctx context.Context, p *v1alpha1.Pipeline) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.Namespace),
		client.MatchingFields{IndexPodPipeline: p.Name}); err != nil {
		return nil, fmt.Errorf("list pods of pipeline %s/%s: %w", p.Namespace, p.Name, err)
	}
	return list.Items, nil
}

// trimPod keeps what PodHealthCause reads, with the kubelet's texts
// already bounded.
func trimPod(o *corev1.Pod) {
	o.Annotations = nil
	o.OwnerReferences = nil
	o.Finalizers = nil
	if v, ok := o.Labels[LabelPipeline]; ok && len(o.Labels) > 1 {
		o.Labels = map[string]string{LabelPipeline: v}
	}
	containers := make([]corev1.Container, len(o.Spec.Containers))
	for i, c := range o.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	o.Spec = corev1.PodSpec{NodeName: o.Spec.NodeName, Containers: containers}
	var conds []corev1.PodCondition
	for _, c := range o.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			conds = append(conds, corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason,
				Message: clean(c.Message, maxKubeletText)})
		}
	}
	statuses := make([]corev1.ContainerStatus, len(o.Status.ContainerStatuses))
	for i, cs := range o.Status.ContainerStatuses {
		statuses[i] = corev1.ContainerStatus{Name: cs.Name, Image: cs.Image, Ready: cs.Ready,
			RestartCount: cs.RestartCount, State: trimState(cs.State), LastTerminationState: trimState(cs.LastTerminationState)}
	}
	o.Status = corev1.PodStatus{Phase: o.Status.Phase, Conditions: conds, ContainerStatuses: statuses}
}

func trimState(s corev1.ContainerState) corev1.ContainerState {
	var out corev1.ContainerState
	if w := s.Waiting; w != nil {
		out.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: clean(w.Message, maxKubeletText)}
	}
	if s.Running != nil {
		out.Running = &corev1.ContainerStateRunning{}
	}
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Reason: t.Reason, Message: LastLogLines(t.Message)}
	}
	return out
}
