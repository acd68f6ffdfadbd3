package cluster_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// The node harness and the K3s stand-in run the same containerd, which
// scripts/test-deps builds once (from the launcher's containerd.env).
func TestNodeRunsTheLaunchersContainerd(t *testing.T) {
	assert.Equal(t, launcher.ContainerdVersion(), cluster.PinnedVersions().Containerd)
}
