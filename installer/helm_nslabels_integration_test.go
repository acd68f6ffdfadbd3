//go:build integration

package installer

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/cluster"
)

// A namespace tpctl did not create gets the restricted standard in warn and
// audit mode only; a label its owner set stays theirs, both when labelling
// and when uninstall takes tpctl's labels back.
func TestAdvisoryNamespaceLabelsLeaveTheOwnersLabels(t *testing.T) {
	ctx := context.Background()
	cp := cluster.StartControlPlane(ctx, t)
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)

	// The namespace's owner chose baseline warnings, as a user would with
	// kubectl label (an update, not an apply).
	_, err = cs.CoreV1().Namespaces().Patch(ctx, "default", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/warn":"baseline","team":"obs"}}}`),
		metav1.PatchOptions{FieldManager: "kubectl-label"})
	require.NoError(t, err)

	var log lines
	h := &HelmRelease{Kubeconfig: cp.Kubeconfig(), Namespace: "default", Name: "core",
		AdvisoryNamespaceLabels: advisoryNamespaceLabels(), Progress: log.add}
	require.NoError(t, h.applyAdvisoryLabels(ctx, cs))
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "baseline", ns.Labels["pod-security.kubernetes.io/warn"], "the owner's warn level stays")
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/audit"])
	assert.Equal(t, "latest", ns.Labels["pod-security.kubernetes.io/audit-version"])
	assert.NotContains(t, ns.Labels, "pod-security.kubernetes.io/enforce", "never enforce on a namespace tpctl did not create")
	assert.Contains(t, log.all(), "already has pod-security.kubernetes.io/warn=baseline: left as set")

	// Applying again changes nothing.
	require.NoError(t, h.applyAdvisoryLabels(ctx, cs))

	// Meanwhile the owner pins the audit version tpctl set: a changed value
	// is theirs now (the API server moves its ownership to them).
	_, err = cs.CoreV1().Namespaces().Patch(ctx, "default", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/audit-version":"v1.36","added":"later"}}}`),
		metav1.PatchOptions{FieldManager: "kubectl-label"})
	require.NoError(t, err)

	require.NoError(t, h.removeAdvisoryLabels(ctx, cs))
	ns, err = cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, ns.Labels, "pod-security.kubernetes.io/audit", "tpctl's own label is taken back")
	assert.NotContains(t, ns.Labels, "pod-security.kubernetes.io/warn-version")
	assert.Equal(t, "baseline", ns.Labels["pod-security.kubernetes.io/warn"])
	assert.Equal(t, "v1.36", ns.Labels["pod-security.kubernetes.io/audit-version"], "a label the owner changed stays")
	assert.Equal(t, "obs", ns.Labels["team"])
	assert.Equal(t, "later", ns.Labels["added"])

	// Removing twice is a no-op.
	require.NoError(t, h.removeAdvisoryLabels(ctx, cs))
}
