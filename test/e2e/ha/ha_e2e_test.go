//go:build e2e

package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
	"github.com/tpctl/tpctl/test/multihost"
)

// Paths inside every host.
const (
	e2eDir      = "/root/tpctl-e2e"
	tpctlBin    = e2eDir + "/tpctl"
	launcherBin = e2eDir + "/k3s"
	configFile  = e2eDir + "/install.yaml"
)

type run struct {
	stdout, stderr string
	err            error
	took           time.Duration
}

func tpctl(ctx context.Context, h *hosttest.Host, stdin string, args ...string) run {
	cmd := h.Command(ctx, append([]string{tpctlBin}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	begin := time.Now()
	err := cmd.Run()
	return run{stdout: out.String(), stderr: errb.String(), err: err, took: time.Since(begin)}
}

func (r run) String() string {
	tail := func(s string) string {
		if len(s) > 4000 {
			return "…" + s[len(s)-4000:]
		}
		return s
	}
	return "stdout: " + tail(r.stdout) + "\nstderr: " + tail(r.stderr)
}

func kubectl(ctx context.Context, h *hosttest.Host, args ...string) (string, error) {
	return h.Exec(ctx, append([]string{launcherBin, "kubectl", "--kubeconfig", "/etc/rancher/k3s/k3s.yaml"}, args...)...)
}

const pipelineConfig = `pipeline:
  inputs:
    - name: dummy
  outputs:
    - name: stdout
      match: '*'
`

// TestThreeServers installs on A, converts A to embedded etcd with `token
// create --role server`, joins B and C as servers, stops K3s on A, and
// checks that the API (through B and C) answers and that a pipeline
// created afterwards runs. It logs the join time, the failover time and
// the memory of every host.
func TestThreeServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	hosttest.RequireRootfs(t)
	a, err := e2etest.BuildHostArtifacts(ctx, t.TempDir())
	require.NoError(t, err)
	g := multihost.StartWith(ctx, t, multihost.Options{Hosts: 3, Host: hosttest.Options{
		BindRO: map[string]string{launcher.DefaultComponentDir: a.Components},
	}})
	hA, hB, hC := g.Hosts[0], g.Hosts[1], g.Hosts[2]
	var imageArgs []string
	for _, img := range a.Images {
		imageArgs = append(imageArgs, "--k3s-images", e2eDir+"/images/"+filepath.Base(img))
	}
	for _, h := range g.Hosts {
		require.NoError(t, h.CopyIn(a.Tpctl, tpctlBin, 0o755))
		require.NoError(t, h.CopyIn(a.Launcher, launcherBin, 0o755))
		for _, img := range a.Images {
			require.NoError(t, h.CopyIn(img, e2eDir+"/images/"+filepath.Base(img), 0o644))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range g.Hosts {
				t.Log(h.Name(), h.Journal(context.Background(), "k3s.service", 150))
			}
		}
	})

	config := "nodeIP: " + hA.Address().String() + "\nairGap: true\n"
	require.NoError(t, os.WriteFile(filepath.Join(hA.Root(), configFile), []byte(config), 0o644))
	r := tpctl(ctx, hA, "", append([]string{"install", "--config", configFile, "--k3s-binary", launcherBin, "--yes",
		"--pipeline-image", images.SinkRef, "--pipeline-arg=--http=:2020", "-o", "json"}, imageArgs...)...)
	require.NoError(t, r.err, "install on %s: %s", hA.Name(), r)
	t.Logf("FIGURE install on %s: %s", hA.Name(), r.took.Round(time.Millisecond))

	// The first server converts to embedded etcd, after a backup.
	r = tpctl(ctx, hA, "", "token", "create", "--role", "server", "-o", "json")
	require.NoError(t, r.err, "token create --role server: %s", r)
	t.Logf("FIGURE conversion of %s to embedded etcd (backup, restart, Ready): %s", hA.Name(), r.took.Round(time.Millisecond))
	var created struct {
		Server, Token, JoinCommand, Warning string
		Converted                           bool
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created), r.stdout)
	assert.True(t, created.Converted)
	assert.Contains(t, created.Warning, "2 etcd members", "the second server makes an even count")
	assert.Contains(t, r.stderr, "backup written to")
	_, err = hA.Exec(ctx, "test", "-e", "/var/lib/rancher/k3s/server/db/state.db.migrated")
	assert.NoError(t, err, "the SQLite datastore was migrated")
	out, err := kubectl(ctx, hA, "get", "deployment", "-A", "-o", "name")
	require.NoError(t, err)
	assert.NotEmpty(t, out, "the install's objects are in etcd")

	for _, h := range []*hosttest.Host{hB, hC} {
		r = tpctl(ctx, h, created.Token, append([]string{"join", "--role", "server", "--server", created.Server, "--token-file", "-",
			"--node-ip", h.Address().String(), "--k3s-binary", launcherBin, "--yes", "-o", "json", "--timeout", "12m"}, imageArgs...)...)
		require.NoError(t, r.err, "join %s as a server: %s", h.Name(), r)
		t.Logf("FIGURE join of %s (server): %s", h.Name(), r.took.Round(time.Millisecond))
		secret := created.Token[strings.LastIndex(created.Token, ":")+1:]
		assert.NotContains(t, r.stdout+r.stderr, secret, "join never prints the token")
	}
	out, err = kubectl(ctx, hA, "get", "nodes", "-l", "node-role.kubernetes.io/etcd=true", "-o", "name")
	require.NoError(t, err)
	assert.Len(t, strings.Fields(out), 3, "three etcd members: %s", out)
	var total uint64
	for _, h := range g.Hosts {
		m, err := h.Memory()
		require.NoError(t, err)
		t.Logf("FIGURE memory %s (K3s server on embedded etcd): %s", h.Name(), m)
		total += m.Cgroup
	}
	t.Logf("FIGURE memory of the three hosts: %d MiB", total>>20)
	assert.Less(t, total, uint64(6)<<30, "three servers under 6 GiB")

	// Stop K3s on A: B and C keep the API and run new pipelines.
	begin := time.Now()
	_, err = hA.Exec(ctx, "systemctl", "stop", "k3s.service")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		out, err := kubectl(ctx, hB, "get", "--raw", "/readyz")
		return err == nil && strings.Contains(out, "ok")
	}, 2*time.Minute, time.Second, "the API through %s", hB.Name())
	_, err = kubectl(ctx, hC, "get", "nodes")
	require.NoError(t, err, "the API through %s", hC.Name())
	t.Logf("FIGURE API answering through %s after K3s stopped on %s: %s", hB.Name(), hA.Name(), time.Since(begin).Round(time.Millisecond))

	pipelineFile := e2eDir + "/pipeline.yaml"
	require.NoError(t, os.WriteFile(filepath.Join(hB.Root(), pipelineFile), []byte(pipelineConfig), 0o644))
	r = tpctl(ctx, hB, "", "pipeline", "create", "--name", "after-failover", "--config-file", pipelineFile, "--no-auto-ports",
		"--port", "tcp/5170", "--arg=--tcp=5170", "--arg=--http=:2020", "-o", "json")
	require.NoError(t, r.err, "pipeline after the failover: %s", r)
	if !assert.Eventually(t, func() bool {
		out, err := kubectl(ctx, hB, "get", "pods", "-A", "-l", v1alpha1.LabelPipeline+"=after-failover", "-o",
			`jsonpath={range .items[*]}{.spec.nodeName}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		return err == nil && strings.Contains(out, "=True") && !strings.Contains(out, hA.Name()+"=True")
	}, 5*time.Minute, 2*time.Second, "the pipeline created after the failover has a Ready pod on B or C") {
		out, err := kubectl(ctx, hB, "get", "pods", "-A", "-o", "wide")
		t.Logf("pods: %v\n%s", err, out)
		t.FailNow()
	}
	t.Logf("FIGURE failover (K3s stopped on %s to a Ready pipeline created through %s): %s", hA.Name(), hB.Name(), time.Since(begin).Round(time.Millisecond))
}
