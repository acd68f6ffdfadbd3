//go:build e2e

// Package registry tests private registries end to end on a booted systemd
// host (test/hosttest) with the K3s stand-in: `tpctl install` with a
// registry mirror, its credentials and CA renders registries.yaml, the
// node's containerd pulls the pipeline image through the mirror (TLS from
// a test CA, basic authentication) under a registry name that resolves
// nowhere else, and the password shows in no output, state, bundle or
// journal.
package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
	"github.com/tpctl/tpctl/test/registrytest"
)

// Paths inside the host, and the node address (a /32 on lo).
const (
	e2eDir       = "/root/tpctl-e2e"
	tpctlBin     = e2eDir + "/tpctl"
	launcherBin  = e2eDir + "/k3s"
	configFile   = e2eDir + "/install.yaml"
	caFile       = e2eDir + "/registry-ca.pem"
	passwordFile = e2eDir + "/registry-password"
	nodeIP       = "10.99.0.1"
	// privateRegistry resolves nowhere (.invalid): its images can only
	// come through the mirror.
	privateRegistry = "private.invalid"
	user            = "puller"
)

func needBootedHost(t *testing.T) { e2etest.NeedBootedHost(t) }

// sinkVariant is the sink image with a label, so that its digest differs
// from the one pushed before: a pipeline using it makes a fresh pull.
func sinkVariant(t *testing.T, img v1.Image, label string) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	cfg = cfg.DeepCopy()
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	cfg.Config.Labels["tpctl.test/variant"] = label
	out, err := mutate.ConfigFile(img, cfg)
	require.NoError(t, err)
	return out
}

// pulled reports whether, after the first skip requests of the access
// log (the test's own pushes), the registry resolved repo:tag for the user
// (containerd asks with HEAD, then GETs the manifest by digest) and served
// it the image's config blob.
func pulled(t *testing.T, reg *registrytest.Registry, skip int, repo, tag string, img v1.Image) bool {
	t.Helper()
	cfg, err := img.ConfigName()
	require.NoError(t, err)
	var resolved, config bool
	for _, r := range reg.Requests()[skip:] {
		if r.User != user || r.Status != 200 {
			continue
		}
		resolved = resolved || r.Path == "/v2/"+repo+"/manifests/"+tag
		config = config || (r.Method == "GET" && r.Path == "/v2/"+repo+"/blobs/"+cfg.String())
	}
	return resolved && config
}

