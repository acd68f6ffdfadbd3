package installer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/preflight"
)

// noCNICluster is K3s with flannel-backend none before Cilium: the node
// registers and stays NotReady.
type noCNICluster struct{ readyCluster }

func (c noCNICluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.readyCluster.Node(ctx, name)
	if err != nil {
		return nil, err
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse,
		Reason: "KubeletNotReady", Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"}}
	return n, nil
}

func TestCiliumInstallDefersChartsUntilTheNodeIsReady(t *testing.T) {
	ci := newChartInstall(t, Config{CNI: CNICilium}, "0.3.0")
	ti := ci.testInstall
	ti.facts = preflight.Facts{CgroupVersion: 2}
	ready := false
	ti.opts.Cluster = func(string) (Cluster, error) {
		if ready {
			return readyCluster{nodeName: ti.opts.Config.NodeName}, nil
		}
		return noCNICluster{readyCluster{nodeName: ti.opts.Config.NodeName}}, nil
	}
	helmCalls := func() int {
		ci.cluster.mu.Lock()
		defer ci.cluster.mu.Unlock()
		return len(ci.cluster.calls)
	}
	run := func() (*recorder, DryRunReport, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		plan, _, err := NewInstallPlan(ctx, ti.opts)
		require.NoError(t, err)
		dry := DryRun(ctx, plan)
		rec := &recorder{}
		return rec, dry, Run(ctx, plan, rec)
	}

	rec, dry, err := run()
	require.NoError(t, err, "install does not wait for a Ready node without a network plugin")
	assert.Zero(t, helmCalls(), "no chart is installed on a node without a network plugin")
	last := dry.Steps[len(dry.Steps)-1]
	assert.Equal(t, "charts (deferred)", last.Name)
	assert.Equal(t, "deferred", last.Would)
	assert.Contains(t, last.Note, "cilium install --set ipam.operator.clusterPoolIPv4PodCIDRList=10.42.0.0/16")
	assert.Contains(t, rec.of(EventSkipped), "charts (deferred)")
	assert.Contains(t, append(rec.of(EventSkipped), rec.of(EventDone)...), "wait for node", "the wait ends once the node registers")
	assert.Contains(t, dry.Steps[len(dry.Steps)-2].Description, "not for node Ready")
	summary := strings.Join(logLines(rec), "\n")
	assert.Contains(t, summary, "stays NotReady until Cilium is installed")
	assert.Contains(t, summary, "KUBECONFIG=/etc/rancher/k3s/k3s.yaml cilium install --set ipam.operator.clusterPoolIPv4PodCIDRList=10.42.0.0/16")
	assert.Contains(t, summary, "run `tpctl install` again")
	assert.NotContains(t, summary, "is Ready.")

	// Cilium installed, the node Ready: the next run installs the charts.
	ready = true
	rec, dry, err = run()
	require.NoError(t, err)
	assert.NotZero(t, helmCalls(), "the charts are installed")
	assert.Equal(t, "wait for core instance", dry.Steps[len(dry.Steps)-1].Name)
	assert.Contains(t, strings.Join(logLines(rec), "\n"), "is Ready.")
}

func logLines(rec *recorder) []string {
	var out []string
	for _, e := range rec.events {
		if e.Type == EventLog {
			out = append(out, e.Message)
		}
	}
	return out
}
