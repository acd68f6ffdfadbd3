package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// High availability: more K3s servers on K3s's embedded etcd. The first
// server, installed on SQLite, converts to embedded etcd (K3s's
// cluster-init, which migrates the SQLite datastore) after a backup; every
// other server joins it with the server token (`tpctl join --role
// server`). The HA keys go into a drop-in of K3s's config
// (HAConfigDropInPath), so config.yaml stays what install renders.

// ServerJoinConfigKeys are the K3s server keys of high availability that
// tpctl writes besides K3sConfigKeys: cluster-init on the first server
// (converted to embedded etcd), server and token on a joining server.
func ServerJoinConfigKeys() []string {
	return []string{"cluster-init", "server", "token", "token-file"}
}

const (
	// RoleServer is the role of a host `tpctl join --role server` made a
	// K3s server of another server's cluster.
	RoleServer = "server"
	// HAConfigDropInPath holds the HA keys (K3s merges config.yaml.d/*.yaml
	// after config.yaml).
	HAConfigDropInPath = "/etc/rancher/k3s/config.yaml.d/50-tpctl-ha.yaml"
	// EtcdRoleLabel is the label K3s puts on a server node that is an etcd
	// member; EtcdMemberAnnotation names its member.
	EtcdRoleLabel        = "node-role.kubernetes.io/etcd"
	EtcdMemberAnnotation = "etcd.k3s.cattle.io/node-name"
)

// RenderServerJoinDropIn is a joining server's HA drop-in: the server to
// join and the server token. It holds the token: 0600, redacted in a dry
// run.
func RenderServerJoinDropIn(server, token string) ([]byte, error) {
	if server == "" || token == "" {
		return nil, errors.New("a joining server needs the server URL and the server token")
	}
	return yaml.Marshal(map[string]string{"server": server, "token": token})
}

// RenderClusterInitDropIn is the first server's HA drop-in.
func RenderClusterInitDropIn() []byte { return []byte("cluster-init: true\n") }

var tokenLine = regexp.MustCompile(`(?m)^token: .*$`)

func redactServerJoinDropIn(b []byte) []byte {
	return tokenLine.ReplaceAll(b, []byte("token: <redacted>"))
}

