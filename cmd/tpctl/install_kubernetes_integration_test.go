//go:build integration

package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/kubetarget"
	"github.com/tpctl/tpctl/test/cluster"
)

func TestInstallKubernetesDryRunPrintsTheClusterPreflight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp := cluster.StartControlPlane(ctx, t)
	args := []string{"install", "--target", "kubernetes", "--kubeconfig", cp.Kubeconfig(), "--operator-image", "registry.example.com/op:1.0", "--dry-run"}

	r := mgmtRun(t, newRootCmd(), "", args...)
	require.NoError(t, r.err, r.out)
	for _, want := range []string{"KubernetesVersion", "Permissions", "LoadBalancer", "DefaultStorageClass",
		"CRD-pipelines.telemetry.tpctl.dev", "Cluster preflight: ", "Dry run: nothing was written",
		"image registry.example.com/op:1.0", "Note: The core instance's default Service type is NodePort", "Record: Helm's release Secrets"} {
		assert.Contains(t, r.out, want)
	}

	r = mgmtRun(t, newRootCmd(), "", append(args, "-o", "json")...)
	require.NoError(t, r.err, r.out)
	var res kubetarget.Result
	require.NoError(t, json.Unmarshal([]byte(r.out), &res), r.out)
	assert.Equal(t, kubetarget.SchemaVersion, res.Preflight.Schema)
	assert.True(t, res.DryRun)
	assert.Equal(t, "NodePort", string(res.Service))

	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	_, err = cs.CoreV1().Namespaces().Get(ctx, kubetarget.OperatorNamespace, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a dry run writes nothing: %v", err)

	// Nothing installed: uninstall says so.
	r = mgmtRun(t, newRootCmd(), "", "uninstall", "--target", "kubernetes", "--kubeconfig", cp.Kubeconfig(), "--yes")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "Nothing to uninstall")

	// An unknown context is a usage error before anything is asked.
	r = mgmtRun(t, newRootCmd(), "", append(args, "--context", "nope")...)
	require.Error(t, r.err)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
	assert.Contains(t, r.err.Error(), "nope")
}
