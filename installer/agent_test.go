package installer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
)

// k3sAgentFlags are the flags of `k3s agent` (K3s pkg/cli/cmds/agent.go,
// NewAgentCommand, hidden ones included): the keys its config.yaml may set.
var k3sAgentFlags = []string{
	"config", "debug", "v", "vmodule", "log", "alsologtostderr",
	"token", "token-file", "server", "data-dir", "node-name", "with-node-id", "node-label", "node-taint",
	"image-credential-provider-bin-dir", "image-credential-provider-config", "selinux", "lb-server-port",
	"protect-kernel-defaults", "container-runtime-endpoint", "pause-image", "snapshotter", "private-registry",
	"airgap-extra-registry", "node-ip", "node-external-ip", "resolv-conf", "flannel-iface", "flannel-conf",
	"flannel-cni-conf", "kubelet-arg", "kube-proxy-arg", "rootless", "prefer-bundled-bin", "disable-selinux",
	"docker", "no-flannel", "cluster-secret", "vpn-auth", "vpn-auth-file",
}

const testJoinToken = "K10" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "::abcdef.0123456789abcdef"

func TestAgentConfigHasOnlyKeysK3sAgentAccepts(t *testing.T) {
	c := completed(t, Config{NodeName: "edge-2", NodeIP: "10.0.0.12", KubeletArgs: []string{"max-pods=50"}})
	raw, err := RenderAgentConfig(c, Facts{CgroupV1: true, KubeletArgs: []string{"resolv-conf=/run/systemd/resolve/resolv.conf"}}, "https://10.0.0.10:6443", testJoinToken)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &got))
	var keys []string
	for k := range got {
		keys = append(keys, k)
		assert.Contains(t, k3sAgentFlags, k, "config key %q is not a flag of `k3s agent`", k)
	}
	slices.Sort(keys)
	assert.Equal(t, AgentConfigKeys(), keys, "every key tpctl can write is listed (the test launcher accepts exactly these)")
	for _, k := range AgentConfigKeys() {
		assert.Contains(t, k3sAgentFlags, k)
	}
	assert.Equal(t, "https://10.0.0.10:6443", got["server"])
	assert.Equal(t, testJoinToken, got["token"])
	assert.Equal(t, "edge-2", got["node-name"])
	assert.Equal(t, []any{"max-pods=50", "resolv-conf=/run/systemd/resolve/resolv.conf", "fail-cgroupv1=false"}, got["kubelet-arg"])
	for _, serverOnly := range []string{"cluster-cidr", "service-cidr", "tls-san", "disable", "write-kubeconfig-mode", "cluster-dns"} {
		assert.NotContains(t, got, serverOnly)
	}
	red := string(redactAgentConfig(raw))
	assert.NotContains(t, red, "0123456789abcdef0123456789abcdef")
	assert.NotContains(t, red, "abcdef.0123456789abcdef")
	assert.Contains(t, red, "token: <redacted>\n")
}

func TestAgentUnitIsK3sInstallShAgentUnit(t *testing.T) {
	raw, err := RenderAgentUnit()
	require.NoError(t, err)
	u := string(raw)
	for _, line := range []string{"Type=exec", "ExecStart=/usr/local/bin/k3s agent", "KillMode=process", "Delegate=yes",
		"LimitNOFILE=1048576", "TasksMax=infinity", "TimeoutStartSec=0", "Restart=always",
		"EnvironmentFile=-/etc/systemd/system/k3s-agent.service.env",
		"ExecStartPre=-/sbin/modprobe br_netfilter", "ExecStartPre=-/sbin/modprobe overlay", "WantedBy=multi-user.target"} {
		assert.Contains(t, u, line+"\n")
	}
	assert.NotContains(t, u, "k3s server")
	assert.NotContains(t, u, "Type=notify", "K3s's install.sh runs agents as Type=exec")
	assert.True(t, systemd.IsManaged(raw), "the unit carries tpctl's mark")
}

// fakeAgent is systemd running `k3s agent`: starting it writes the kubelet
// kubeconfig K3s's agent writes, and every call names its unit.
type fakeAgent struct {
	*fakeK3s
	mu    sync.Mutex
	units []string
	// order records Node deletions among the systemd calls.
	order *[]string
}

func (f *fakeAgent) unit(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.units = append(f.units, u)
}

func (f *fakeAgent) Reload(context.Context) error {
	f.call("reload")
	_, err := os.Stat(filepath.Join(f.root, AgentUnitPath))
	f.loaded = err == nil
	return nil
}

func (f *fakeAgent) EnableAndStart(ctx context.Context, u string) error {
	f.unit(u)
	if err := f.fakeK3s.EnableAndStart(ctx, u); err != nil {
		return err
	}
	kc := filepath.Join(f.root, KubeletKubeconfig(Config{DataDir: f.dataDir}))
	if err := os.MkdirAll(filepath.Dir(kc), 0o755); err != nil {
		return err
	}
	return os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
}

