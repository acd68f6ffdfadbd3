package launcher

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mirrors K3s: pkg/agent/containerd/config_linux.go and
// pkg/agent/templates/ (the version 3 config and the template file names).

//go:embed containerd.env
var containerdEnv string

// ContainerdVersion is the containerd release the launcher runs, built
// from github.com/containerd/containerd/v2 by scripts/test-deps.
func ContainerdVersion() string {
	for _, line := range strings.Split(containerdEnv, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CONTAINERD_VERSION="); ok {
			return v
		}
	}
	return ""
}

// containerdBinaries are the containerd programs the launcher needs.
func containerdBinaries() []string { return []string{"containerd", "containerd-shim-runc-v2", "ctr"} }

// containerdPaths finds them in the component directory as
// <name>-<ContainerdVersion>.
func containerdPaths(componentDir string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range containerdBinaries() {
		p := filepath.Join(componentDir, n+"-"+ContainerdVersion())
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("containerd %s: %s not found (run scripts/test-deps): %w", ContainerdVersion(), p, err)
		}
		out[n] = p
	}
	return out, nil
}