func TestInstallPullsThroughRegistryMirror(t *testing.T) {
	needBootedHost(t)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	sentinel := make([]byte, 12)
	_, err := rand.Read(sentinel)
	require.NoError(t, err)
	password := "sentinel-" + hex.EncodeToString(sentinel)
	reg := registrytest.Serve(t, registrytest.Options{TLS: true, Username: user, Password: password})

	a, err := e2etest.BuildHostArtifacts(ctx, t.TempDir())
	require.NoError(t, err)
	// The sink goes to the registry only, not into the air-gap payload.
	var payload []string
	var sink v1.Image
	for _, img := range a.Images {
		if filepath.Base(img) == "sink.tar" {
			sink, err = tarball.ImageFromPath(img, nil)
			require.NoError(t, err)
			continue
		}
		payload = append(payload, img)
	}
	require.NotNil(t, sink, "the artifacts hold the sink image")
	sink2 := sinkVariant(t, sink, "2")
	reg.Push(t, "tpctl/sink:1", sink)
	reg.Push(t, "tpctl/sink:2", sink2)
	pushes := len(reg.Requests())

	// Other booted-host tests may hold the node lock for long: waiting
	// for it is not part of this test's time.
	lockCtx, lockCancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer lockCancel()
	waited := time.Now()
	lock, err := cluster.AcquireHostLock(lockCtx, cluster.DefaultLockPath)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, lock.Release()) })
	t.Logf("FIGURE registry e2e: waited %s for the node lock", time.Since(waited).Round(time.Millisecond))
	begin = time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	h := hosttest.Start(ctx, t, hosttest.Options{Name: "tpctl-e2e-registry", HostLock: lock,
		BindRO: map[string]string{launcher.DefaultComponentDir: a.Components}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.Journal(context.Background(), "k3s.service", 300))
		}
	})
	require.NoError(t, h.CopyIn(a.Tpctl, tpctlBin, 0o755))
	require.NoError(t, h.CopyIn(a.Launcher, launcherBin, 0o755))
	args := []string{"install", "--config", configFile, "--k3s-binary", launcherBin, "--yes",
		"--registry-mirror", privateRegistry + "=" + reg.URL(),
		"--registry-ca", reg.Host + "=" + caFile,
		"--registry-auth", reg.Host + "=" + user,
		"--registry-password-file", reg.Host + "=" + passwordFile,
		"--pipeline-image", privateRegistry + "/tpctl/sink:1", "--pipeline-arg=--http=:2020"}
	for _, img := range payload {
		inside := e2eDir + "/images/" + filepath.Base(img)
		require.NoError(t, h.CopyIn(img, inside, 0o644))
		args = append(args, "--k3s-images", inside)
	}
	require.NoError(t, os.WriteFile(h.Path(configFile), []byte("nodeIP: "+nodeIP+"\nairGap: true\n"), 0o644))
	require.NoError(t, os.WriteFile(h.Path(caFile), reg.CAPEM, 0o644))
	require.NoError(t, os.WriteFile(h.Path(passwordFile), []byte(password+"\n"), 0o600))
	_, err = h.Exec(ctx, "ip", "addr", "add", nodeIP+"/32", "dev", "lo")
	require.NoError(t, err)
	t.Logf("FIGURE registry e2e: host booted and prepared %s after the start", time.Since(begin).Round(time.Millisecond))

	run := func(ctx context.Context, args ...string) (string, string, error) {
		cmd := h.Command(ctx, append([]string{tpctlBin}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	secretFree := func(what, s string) {
		t.Helper()
		assert.NotContains(t, s, password, "the registry password is in %s", what)
	}

	// Install: the core instance's health-check pipeline runs the mirrored
	// image, so install returns only once it was pulled.
	installBegin := time.Now()
	stdout, stderr, err := run(ctx, append(args, "-o", "json")...)
	require.NoError(t, err, "install:\n%s\n%s", stdout, stderr)
	t.Logf("FIGURE install with a registry mirror: %s", time.Since(installBegin).Round(time.Millisecond))
	secretFree("install -o json", stdout+stderr)
	assert.True(t, pulled(t, reg, pushes, "tpctl/sink", "1", sink), "the health-check pipeline's image came through the mirror as %s: %+v", user, reg.Requests())

	// What K3s was given: registries.yaml (0600) holds the password; the
	// stand-in put the mirror into containerd's hosts.toml.
	fi, err := os.Stat(h.Path(installer.RegistriesPath))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), installer.RegistriesPath)
	data, err := os.ReadFile(h.Path(installer.RegistriesPath))
	require.NoError(t, err)
	assert.Contains(t, string(data), password, "the check for the password elsewhere looks for what is really there")
	hosts, err := os.ReadFile(h.Path("/var/lib/rancher/k3s/agent/etc/containerd/certs.d/" + privateRegistry + "/hosts.toml"))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), `[host."`+reg.URL()+`/v2"]`)
	secretFree("hosts.toml", string(hosts))

	// A second run changes nothing and says nothing of the password, in
	// plain text either.
	stdout, stderr, err = run(ctx, args...)
	require.NoError(t, err, "second install:\n%s\n%s", stdout, stderr)
	secretFree("install's plain output", stdout+stderr)

	// A pipeline whose image is only in the private registry becomes Ready.
	pipeBegin := time.Now()
	stdout, stderr, err = run(ctx, "pipeline", "create", "--name", "mirrored", "--image", privateRegistry+"/tpctl/sink:2",
		"--arg=--tcp=5170", "--port", "tcp/5170", "--no-auto-ports", "--service-type", "ClusterIP", "--wait", "--timeout", "4m")
	require.NoError(t, err, "pipeline create:\n%s\n%s", stdout, stderr)
	t.Logf("FIGURE pipeline on a mirrored image Ready after %s", time.Since(pipeBegin).Round(time.Millisecond))
	assert.True(t, pulled(t, reg, pushes, "tpctl/sink", "2", sink2), "the pipeline's image came through the mirror as %s", user)
	images, err := h.Exec(ctx, "/usr/local/bin/kubectl", "--kubeconfig", installer.KubeconfigPath, "get", "pods", "-A", "-o", `jsonpath={range .items[*]}{.status.containerStatuses[*].image}{"\n"}{end}`)
	require.NoError(t, err, images)
	assert.Contains(t, images, privateRegistry+"/tpctl/sink:2")
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/manifests/") && r.Status == 200 {
			assert.Equal(t, user, r.User, "every manifest served went to the authenticated user: %+v", r)
		}
	}

	// The password is in no output, state, bundle or journal.
	for _, args := range [][]string{{"status"}, {"status", "-o", "json"}, {"pipeline", "get", "mirrored"}} {
		stdout, stderr, err := run(ctx, args...)
		require.NoError(t, err, "%v:\n%s\n%s", args, stdout, stderr)
		secretFree(strings.Join(args, " "), stdout+stderr)
	}
	state, err := os.ReadFile(h.Path(installer.StatePath))
	require.NoError(t, err)
	assert.Contains(t, string(state), installer.RegistriesPath, "the state records the registries file")
	secretFree("the install state", string(state))
	bundle := e2eDir + "/bundle.tar.gz"
	stdout, stderr, err = run(ctx, "support-bundle", "--output", bundle, "--since", "1h", "--collector-timeout", "30s", "--timeout", "2m")
	require.NoError(t, err, "support-bundle:\n%s\n%s", stdout, stderr)
	secretFree("support-bundle's output", stdout+stderr)
	files := readBundle(t, h.Path(bundle))
	assert.NotEmpty(t, files)
	var sawRegistries bool
	for name, b := range files {
		secretFree("the support bundle's "+name, string(b))
		sawRegistries = sawRegistries || strings.HasSuffix(name, "registries.yaml")
	}
	assert.True(t, sawRegistries, "the bundle holds registries.yaml (redacted)")
	journal, err := h.Exec(ctx, "journalctl", "--no-pager", "-o", "cat")
	require.NoError(t, err)
	assert.Contains(t, journal, "k3s", "the journal holds K3s's log")
	secretFree("the journal", journal)
	t.Logf("FIGURE registry e2e: %s from the node lock to the end", time.Since(begin).Round(time.Millisecond))
}

// readBundle returns the files of a support bundle by name.
func readBundle(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[hdr.Name] = b
	}
}