func (f *fakeAgent) StopAndDisable(ctx context.Context, u string) error {
	f.unit(u)
	if f.order != nil {
		*f.order = append(*f.order, "stop "+u)
	}
	return f.fakeK3s.StopAndDisable(ctx, u)
}

func (f *fakeAgent) State(ctx context.Context, u string) (systemd.UnitState, error) {
	f.unit(u)
	return f.fakeK3s.State(ctx, u)
}

// agentCluster is the server's API seen with the node's credentials.
type agentCluster struct {
	mu       sync.Mutex
	nodes    map[string]bool
	order    *[]string
	kubeconf []string
}

func (c *agentCluster) open(kc string) (Cluster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kubeconf = append(c.kubeconf, kc)
	return c, nil
}

func (c *agentCluster) Readyz(context.Context) error {
	return errors.New("an agent does not read /readyz")
}

func (c *agentCluster) Node(_ context.Context, name string) (*corev1.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.nodes[name] {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
	}
	n := &corev1.Node{}
	n.Name = name
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	return n, nil
}

func (c *agentCluster) Deployment(context.Context, string, string) (*appsv1.Deployment, error) {
	return nil, errors.New("an agent reads no Deployment")
}

type testJoin struct {
	*testInstall
	agent    *fakeAgent
	cluster  *agentCluster
	verified []string
	verify   error
	jo       JoinOptions
	order    []string
}

func newTestJoin(t *testing.T) *testJoin {
	t.Helper()
	ti := newTestInstall(t, Config{NodeName: "edge-2", NodeIP: "10.0.0.12"})
	tj := &testJoin{testInstall: ti}
	tj.agent = &fakeAgent{fakeK3s: ti.k3s, order: &tj.order}
	tj.cluster = &agentCluster{nodes: map[string]bool{"edge-2": true}, order: &tj.order}
	ti.opts.Systemd = func(context.Context) (systemd.Manager, error) { return tj.agent, nil }
	ti.opts.Cluster = tj.cluster.open
	tj.jo = JoinOptions{Options: ti.opts, Server: "https://10.0.0.10:6443", Token: testJoinToken,
		VerifyServer: func(_ context.Context, server, token string) error {
			tj.verified = append(tj.verified, server)
			if token != testJoinToken {
				return errors.New("the token reached the check changed")
			}
			return tj.verify
		}}
	return tj
}

func (tj *testJoin) run(t *testing.T) (*recorder, error) {
	t.Helper()
	plan, _, err := NewJoinPlan(context.Background(), tj.jo)
	require.NoError(t, err)
	rec := &recorder{}
	return rec, Run(context.Background(), plan, rec)
}

var joinSteps = []string{"preflight", "check server", "stage payload", "write K3s agent config", "containerd drop-in", "write environment file", "write unit", "start K3s", "containerd template", "wait for node"}

func TestJoinThenRerunChangesNothing(t *testing.T) {
	tj := newTestJoin(t)
	rec, err := tj.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"stage payload", "write K3s agent config", "write environment file", "write unit", "start K3s"}, rec.of(EventDone))
	assert.Equal(t, []string{"preflight", "check server", "containerd drop-in", "containerd template", "wait for node"}, rec.of(EventSkipped))
	assert.Equal(t, []string{"https://10.0.0.10:6443"}, tj.verified)
	assert.NotContains(t, tj.agent.units, UnitName, "an agent never touches k3s.service")
	assert.Contains(t, tj.agent.units, AgentUnitName)
	assert.Equal(t, []string{filepath.Join(tj.root, "/var/lib/rancher/k3s/agent/kubelet.kubeconfig")}, tj.cluster.kubeconf,
		"the node is read with its own kubelet credentials")

	cfg, mode := tj.read(t, K3sConfigPath)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Contains(t, cfg, "server: https://10.0.0.10:6443\n")
	assert.Contains(t, cfg, "token: "+testJoinToken+"\n")
	_, mode = tj.read(t, AgentEnvFilePath)
	assert.Equal(t, os.FileMode(0o600), mode)
	unitFile, _ := tj.read(t, AgentUnitPath)
	assert.Contains(t, unitFile, "ExecStart=/usr/local/bin/k3s agent\n")
	assert.NoFileExists(t, filepath.Join(tj.root, UnitPath))
	assert.NoFileExists(t, filepath.Join(tj.root, EnvFilePath))

	st, err := LoadState(filepath.Join(tj.root, StatePath), time.Now)
	require.NoError(t, err)
	s := st.Get()
	assert.True(t, s.Completed)
	assert.Equal(t, RoleAgent, s.Role)
	assert.Equal(t, &JoinRecord{Server: "https://10.0.0.10:6443"}, s.Join)
	raw, _ := tj.read(t, StatePath)
	assert.NotContains(t, raw, "0123456789abcdef", "the token is not in the state")
	for _, e := range rec.events {
		assert.NotContains(t, e.Message+e.Error, "0123456789abcdef", "the token is in no event (the log)")
	}

	// Again: nothing changes, systemd is only asked.
	calls := tj.k3s.Calls()
	rec, err = tj.run(t)
	require.NoError(t, err)
	assert.Equal(t, joinSteps, rec.of(EventSkipped))
	assert.Empty(t, rec.of(EventDone))
	assert.Equal(t, calls, tj.k3s.Calls())
}