// CheckServerToken refuses a token a server cannot join with: K3s's
// agent-token ("…::node:…") and bootstrap tokens ("…::<id>.<secret>")
// join agents only.
func CheckServerToken(token string) error {
	creds := token
	if i := strings.LastIndex(token, "::"); i >= 0 {
		creds = token[i+2:]
	}
	if regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`).MatchString(creds) {
		return errors.New("a bootstrap token joins agents only: create a server token with `tpctl token create --role server` on the server")
	}
	if user, _, ok := strings.Cut(creds, ":"); ok && user != "server" {
		return fmt.Errorf("the %q token joins agents only: create a server token with `tpctl token create --role server` on the server", user)
	}
	return nil
}

// ExternalDatastore returns the datastore-endpoint a K3s config (and its
// drop-ins) names, "" for none. tpctl never writes one: a server on an
// external datastore is not converted to embedded etcd.
func ExternalDatastore(root string) (string, error) {
	files := []string{filepath.Join(root, K3sConfigPath)}
	drop, _ := filepath.Glob(filepath.Join(root, K3sConfigPath+".d", "*.yaml"))
	files = append(files, drop...)
	var found string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", f, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return "", fmt.Errorf("parse %s: %w", f, err)
		}
		if v, ok := m["datastore-endpoint"]; ok && fmt.Sprint(v) != "" {
			found = fmt.Sprint(v)
		}
	}
	return found, nil
}

// EtcdInitialized tells whether K3s's embedded etcd has data under the
// data dir (<data-dir>/server/db/etcd/member/wal, K3s's IsInitialized).
func EtcdInitialized(root, dataDir string) bool {
	st, err := os.Stat(filepath.Join(root, dataDir, "server", "db", "etcd", "member", "wal"))
	return err == nil && st.IsDir()
}

// EtcdMember reports whether a node is an etcd member, as K3s marks it.
func EtcdMember(n *corev1.Node) bool {
	return n != nil && n.Labels[EtcdRoleLabel] == "true" && n.Annotations[EtcdMemberAnnotation] != ""
}

// EvenMembersWarning is the warning for an even number of etcd members:
// it tolerates no more failures than one member fewer.
func EvenMembersWarning(members int) string {
	if members < 2 || members%2 != 0 {
		return ""
	}
	return fmt.Sprintf("the cluster has %d etcd members: an even count tolerates no more failed servers than %d (quorum %d); add one more server",
		members, members-1, members/2+1)
}

// NewServerJoinPlan builds `tpctl join --role server`: the install plan
// of a K3s server without the charts (the cluster has them), with the
// server check after preflight, the HA drop-in (server, token) after the
// K3s config, and a wait for this node's etcd membership after the node
// wait.
func NewServerJoinPlan(ctx context.Context, o JoinOptions) (*Plan, *Env, error) {
	if o.Server == "" {
		return nil, nil, errors.New("--server is required")
	}
	if o.Token == "" {
		return nil, nil, errors.New("--token is required")
	}
	if err := CheckServerToken(o.Token); err != nil {
		return nil, nil, err
	}
	if o.VerifyServer == nil {
		return nil, nil, errors.New("no server check configured")
	}
	if cur, err := LoadState(filepath.Join(o.Root, StatePath), time.Now); err == nil {
		if s := cur.Get(); s.Role != RoleServer && (s.Completed || len(s.Created) > 0) {
			if s.Role == RoleAgent {
				return nil, nil, errAgentHost
			}
			return nil, nil, errServerHost
		}
	}
	plan, env, err := NewInstallPlan(ctx, o.Options)
	if err != nil {
		return nil, nil, err
	}
	// Not env.join: that makes the plan's units the agent's.
	jr := &joinRun{server: o.Server, token: o.Token, verify: o.VerifyServer}
	// The charts are the cluster's already: their steps (those before K3s
	// starts, and everything after the node wait) are left out.
	var steps []Step
	for _, s := range plan.Steps {
		if slices.Contains(BeforeStartSteps, s.Name()) {
			continue
		}
		steps = append(steps, s)
		switch s.Name() {
		case (&preflightStep{}).Name():
			steps = append(steps, &serverCheckStep{env: &Env{join: jr}})
		case newK3sConfigStep(env).Name():
			steps = append(steps, &fileStep{env: env, name: "write K3s HA config", path: HAConfigDropInPath, perm: 0o600,
				render: func() ([]byte, error) { return RenderServerJoinDropIn(jr.server, jr.token) },
				redact: redactServerJoinDropIn})
		case (&waitStep{}).Name():
			steps = append(steps, &etcdMemberStep{env: env})
		}
		if s.Name() == (&waitStep{}).Name() {
			break
		}
	}
	plan.Name, plan.Steps = "join", steps
	begin := plan.Begin
	plan.Begin = func(ctx context.Context) error {
		if s := env.State.Get(); s.Role != RoleServer && (s.Completed || len(s.Created) > 0) {
			return errServerHost
		}
		if err := begin(ctx); err != nil {
			return err
		}
		return recordJoin(env, RoleServer, jr.server)
	}
	plan.OnFinish = func(_ context.Context, ev Events) error {
		if err := recordCompleted(env); err != nil {
			return err
		}
		logf(ev, false, "K3s %s runs as %s; node %s joined %s as a server on embedded etcd and is Ready.",
			orUnknown(env.State.Get().K3s.Version), UnitName, env.Config.NodeName, redactURL(jr.server))
		return nil
	}
	return plan, env, nil
}

// etcdMemberStep waits until this node is an etcd member (K3s labels it
// once its member votes) and warns on an even member count.
type etcdMemberStep struct{ env *Env }

func (s *etcdMemberStep) Name() string { return "wait for etcd membership" }

func (s *etcdMemberStep) Describe() string {
	return "wait until node " + s.env.Config.NodeName + " is a voting etcd member (label " + EtcdRoleLabel + ")"
}

func (s *etcdMemberStep) check(ctx context.Context) (bool, string, error) {
	if s.env.Cluster == nil {
		return false, "", errors.New("no Kubernetes client configured")
	}
	cl, err := s.env.Cluster(s.env.Kubeconfig())
	if err != nil {
		return false, "", err
	}
	n, err := cl.Node(ctx, s.env.Config.NodeName)
	if err != nil {
		return false, "node " + s.env.Config.NodeName + " (" + err.Error() + ")", nil
	}
	if !EtcdMember(n) {
		return false, "node " + s.env.Config.NodeName + " to become an etcd member", nil
	}
	return true, "", nil
}

func (s *etcdMemberStep) Done(ctx context.Context) (bool, error) {
	ok, _, err := s.check(ctx)
	return ok, err
}

func (s *etcdMemberStep) Run(ctx context.Context, ev Events) error {
	var last string
	for {
		ok, waiting, err := s.check(ctx)
		if err != nil {
			return err
		}
		if ok {
			summarize(ev, "node %s is an etcd member", s.env.Config.NodeName)
			return nil
		}
		last = waiting
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", last, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// ConvertOptions are what the conversion of the first server needs.
type ConvertOptions struct {
	Root, DataDir, NodeName string
	// Backup takes `tpctl backup` of the server and returns its path.
	Backup func(ctx context.Context) (string, error)
	// Restart restarts k3s.service; Node reads this server's Node.
	Restart func(ctx context.Context) error
	Node    func(ctx context.Context) (*corev1.Node, error)
	Logf    func(format string, args ...any)
	Now     func() time.Time
}

// ErrExternalDatastore: the server runs on an external datastore.
var ErrExternalDatastore = errors.New("this K3s server uses an external datastore (datastore-endpoint): more servers join that datastore, not embedded etcd; tpctl does not convert it")

// ConvertToEmbeddedEtcd makes this server's K3s run on embedded etcd
// before a second server joins: refused on an external datastore; nothing
// to do when etcd already has data; else a backup, the cluster-init
// drop-in, a restart (K3s migrates SQLite into etcd) and a wait until the
// node is Ready again and an etcd member. It returns whether it converted.
func ConvertToEmbeddedEtcd(ctx context.Context, o ConvertOptions) (bool, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if ds, err := ExternalDatastore(o.Root); err != nil {
		return false, err
	} else if ds != "" {
		return false, ErrExternalDatastore
	}
	if EtcdInitialized(o.Root, o.DataDir) {
		return false, nil
	}
	path, err := o.Backup(ctx)
	if err != nil {
		return false, fmt.Errorf("backup before the conversion to embedded etcd (nothing changed): %w", err)
	}
	o.Logf("backup written to %s", path)
	if err := writeClusterInitDropIn(o.Root, o.Now); err != nil {
		return false, err
	}
	o.Logf("wrote %s (cluster-init: true); restarting K3s, which moves the SQLite datastore into embedded etcd", HAConfigDropInPath)
	since := o.Now()
	if err := o.Restart(ctx); err != nil {
		return false, fmt.Errorf("restart K3s with cluster-init (restore with `tpctl backup restore %s`): %w", path, err)
	}
	var last string
	for {
		n, err := o.Node(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case !EtcdMember(n):
			last = "node " + o.NodeName + " is not an etcd member yet"
		default:
			ready, reason := NodeReady(n)
			fresh, when := ReportedSince(n, since)
			if ready && fresh {
				o.Logf("node %s is Ready on embedded etcd", o.NodeName)
				return true, nil
			}
			last = "node " + o.NodeName + " Ready since the restart (ready: " + reason + ", last reported " + when + ")"
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("waiting for %s after the conversion (backup: %s): %w", last, path, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// CountEtcdMembers counts the nodes K3s marks as etcd members.
func CountEtcdMembers(nodes []corev1.Node) int {
	return len(slices.DeleteFunc(slices.Clone(nodes), func(n corev1.Node) bool { return !EtcdMember(&n) }))
}

// writeClusterInitDropIn writes the cluster-init drop-in, recorded in the
// install state first (under the install lock) so that uninstall removes it
// and an install after an uninstall does not start K3s with cluster-init.
func writeClusterInitDropIn(root string, now func() time.Time) error {
	lock, err := AcquireLock(filepath.Join(root, LockPath), os.Getpid())
	if err != nil {
		return err
	}
	defer func() { _ = lock.Unlock() }()
	st, err := LoadState(filepath.Join(root, StatePath), now)
	if err != nil {
		return err
	}
	if !st.Exists() {
		return fmt.Errorf("%w (no %s): the conversion records its drop-in there", errNotInstalled, StatePath)
	}
	dropIn := filepath.Join(root, HAConfigDropInPath)
	if b, err := os.ReadFile(dropIn); err == nil && bytes.Equal(b, RenderClusterInitDropIn()) {
		return nil
	}
	dir := filepath.Dir(HAConfigDropInPath)
	if _, err := os.Lstat(filepath.Join(root, dir)); errors.Is(err, os.ErrNotExist) {
		if err := st.Record(Created{Path: dir, Kind: KindDir, Step: "convert to embedded etcd", Pending: true}); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			return fmt.Errorf("make %s: %w", dir, err)
		}
		if err := st.Record(Created{Path: dir, Kind: KindDir, Step: "convert to embedded etcd"}); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(dropIn); errors.Is(err, os.ErrNotExist) {
		if err := st.Record(Created{Path: HAConfigDropInPath, Kind: KindFile, Step: "convert to embedded etcd", Pending: true}); err != nil {
			return err
		}
	}
	if err := os.WriteFile(dropIn, RenderClusterInitDropIn(), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", dropIn, err)
	}
	return st.Record(Created{Path: HAConfigDropInPath, Kind: KindFile, Step: "convert to embedded etcd"})
}
