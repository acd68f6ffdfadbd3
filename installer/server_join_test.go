package installer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const testServerToken = "K10" + "0000000000000000000000000000000000000000000000000000000000000000" + "::server:s3cr3tpassphrase"

func TestServerJoinDropInHoldsOnlyServerKeys(t *testing.T) {
	b, err := RenderServerJoinDropIn("https://10.0.0.10:6443", testServerToken)
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, yaml.Unmarshal(b, &m))
	assert.Equal(t, map[string]string{"server": "https://10.0.0.10:6443", "token": testServerToken}, m)
	for k := range m {
		assert.Contains(t, ServerJoinConfigKeys(), k)
	}
	red := string(redactServerJoinDropIn(b))
	assert.NotContains(t, red, "s3cr3t")
	assert.Contains(t, red, "token: <redacted>")
	_, err = RenderServerJoinDropIn("", testServerToken)
	assert.Error(t, err)
	assert.Equal(t, "cluster-init: true\n", string(RenderClusterInitDropIn()))
}

func TestCheckServerToken(t *testing.T) {
	assert.NoError(t, CheckServerToken(testServerToken))
	assert.NoError(t, CheckServerToken("justapassphrase"), "K3s takes the passphrase alone")
	assert.ErrorContains(t, CheckServerToken("K10abc::node:pw"), `the "node" token joins agents only`)
	assert.ErrorContains(t, CheckServerToken("K10abc::abcdef.0123456789abcdef"), "bootstrap token joins agents only")
	assert.ErrorContains(t, CheckServerToken("abcdef.0123456789abcdef"), "bootstrap token joins agents only")
}

func TestExternalDatastoreAndEtcdData(t *testing.T) {
	root := t.TempDir()
	ds, err := ExternalDatastore(root)
	require.NoError(t, err)
	assert.Empty(t, ds, "no config: no external datastore")
	p := filepath.Join(root, K3sConfigPath)
	require.NoError(t, os.MkdirAll(filepath.Join(p+".d"), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("node-name: a\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(p+".d", "10-user.yaml"), []byte("datastore-endpoint: postgres://db/k3s\n"), 0o600))
	ds, err = ExternalDatastore(root)
	require.NoError(t, err)
	assert.Equal(t, "postgres://db/k3s", ds)

	assert.False(t, EtcdInitialized(root, "/var/lib/rancher/k3s"))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "/var/lib/rancher/k3s/server/db/etcd/member/wal"), 0o700))
	assert.True(t, EtcdInitialized(root, "/var/lib/rancher/k3s"))
}

func etcdNode(name string, member bool, heartbeat time.Time, ready corev1.ConditionStatus) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}}
	if member {
		n.Labels[EtcdRoleLabel] = "true"
		n.Annotations[EtcdMemberAnnotation] = name + "-1234abcd"
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.NewTime(heartbeat)}}
	return n
}

func TestEtcdMembersCountAndEvenWarning(t *testing.T) {
	now := time.Now()
	nodes := []corev1.Node{*etcdNode("a", true, now, corev1.ConditionTrue), *etcdNode("b", false, now, corev1.ConditionTrue),
		*etcdNode("c", true, now, corev1.ConditionTrue)}
	assert.Equal(t, 2, CountEtcdMembers(nodes))
	assert.Empty(t, EvenMembersWarning(1))
	assert.Empty(t, EvenMembersWarning(3))
	assert.Contains(t, EvenMembersWarning(2), "2 etcd members")
	assert.Contains(t, EvenMembersWarning(4), "no more failed servers than 3")
}

type convertWorld struct {
	root      string
	backups   int
	restarts  int
	node      *corev1.Node
	backupErr error
	log       []string
}

// installedRoot is a root with a completed install state, as the first
// server has.
func installedRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	st := NewStateStore(filepath.Join(root, StatePath), time.Now)
	require.NoError(t, os.MkdirAll(filepath.Join(root, StateDir), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "/etc/rancher/k3s"), 0o755))
	require.NoError(t, st.Update(func(s *State) { s.Completed = true }))
	return root
}

