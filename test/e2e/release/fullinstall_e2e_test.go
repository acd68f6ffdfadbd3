//go:build e2e

package release

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/ociimage"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// Paths inside the host for the full install.
const (
	fullDir      = "/root/tpctl-release-e2e"
	fullLauncher = fullDir + "/k3s"
	fullConfig   = fullDir + "/install.yaml"
	fullNodeIP   = "10.99.0.1"
)

// TestOneLinerFullInstall runs the documented one-liner on a booted host all
// the way: install.sh installs the released tpctl (nopayload) and execs
// `tpctl install`, which installs K3s as a systemd service. The K3s release
// cannot be fetched in this build environment, so --k3s-binary is the
// K3s-compatible launcher the install tests use (test/k3slauncher, a test
// double that is never shipped) with its air-gap images, and the
// health-check pipeline runs the harness's sink image; everything from the
// pipe into sh onwards is what a user runs.
func TestOneLinerFullInstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	hosttest.RequireRootfs(t)
	bins, err := cluster.FindBinaries()
	if err != nil {
		t.Skipf("needs the node binaries (scripts/test-deps): %v", err)
	}
	if _, err := bins.Require("kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "coredns"); err != nil {
		t.Skipf("needs the node binaries (scripts/test-deps): %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	work := openTempDir(t)
	dist := filepath.Join(work, "ok")
	out, err := buildRelease(t, dist, []string{"RELEASE_URL=" + url + "/ok"}, "--no-payload")
	require.NoError(t, err, out)
	want := readSums(t, filepath.Join(dist, "SHA256SUMS"))[binaryName()]
	require.Len(t, want, 64)
	log := &requestLog{}
	serve(t, ln, work, log)
	launcherBin, imgs := launcherArtifacts(ctx, t, bins, t.TempDir())

	h := hosttest.Start(ctx, t, hosttest.Options{
		Name:   "tpctl-release",
		BindRO: map[string]string{launcher.DefaultComponentDir: bins.Dir},
	})
	require.NoError(t, h.CopyIn(launcherBin, fullLauncher, 0o755))
	// The health-check pipeline runs the harness's sink image (the default
	// pipeline image is pulled from a registry, unreachable here).
	flags := []string{"--yes", "--config", fullConfig, "--k3s-binary", fullLauncher,
		"--pipeline-image", images.SinkRef, "--pipeline-arg=--http=:2020"}
	for _, img := range imgs {
		inside := fullDir + "/images/" + filepath.Base(img)
		require.NoError(t, h.CopyIn(img, inside, 0o644))
		flags = append(flags, "--k3s-images", inside)
	}
	config := "nodeIP: " + fullNodeIP + "\ndisable: [traefik, metrics-server, local-storage, servicelb]\nairGap: true\n"
	require.NoError(t, os.WriteFile(filepath.Join(h.Root(), fullConfig), []byte(config), 0o644))
	_, err = h.Exec(ctx, "ip", "addr", "add", fullNodeIP+"/32", "dev", "lo")
	require.NoError(t, err)
	before, err := h.Snapshot(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.Journal(context.Background(), installer.UnitName, 200))
		}
	})

	oneLiner := "curl -sfL " + url + "/ok/install.sh | sh -s - " + strings.Join(flags, " ")
	run := func(t *testing.T) (string, int) {
		t.Helper()
		var stdout, stderr strings.Builder
		start := time.Now()
		err := h.ExecIO(ctx, nil, &stdout, &stderr, "sh", "-c", oneLiner)
		t.Logf("$ %s → exit %d in %s\n%s%s", oneLiner, exitCode(err), time.Since(start).Round(time.Millisecond),
			tailOf(stdout.String()), stderr.String())
		return stdout.String(), exitCode(err)
	}

	ok := t.Run("install", func(t *testing.T) {
		_, code := run(t)
		require.Equal(t, 0, code)
		sd, err := h.Systemd(ctx)
		require.NoError(t, err)
		defer sd.Close()
		u, err := sd.GetUnitPropertiesContext(ctx, installer.UnitName)
		require.NoError(t, err)
		assert.Equal(t, "active", u["ActiveState"])
		assert.Equal(t, "enabled", u["UnitFileState"])
	})
	ok = ok && t.Run("twice is harmless", func(t *testing.T) {
		log.take()
		stdout, code := run(t)
		require.Equal(t, 0, code)
		assert.Contains(t, stdout, "already")
		assert.Contains(t, stdout, "no change")
		assert.Equal(t, []string{"/ok/install.sh", "/ok/SHA256SUMS", "/ok/SHA256SUMS.sig"}, log.take())
	})
	// Uninstall's residue is the install tests' subject (test/e2e/install);
	// here: the unit goes, the tpctl the one-liner placed stays.
	t.Run("uninstall keeps tpctl itself", func(t *testing.T) {
		if !ok {
			t.Skip("the install above failed")
		}
		_, err := h.Exec(ctx, "tpctl", "uninstall", "--yes")
		require.NoError(t, err)
		_, err = os.Stat(h.Path(installer.UnitPath))
		assert.ErrorIs(t, err, os.ErrNotExist, "the unit file is removed")
		assert.Equal(t, want, sha256File(t, h.Path("/usr/local/bin/tpctl")))
		after, err := h.Snapshot(ctx)
		require.NoError(t, err)
		diff := before.Diff(after)
		assert.Contains(t, strings.Join(diff, "\n"), "+ file: /usr/local/bin/tpctl -rwxr-xr-x ")
		t.Logf("after uninstall, %d lines differ from before the install: %v", len(diff), hosttest.Residue(diff))
	})
}

// launcherArtifacts builds the K3s-compatible launcher and the air-gap
// images it needs (pause, CoreDNS, the sink image as the pipeline image)
// into dir.
func launcherArtifacts(ctx context.Context, t *testing.T, bins cluster.Binaries, dir string) (string, []string) {
	t.Helper()
	bin := filepath.Join(dir, "k3s")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./test/k3slauncher")
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	imgDir := filepath.Join(dir, "images")
	require.NoError(t, os.MkdirAll(imgDir, 0o755))
	pause, err := images.Build(ctx, imgDir, images.Pause())
	require.NoError(t, err)
	coredns, err := bins.Path("coredns")
	require.NoError(t, err)
	f, err := ociimage.FileFromPath(coredns, "/coredns", true)
	require.NoError(t, err)
	dns := filepath.Join(imgDir, "coredns.tar")
	_, err = ociimage.WriteTarball(dns, ociimage.Spec{
		Ref: launcher.CoreDNSImage(), Entrypoint: []string{"/coredns"}, User: "65532:65532", Files: []ociimage.File{f},
	})
	require.NoError(t, err)
	sink, err := images.Build(ctx, imgDir, images.Sink())
	require.NoError(t, err)
	return bin, []string{pause, dns, sink}
}