func TestJoinStopsAtAServerWithAnotherCA(t *testing.T) {
	tj := newTestJoin(t)
	tj.verify = errors.New("the server at 10.0.0.10:6443 serves a CA whose sha256 is 99…")
	rec, err := tj.run(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check server")
	assert.Equal(t, []string{"check server"}, rec.of(EventFailed))
	assert.NoFileExists(t, filepath.Join(tj.root, K3sConfigPath), "the token is written nowhere")
	assert.NoFileExists(t, filepath.Join(tj.root, K3sBinaryPath), "nothing is staged")
	st, err := LoadState(filepath.Join(tj.root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, RoleAgent, st.Get().Role, "the role is recorded before anything is written")
}

func TestJoinDryRunRedactsTheToken(t *testing.T) {
	tj := newTestJoin(t)
	plan, _, err := NewJoinPlan(context.Background(), tj.jo)
	require.NoError(t, err)
	rep := DryRun(context.Background(), plan)
	var b strings.Builder
	require.NoError(t, WriteDryRun(&b, rep))
	assert.Contains(t, b.String(), "token: <redacted>")
	assert.NotContains(t, b.String(), "0123456789abcdef")
	assert.Contains(t, b.String(), "server: https://10.0.0.10:6443")
	assert.NoFileExists(t, filepath.Join(tj.root, StatePath))
}

func TestJoinAndInstallRefuseEachOthersHost(t *testing.T) {
	ti := newTestInstall(t, Config{})
	_, err := ti.run(t)
	require.NoError(t, err)
	jo := newTestJoin(t).jo
	jo.Options = ti.opts
	_, _, err = NewJoinPlan(context.Background(), jo)
	assert.ErrorIs(t, err, errServerHost)

	tj2 := newTestJoin(t)
	_, err = tj2.run(t)
	require.NoError(t, err)
	plan, _, err := NewInstallPlan(context.Background(), tj2.opts)
	require.NoError(t, err)
	err = Run(context.Background(), plan, &recorder{})
	assert.ErrorIs(t, err, errAgentHost)
	assert.NoFileExists(t, filepath.Join(tj2.root, UnitPath))
}

func TestJoinUninstallWaitsForTheNodeToLeaveAndLeavesTheHostAsItWas(t *testing.T) {
	tj := newTestJoin(t)
	// What the host had before: kept.
	for _, p := range []string{"/etc/hostname", "/var/lib/dpkg/status"} {
		require.NoError(t, os.MkdirAll(filepath.Join(tj.root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(tj.root, p), []byte("host"), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(tj.root, "run"), 0o755))
	host := newFakeHost(t, tj.root)
	// A process left in the agent unit's cgroup, run from elsewhere.
	host.addProc(t, 400, 1, "/usr/bin/runc-helper", "/system.slice/k3s-agent.service")
	before := tree(t, tj.root)
	_, err := tj.run(t)
	require.NoError(t, err)
	joined := tree(t, tj.root)

	plan, _, err := NewUninstallPlan(UninstallOptions{Options: tj.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	rep := DryRun(context.Background(), plan)
	require.NotEmpty(t, rep.Steps)
	assert.Equal(t, "node left the cluster", rep.Steps[0].Name)
	assert.Equal(t, "fail", rep.Steps[0].Would)
	assert.Contains(t, rep.Steps[0].Error, "`tpctl node delete edge-2`")

	// The Node is still there: uninstall stops first and changes nothing.
	rec := &recorder{}
	err = Run(context.Background(), plan, rec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node edge-2 is still in the cluster: on the server run `tpctl node delete edge-2`")
	assert.Equal(t, []string{"node left the cluster"}, rec.of(EventFailed))
	assert.Empty(t, tj.order, "K3s was not stopped")
	assert.Empty(t, host.killed)
	assert.Equal(t, joined, tree(t, tj.root))

	// Deleted on the server: uninstall runs through.
	tj.cluster.mu.Lock()
	delete(tj.cluster.nodes, "edge-2")
	tj.cluster.mu.Unlock()
	tj.order = append(tj.order, "node deleted on the server")
	plan, _, err = NewUninstallPlan(UninstallOptions{Options: tj.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	rec = &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))
	assert.Equal(t, []string{"undo start K3s", "kill leftover processes", "unmount", "delete network interfaces", "remove firewall rules", "remove files"}, rec.of(EventDone))
	assert.Equal(t, []string{"node left the cluster"}, rec.of(EventSkipped)[:1])
	assert.Equal(t, []string{"node deleted on the server", "stop k3s-agent.service"}, tj.order)
	assert.Contains(t, host.killed, 400, "what is left in k3s-agent.service's cgroup is K3s's")
	assert.Equal(t, before, tree(t, tj.root), "exactly what join created is gone")
	_, _, err = NewUninstallPlan(UninstallOptions{Options: tj.opts, Ops: host.ops(t)})
	assert.True(t, NotInstalled(err))
}

func TestJoinUninstallKeepNode(t *testing.T) {
	tj := newTestJoin(t)
	require.NoError(t, os.Mkdir(filepath.Join(tj.root, "run"), 0o755))
	host := newFakeHost(t, tj.root)
	_, err := tj.run(t)
	require.NoError(t, err)
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: tj.opts, Ops: host.ops(t), KeepNode: true})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	assert.True(t, tj.cluster.nodes["edge-2"])
	assert.Equal(t, []string{"stop k3s-agent.service"}, tj.order)
}

func TestAgentPreflightLeavesOutTheServerRows(t *testing.T) {
	names, err := ServerOnlyPortChecks()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"Port-6443-TCP", "Port-2379-2380-TCP", "Port-10257-TCP", "Port-10258-TCP", "Port-10259-TCP"}, names)
	rep := preflight.Report{Results: []preflight.Result{
		{Name: "Port-6443-TCP", Severity: preflight.Fail},
		{Name: "Port-10250-TCP", Severity: preflight.Pass},
		{Name: "Port-8472-UDP", Severity: preflight.Fail, Ignored: false},
		{Name: "Swap", Severity: preflight.Warn, Ignored: true},
	}, Summary: preflight.Summary{Pass: 1, Fail: 2, Warn: 1, Ignored: 1}}
	got := withoutResults(rep, names)
	assert.Equal(t, []string{"Port-10250-TCP", "Port-8472-UDP", "Swap"}, []string{got.Results[0].Name, got.Results[1].Name, got.Results[2].Name})
	assert.Equal(t, preflight.Summary{Pass: 1, Fail: 1, Warn: 1, Ignored: 1}, got.Summary)
}

func TestClusterNodes(t *testing.T) {
	mk := func(name string, labels map[string]string, ready corev1.ConditionStatus, ip string) corev1.Node {
		n := corev1.Node{}
		n.Name, n.Labels = name, labels
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "KubeletNotReady", Message: "cni"}}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
		return n
	}
	got := ClusterNodes([]corev1.Node{
		mk("b-agent", nil, corev1.ConditionFalse, "10.0.0.12"),
		mk("a-server", map[string]string{"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}, corev1.ConditionTrue, "10.0.0.10"),
	})
	assert.Equal(t, []ClusterNode{
		{Name: "a-server", Roles: []string{"control-plane", "master"}, Ready: true, InternalIP: "10.0.0.10"},
		{Name: "b-agent", Roles: []string{"agent"}, Reason: "KubeletNotReady: cni", InternalIP: "10.0.0.12"},
	}, got)
}

func TestWriteStatusListsTheNodes(t *testing.T) {
	var b strings.Builder
	require.NoError(t, WriteStatus(&b, StatusReport{Installed: true, Completed: true, Nodes: []ClusterNode{
		{Name: "a-server", Roles: []string{"control-plane", "master"}, Ready: true, InternalIP: "10.0.0.10"},
		{Name: "b-agent", Roles: []string{"agent"}, Reason: "KubeletNotReady: cni", InternalIP: "10.0.0.12"},
	}}))
	assert.Contains(t, b.String(), "nodes:      2\n")
	assert.Regexp(t, `\n  a-server\s+control-plane,master\s+Ready\s+10\.0\.0\.10\n`, b.String())
	assert.Regexp(t, `\n  b-agent\s+agent\s+NotReady \(KubeletNotReady: cni\)\s+10\.0\.0\.12\n`, b.String())

	b.Reset()
	require.NoError(t, WriteStatus(&b, StatusReport{Installed: true, Role: RoleAgent, NodesError: "forbidden"}))
	assert.Contains(t, b.String(), "role:       agent\n")
	assert.Contains(t, b.String(), "nodes:      unknown (forbidden)\n")
}