func (w *convertWorld) opts() ConvertOptions {
	return ConvertOptions{Root: w.root, DataDir: "/var/lib/rancher/k3s", NodeName: "a",
		Backup: func(context.Context) (string, error) {
			w.backups++
			return "/var/lib/tpctl/backups/b.tar.gz", w.backupErr
		},
		Restart: func(context.Context) error {
			w.restarts++
			// K3s migrates and comes back as an etcd member.
			w.node = etcdNode("a", true, time.Now().Add(time.Second), corev1.ConditionTrue)
			return nil
		},
		Node: func(context.Context) (*corev1.Node, error) {
			if w.node == nil {
				return nil, errors.New("not found")
			}
			return w.node, nil
		},
		Logf: func(f string, a ...any) { w.log = append(w.log, f) },
	}
}

func TestConvertToEmbeddedEtcd(t *testing.T) {
	w := &convertWorld{root: installedRoot(t), node: etcdNode("a", false, time.Now().Add(-time.Minute), corev1.ConditionTrue)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	converted, err := ConvertToEmbeddedEtcd(ctx, w.opts())
	require.NoError(t, err)
	assert.True(t, converted)
	assert.Equal(t, 1, w.backups, "a backup first")
	assert.Equal(t, 1, w.restarts)
	b, err := os.ReadFile(filepath.Join(w.root, HAConfigDropInPath))
	require.NoError(t, err)
	assert.Equal(t, "cluster-init: true\n", string(b))
	st, err := os.Stat(filepath.Join(w.root, HAConfigDropInPath))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	// Recorded in the install state, so uninstall removes it (and the
	// directory it made) and a later install does not run cluster-init.
	state, err := LoadState(filepath.Join(w.root, StatePath), time.Now)
	require.NoError(t, err)
	var recorded []string
	for _, c := range state.Get().Created {
		assert.False(t, c.Pending, "%s settled", c.Path)
		recorded = append(recorded, c.Path)
	}
	assert.Equal(t, []string{filepath.Dir(HAConfigDropInPath), HAConfigDropInPath}, recorded)
	plan, err := removalPlan(state.Get(), Config{DataDir: "/var/lib/rancher/k3s"}, false)
	require.NoError(t, err, "the recorded paths pass the state's allow-list")
	assert.NotEmpty(t, plan)

	// Converted already (etcd has data): nothing again.
	require.NoError(t, os.MkdirAll(filepath.Join(w.root, "/var/lib/rancher/k3s/server/db/etcd/member/wal"), 0o700))
	converted, err = ConvertToEmbeddedEtcd(ctx, w.opts())
	require.NoError(t, err)
	assert.False(t, converted)
	assert.Equal(t, 1, w.backups)
	assert.Equal(t, 1, w.restarts)
}

func TestConvertRefusesExternalDatastoreAndStopsOnAFailedBackup(t *testing.T) {
	w := &convertWorld{root: installedRoot(t)}
	p := filepath.Join(w.root, K3sConfigPath)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("datastore-endpoint: mysql://u@tcp(db)/k3s\n"), 0o600))
	_, err := ConvertToEmbeddedEtcd(context.Background(), w.opts())
	assert.ErrorIs(t, err, ErrExternalDatastore)
	assert.Zero(t, w.backups+w.restarts)

	w = &convertWorld{root: installedRoot(t), backupErr: errors.New("disk full")}
	_, err = ConvertToEmbeddedEtcd(context.Background(), w.opts())
	assert.ErrorContains(t, err, "nothing changed")
	assert.Zero(t, w.restarts)
	assert.NoFileExists(t, filepath.Join(w.root, HAConfigDropInPath))
}

