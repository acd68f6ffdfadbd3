//go:build e2e

package join

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
	"github.com/tpctl/tpctl/installer"
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

// run is one tpctl process inside a host.
type run struct {
	stdout, stderr string
	err            error
	took           time.Duration
}

// tpctl runs tpctl with args (and stdin) inside h.
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
	return "stdout: " + tailOf(r.stdout, 4000) + "\nstderr: " + tailOf(r.stderr, 4000)
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// kubectl runs the kubectl link install made on the server, with K3s's
// admin kubeconfig.
func kubectl(ctx context.Context, h *hosttest.Host, args ...string) (string, error) {
	return h.Exec(ctx, append([]string{"/usr/local/bin/kubectl", "--kubeconfig", installer.KubeconfigPath,
		"--cache-dir", "/tmp/tpctl-e2e-kubectl-cache"}, args...)...)
}

// A pipeline configuration: the sink stand-in runs instead of Fluent Bit
// and ignores it; the ports come from --port (--no-auto-ports).
const pipelineConfig = `pipeline:
  inputs:
    - name: dummy
  outputs:
    - name: stdout
      match: '*'
`

func nodeReady(ctx context.Context, h *hosttest.Host, node string) (string, error) {
	out, err := kubectl(ctx, h, "get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	return strings.TrimSpace(out), err
}

// TestAgentJoin boots two hosts on a test bridge, installs tpctl's K3s
// server on A (node address: A's bridge address), makes a token there with
// `tpctl token create`, joins B as an agent with `tpctl join` (token on
// stdin, never in the output), waits for B to be Ready in A's cluster, logs
// the join time and memory per host with K3s running, runs a DaemonSet
// pipeline with a Ready pod on both nodes whose NodePort frontend answers on
// both node addresses, then uninstalls B: refused while
// its Node is in the cluster, done after `tpctl node delete` on A; its Node
// and node-password secret leave the cluster, A stays Ready, and B is as
// before the join.
func TestAgentJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	hosttest.RequireRootfs(t)
	a, err := buildArtifacts(ctx, t.TempDir())
	require.NoError(t, err)
	g := multihost.StartWith(ctx, t, multihost.Options{Hosts: 2, Host: hosttest.Options{
		BindRO: map[string]string{launcher.DefaultComponentDir: a.components},
	}})
	srv, agent := g.Hosts[0], g.Hosts[1]
	var imageArgs []string
	for _, h := range g.Hosts {
		require.NoError(t, h.CopyIn(a.tpctl, tpctlBin, 0o755))
		require.NoError(t, h.CopyIn(a.launcher, launcherBin, 0o755))
		for _, img := range a.images {
			require.NoError(t, h.CopyIn(img, e2eDir+"/images/"+filepath.Base(img), 0o644))
		}
	}
	for _, img := range a.images {
		imageArgs = append(imageArgs, "--k3s-images", e2eDir+"/images/"+filepath.Base(img))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(srv.Journal(context.Background(), "k3s.service", 200))
			t.Log(agent.Journal(context.Background(), "k3s-agent.service", 200))
		}
	})

	// The server: install on A, its node address the bridge address.
	config := "nodeIP: " + srv.Address().String() + "\nairGap: true\n"
	require.NoError(t, os.WriteFile(filepath.Join(srv.Root(), configFile), []byte(config), 0o644))
	r := tpctl(ctx, srv, "", append([]string{"install", "--config", configFile, "--k3s-binary", launcherBin, "--yes",
		"--pipeline-image", images.SinkRef, "--pipeline-arg=--http=:2020", "-o", "json"}, imageArgs...)...)
	require.NoError(t, r.err, "install on %s: %s", srv.Name(), r)
	t.Logf("FIGURE install on %s: %s", srv.Name(), r.took.Round(time.Millisecond))
	ready, err := nodeReady(ctx, srv, srv.Name())
	require.NoError(t, err)
	require.Equal(t, "True", ready, "server node Ready")
	if m, err := srv.Memory(); assert.NoError(t, err) {
		t.Logf("FIGURE memory %s (K3s server running, before the join): %s", srv.Name(), m)
	}

	// The token, printed once with the join command.
	r = tpctl(ctx, srv, "", "token", "create", "--ttl", "1h", "-o", "json")
	require.NoError(t, r.err, "%s", r)
	var created struct {
		ID, Server, Token, JoinCommand string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created), r.stdout)
	wantServer := "https://" + srv.Address().String() + ":6443"
	assert.Equal(t, wantServer, created.Server, "the server address other hosts join")
	assert.Equal(t, "tpctl join --server "+wantServer+" --token "+created.Token, created.JoinCommand)
	secret := created.Token[strings.LastIndex(created.Token, ".")+1:]
	require.NotEmpty(t, secret)
	r = tpctl(ctx, srv, "", "token", "list")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stdout, created.ID)
	assert.NotContains(t, r.stdout, secret, "token list shows no secret")

	// k3s-agent.service wants network-online.target, which starts
	// systemd-networkd's wait-online unit, as on any host whose network a
	// unit waited for: reach it first, so the snapshot compares what join
	// and uninstall did.
	_, err = agent.Exec(ctx, "systemctl", "start", "network-online.target")
	require.NoError(t, err)
	before, err := agent.Snapshot(ctx)
	require.NoError(t, err)
	// The agent: join B, the token on stdin (not in the process list).
	r = tpctl(ctx, agent, created.Token, append([]string{"join", "--server", created.Server, "--token-file", "-",
		"--node-ip", agent.Address().String(), "--k3s-binary", launcherBin, "--yes", "-o", "json", "--timeout", "8m"}, imageArgs...)...)
	require.NoError(t, r.err, "join %s: %s", agent.Name(), r)
	t.Logf("FIGURE join of %s (agent): %s", agent.Name(), r.took.Round(time.Millisecond))
	assert.NotContains(t, r.stdout+r.stderr, secret, "join never prints the token")
	require.Eventually(t, func() bool {
		ready, _ := nodeReady(ctx, srv, agent.Name())
		return ready == "True"
	}, 3*time.Minute, 2*time.Second, "agent node Ready in the server's cluster")
	out, err := kubectl(ctx, srv, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.addresses[?(@.type==\"InternalIP\")].address}{\"\\n\"}{end}")
	require.NoError(t, err)
	assert.Contains(t, out, agent.Name()+" "+agent.Address().String(), "the agent's node address is its bridge address")
	for _, h := range g.Hosts {
		m, err := h.Memory()
		require.NoError(t, err)
		t.Logf("FIGURE memory %s (K3s %s running): %s", h.Name(), map[bool]string{true: "server", false: "agent"}[h == srv], m)
	}

	// A DaemonSet pipeline runs a pod on every node, the agent's included
	// (its pod network and the sink image staged by join).
	pipelineFile := e2eDir + "/pipeline.yaml"
	require.NoError(t, os.WriteFile(filepath.Join(srv.Root(), pipelineFile), []byte(pipelineConfig), 0o644))
	r = tpctl(ctx, srv, "", "pipeline", "create", "--name", "every-node", "--config-file", pipelineFile, "--no-auto-ports",
		"--port", "tcp/5170", "--arg=--tcp=5170", "--arg=--http=:2020", "--workload", "daemonset", "--service-type", "NodePort", "-o", "json")
	require.NoError(t, r.err, "DaemonSet pipeline: %s", r)
	if !assert.Eventually(t, func() bool {
		out, err := kubectl(ctx, srv, "get", "pods", "-A", "-l", v1alpha1.LabelPipeline+"=every-node", "-o",
			`jsonpath={range .items[*]}{.spec.nodeName}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return false
		}
		return strings.Contains(out, srv.Name()+"=True") && strings.Contains(out, agent.Name()+"=True")
	}, 4*time.Minute, 2*time.Second, "the DaemonSet pipeline has a Ready pod on %s and on %s", srv.Name(), agent.Name()) {
		for _, args := range [][]string{{"get", "pods", "-A", "-o", "wide"}, {"describe", "pods", "-l", v1alpha1.LabelPipeline + "=every-node"},
			{"get", "daemonset", "every-node", "-o", "yaml"}, {"get", "pipeline", "every-node", "-o", "yaml"}} {
			out, err := kubectl(ctx, srv, args...)
			t.Logf("kubectl %v: %v\n%s", args, err, out)
		}
		t.FailNow()
	}
	checkFrontendOnEveryNode(ctx, t, srv, g.Hosts, "every-node", 5170, 2020)
	r = tpctl(ctx, srv, "", "pipeline", "delete", "every-node", "--yes")
	require.NoError(t, r.err, "%s", r)

	// Uninstall B. Its own credentials may read its Node, not delete it:
	// uninstall refuses, changing nothing, until the server deletes it.
	r = tpctl(ctx, agent, "", "uninstall", "--yes")
	require.Error(t, r.err, "uninstall of an agent whose Node is still in the cluster: %s", r)
	assert.Contains(t, r.stdout+r.stderr, "tpctl node delete "+agent.Name(), "the refusal says what to run on the server")
	ready, err = nodeReady(ctx, srv, agent.Name())
	require.NoError(t, err)
	assert.Equal(t, "True", ready, "the refused uninstall left the agent running")
	r = tpctl(ctx, srv, "", "node", "delete", agent.Name(), "--yes")
	require.NoError(t, r.err, "node delete %s: %s", agent.Name(), r)
	// Then its node has left the cluster, A stays, B is as before.
	r = tpctl(ctx, agent, "", "uninstall", "--yes", "-o", "json")
	require.NoError(t, r.err, "uninstall %s: %s", agent.Name(), r)
	t.Logf("FIGURE uninstall of %s (agent): %s", agent.Name(), r.took.Round(time.Millisecond))
	_, err = kubectl(ctx, srv, "get", "node", agent.Name())
	assert.ErrorContains(t, err, "NotFound", "the agent's Node is deleted")
	_, err = kubectl(ctx, srv, "-n", "kube-system", "get", "secret", agent.Name()+".node-password.k3s")
	assert.ErrorContains(t, err, "NotFound", "the agent's node-password secret is deleted")
	ready, err = nodeReady(ctx, srv, srv.Name())
	require.NoError(t, err)
	assert.Equal(t, "True", ready, "the server node stays Ready")
	after, err := agent.Snapshot(ctx)
	require.NoError(t, err)
	diff := before.Diff(after)
	t.Logf("FIGURE agent uninstall residue: %d lines %v", len(diff), hosttest.Residue(diff))
	assert.Empty(t, diff, "uninstall left the agent host different from before the join")
}
