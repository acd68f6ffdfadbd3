package installer

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// advisoryLabelManager is the server-side apply field manager of the labels
// tpctl sets on a namespace it did not create. The API server records which
// labels it owns, so uninstall takes back exactly those and nothing a user
// set, before or after.
const advisoryLabelManager = "tpctl-pod-security"

// advisoryNamespaceLabels warn about and audit the restricted Pod Security
// Standard without enforcing it: for a namespace tpctl shares with whatever
// else runs there ("default"), where refusing other programs' pods is not
// its call.
func advisoryNamespaceLabels() map[string]string {
	out := map[string]string{}
	for _, mode := range []string{"warn", "audit"} {
		out["pod-security.kubernetes.io/"+mode] = "restricted"
		out["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	return out
}

// kubeClient is a typed client of Kubeconfig's cluster.
func (h *HelmRelease) kubeClient() (kubernetes.Interface, error) {
	rc, err := h.flags().ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", h.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("make Kubernetes client: %w", err)
	}
	return cs, nil
}

// applyAdvisoryLabels sets AdvisoryNamespaceLabels on the release's
// namespace, except a label the namespace already has with another value:
// that one is its owner's choice and stays (and is reported). A missing
// namespace is left to Helm, which creates it.
func (h *HelmRelease) applyAdvisoryLabels(ctx context.Context, cs kubernetes.Interface) error {
	if len(h.AdvisoryNamespaceLabels) == 0 {
		return nil
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, h.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", h.Namespace, err)
	}
	want := map[string]string{}
	var theirs []string
	for k, v := range h.AdvisoryNamespaceLabels {
		if cur, ok := ns.Labels[k]; ok && cur != v {
			theirs = append(theirs, k+"="+cur)
			continue
		}
		want[k] = v
	}
	sort.Strings(theirs)
	if len(theirs) > 0 {
		h.progress("namespace %s already has %s: left as set", h.Namespace, strings.Join(theirs, ", "))
	}
	if len(want) == 0 {
		return nil
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h.progress("labelling namespace %s with %s (warn and audit only, nothing refused)", h.Namespace, strings.Join(keys, ", "))
	// No Force: a label that another manager changed in between is a
	// conflict, not something to take.
	_, err = cs.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(h.Namespace).WithLabels(want),
		metav1.ApplyOptions{FieldManager: advisoryLabelManager})
	if err != nil {
		return fmt.Errorf("label namespace %s: %w", h.Namespace, err)
	}
	return nil
}

// removeAdvisoryLabels takes back the labels applyAdvisoryLabels set: an
// empty apply by the same field manager removes the fields it alone owns.
// A label a user set too, or changed since, is theirs and stays.
func (h *HelmRelease) removeAdvisoryLabels(ctx context.Context, cs kubernetes.Interface) error {
	if len(h.AdvisoryNamespaceLabels) == 0 {
		return nil
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, h.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", h.Namespace, err)
	}
	owned := false
	for _, mf := range ns.ManagedFields {
		if mf.Manager == advisoryLabelManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			owned = true
		}
	}
	if !owned {
		return nil
	}
	h.progress("removing the Pod Security labels tpctl set on namespace %s", h.Namespace)
	_, err = cs.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(h.Namespace),
		metav1.ApplyOptions{FieldManager: advisoryLabelManager})
	if err != nil {
		return fmt.Errorf("remove labels from namespace %s: %w", h.Namespace, err)
	}
	return nil
}