// The conversion waits for a Ready reported after the restart, as an
// etcd member: a stale Ready does not pass.
func TestConvertWaitsForTheMember(t *testing.T) {
	w := &convertWorld{root: installedRoot(t)}
	o := w.opts()
	o.Restart = func(context.Context) error { w.restarts++; return nil }
	w.node = etcdNode("a", true, time.Now().Add(-time.Hour), corev1.ConditionTrue)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := ConvertToEmbeddedEtcd(ctx, o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Ready since the restart")
	assert.Contains(t, err.Error(), "backup: /var/lib/tpctl/backups/b.tar.gz")
}

// testServerJoin is a join --role server against the fakes of the
// install tests; the node is an etcd member once K3s has started.
func newTestServerJoin(t *testing.T) *testJoin {
	t.Helper()
	tj := newTestJoin(t)
	tj.jo.Token = testServerToken
	tj.jo.VerifyServer = func(_ context.Context, server, token string) error {
		tj.verified = append(tj.verified, server)
		if token != testServerToken {
			return errors.New("the token reached the check changed")
		}
		return tj.verify
	}
	srv := &memberCluster{readyCluster{nodeName: "edge-2"}}
	tj.opts.Cluster = srv.open
	tj.jo.Options.Cluster = srv.open
	return tj
}

// memberCluster is the install tests' ready API where the node is an
// etcd member.
type memberCluster struct{ readyCluster }

func (c *memberCluster) open(string) (Cluster, error) { return c, nil }

func (c *memberCluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.readyCluster.Node(ctx, name)
	if err != nil {
		return nil, err
	}
	n.Labels = map[string]string{EtcdRoleLabel: "true"}
	n.Annotations = map[string]string{EtcdMemberAnnotation: name + "-1234abcd"}
	return n, nil
}

func TestServerJoinPlan(t *testing.T) {
	tj := newTestServerJoin(t)
	plan, _, err := NewServerJoinPlan(context.Background(), tj.jo)
	require.NoError(t, err)
	var names []string
	for _, s := range plan.Steps {
		names = append(names, s.Name())
	}
	assert.Equal(t, "preflight", names[0])
	assert.Equal(t, "check server", names[1])
	assert.Equal(t, "wait for etcd membership", names[len(names)-1])
	assert.Less(t, indexOf(names, "write K3s config"), indexOf(names, "write K3s HA config"))
	assert.Less(t, indexOf(names, "write K3s HA config"), indexOf(names, "start K3s"))
	for _, n := range names {
		assert.NotContains(t, strings.ToLower(n), "chart", "the cluster has the charts")
		assert.NotContains(t, BeforeStartSteps, n)
	}

	rep := DryRun(context.Background(), plan)
	var b strings.Builder
	require.NoError(t, WriteDryRun(&b, rep))
	assert.NotContains(t, b.String(), "s3cr3t")
	assert.Contains(t, b.String(), "token: <redacted>")

	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, Run(ctx, plan, rec))
	assert.Contains(t, tj.agent.units, UnitName, "a server runs k3s.service")
	assert.NotContains(t, tj.agent.units, AgentUnitName)
	assert.FileExists(t, filepath.Join(tj.root, UnitPath))
	assert.NoFileExists(t, filepath.Join(tj.root, AgentUnitPath))
	cfg, mode := tj.read(t, HAConfigDropInPath)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Contains(t, cfg, "server: https://10.0.0.10:6443\n")
	st, err := LoadState(filepath.Join(tj.root, StatePath), time.Now)
	require.NoError(t, err)
	assert.Equal(t, RoleServer, st.Get().Role)
	assert.True(t, st.Get().Completed)
	raw, _ := tj.read(t, StatePath)
	assert.NotContains(t, raw, "s3cr3t", "the token is not in the state")
	for _, e := range rec.events {
		assert.NotContains(t, e.Message+e.Error, "s3cr3t", "the token is in no event")
	}

	// Uninstall refuses the member, changing nothing: the main server's
	// plan would undo the cluster's releases and leave its etcd member.
	before := tree(t, tj.root)
	_, _, err = NewUninstallPlan(UninstallOptions{Options: tj.jo.Options, Ops: newFakeHost(t, tj.root).ops(t)})
	require.ErrorIs(t, err, ErrServerMember)
	assert.Contains(t, err.Error(), "nothing was changed")
	assert.Equal(t, before, tree(t, tj.root))
	// So does install: its plan would install the cluster's charts again.
	iplan, _, err := NewInstallPlan(context.Background(), tj.jo.Options)
	require.NoError(t, err)
	require.ErrorIs(t, Run(context.Background(), iplan, &recorder{}), errMemberHost)
	assert.Equal(t, before, tree(t, tj.root))

	// Agent and bootstrap tokens are refused before anything.
	jo := tj.jo
	jo.Token = testJoinToken
	_, _, err = NewServerJoinPlan(context.Background(), jo)
	assert.ErrorContains(t, err, "joins agents only")
}

func TestServerJoinRefusesAnInstalledServer(t *testing.T) {
	ti := newTestInstall(t, Config{})
	_, err := ti.run(t)
	require.NoError(t, err)
	jo := newTestServerJoin(t).jo
	jo.Options = ti.opts
	_, _, err = NewServerJoinPlan(context.Background(), jo)
	assert.ErrorIs(t, err, errServerHost)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
