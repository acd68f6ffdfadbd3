//go:build e2e

package install

import (
	"testing"

	"github.com/tpctl/tpctl/test/e2e/e2etest"
)

// needBootedHost is e2etest.NeedBootedHost: root, the cached Debian root
// and the Kubernetes binaries, or a skip (a failure under CI).
func needBootedHost(t *testing.T) { e2etest.NeedBootedHost(t) }
