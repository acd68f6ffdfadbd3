//go:build e2e

package install

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
)

// needBootedHost checks what a booted-host test needs: root, the cached
// Debian root and the Kubernetes binaries. Missing ones skip the test on a
// developer's machine; under CI (CI=true, where scripts/test-deps has run)
// they fail it, so a broken dependency step never turns into a silent skip.
func needBootedHost(t *testing.T) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		missing("needs root: boots a systemd host that shares the network")
		return
	}
	cacheDir, err := hosttest.CacheDir()
	require.NoError(t, err)
	if _, err := hosttest.CachedRootfs(cacheDir, hosttest.DefaultRootfs()); err != nil {
		missing("needs the Debian root tarball (scripts/test-deps): %v", err)
		return
	}
	if _, err := cluster.FindBinaries(); err != nil {
		missing("needs the Kubernetes binaries (scripts/test-deps): %v", err)
	}
}
