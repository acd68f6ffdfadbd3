//go:build e2e

package release

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseIsReproducible builds the release of HEAD twice, from two
// exports in different directories, and compares the files byte for byte
// (scripts/check-reproducible). Only this machine's architecture and no K3s
// payload, to bound the time: the payload's files are copied verbatim, and
// the other architecture goes through the same build flags. Both builds
// share GOCACHE, so compiled packages come from it and what runs twice is
// the assembly and the link; `scripts/check-reproducible --cold` (an empty
// GOCACHE for the second build, several minutes) checks the compilation too.
func TestReleaseIsReproducible(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git to export the commit")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root := moduleRoot(t)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "check-reproducible"), "--no-payload", "--arch", runtime.GOARCH)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/check-reproducible (%s):\n%s", time.Since(start).Round(time.Second), out)
	require.NoError(t, err)
	assert.Contains(t, string(out), "reproducible: ")
	assert.Contains(t, string(out), "files byte-identical")
	assert.Contains(t, string(out), "  tpctl-linux-"+runtime.GOARCH+"\n")
	assert.Equal(t, 2, strings.Count(string(out), "== build "), "two builds")
}
