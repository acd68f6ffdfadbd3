package installer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/systemd"
)

// A host `tpctl join` makes a K3s agent runs k3s-agent.service, as K3s's own
// installer names it for agents, with its own environment file; config.yaml,
// the binary, the data dir and the install state are where install keeps
// them. The state records Role=agent (before anything is written), so that
// uninstall removes what join made and install refuses the host.

// Agent role, unit and files.
const (
	RoleAgent        = "agent"
	AgentUnitName    = "k3s-agent.service"
	AgentUnitPath    = "/etc/systemd/system/k3s-agent.service"
	AgentEnvFilePath = "/etc/systemd/system/k3s-agent.service.env"
)

// JoinRecord is what the state keeps of a join: the server, never the
// token.
type JoinRecord struct {
	Server string `json:"server"`
}

// joinRun is the join of this plan (the token only in memory).
type joinRun struct {
	server string
	token  string
	verify func(ctx context.Context, server, token string) error
}

func (e *Env) unitName() string {
	if e.join != nil {
		return AgentUnitName
	}
	return UnitName
}

// KubeletKubeconfig is the kubeconfig K3s's agent writes for its kubelet
// (pkg/agent/config: <data-dir>/agent/kubelet.kubeconfig): the node's own
// credentials, which the Node authorizer lets read its own Node (not delete
// it: the server's tpctl node delete does that).
func KubeletKubeconfig(c Config) string {
	return filepath.Join(c.DataDir, "agent", "kubelet.kubeconfig")
}

// k3sAgentConfig holds exactly the K3s `agent` keys tpctl writes.
type k3sAgentConfig struct {
	Server     string   `json:"server"`
	Token      string   `json:"token"`
	NodeName   string   `json:"node-name"`
	NodeIP     string   `json:"node-ip,omitempty"`
	DataDir    string   `json:"data-dir"`
	KubeletArg []string `json:"kubelet-arg,omitempty"`
}

// AgentConfigKeys lists every key RenderAgentConfig can write (all of them
// flags of `k3s agent`, pkg/cli/cmds/agent.go).
func AgentConfigKeys() []string {
	return []string{"data-dir", "kubelet-arg", "node-ip", "node-name", "server", "token"}
}

const joinWrittenBy = "# Written by tpctl join; `tpctl uninstall` removes it. Run `tpctl join`\n# again instead of editing this file.\n"

// RenderAgentConfig renders /etc/rancher/k3s/config.yaml of an agent. It
// holds the token: the file is 0600 and its preview is redacted.
func RenderAgentConfig(c Config, f Facts, server, token string) ([]byte, error) {
	k := k3sAgentConfig{
		Server:     server,
		Token:      token,
		NodeName:   c.NodeName,
		NodeIP:     c.NodeIP,
		DataDir:    c.DataDir,
		KubeletArg: slices.Clone(c.KubeletArgs),
	}
	for _, a := range f.KubeletArgs {
		if name, _, _ := strings.Cut(a, "="); !hasKubeletArg(k.KubeletArg, name) {
			k.KubeletArg = append(k.KubeletArg, a)
		}
	}
	if f.CgroupV1 && !hasKubeletArg(k.KubeletArg, "fail-cgroupv1") {
		k.KubeletArg = append(k.KubeletArg, "fail-cgroupv1=false")
	}
	body, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", K3sConfigPath, err)
	}
	return append([]byte(joinWrittenBy), body...), nil
}

// redactAgentConfig hides the token of a rendered agent config.
func redactAgentConfig(b []byte) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "token:") {
			nl := ""
			if strings.HasSuffix(l, "\n") {
				nl = "\n"
			}
			lines[i] = "token: <redacted>" + nl
		}
	}
	return []byte(strings.Join(lines, ""))
}

// AgentUnitOptions are the options of k3s-agent.service, shaped like the
// agent unit of K3s's install.sh: the server's, but Type=exec and
// `k3s agent`.
func AgentUnitOptions() []*unit.UnitOption {
	var out []*unit.UnitOption
	for _, o := range UnitOptions() {
		c := *o
		switch {
		case c.Section == "Unit" && c.Name == "Description":
			c.Value = "Lightweight Kubernetes (K3s agent), joined by tpctl"
		case c.Section == "Service" && c.Name == "Type":
			c.Value = "exec"
		case c.Section == "Service" && c.Name == "EnvironmentFile":
			c.Value = "-" + AgentEnvFilePath
		case c.Section == "Service" && c.Name == "ExecStart":
			c.Value = K3sBinaryPath + " agent"
		}
		out = append(out, &c)
	}
	return out
}

// RenderAgentUnit renders /etc/systemd/system/k3s-agent.service.
func RenderAgentUnit() ([]byte, error) { return systemd.Render(AgentUnitOptions()) }

// JoinOptions configure a join plan.
type JoinOptions struct {
	Options
	// Server is the server's URL (https://ADDR:6443); Token is K3s's
	// secure token (K10<ca sha256>::<id>.<secret>). The token goes only
	// into the 0600 config.yaml, never into the state, log or output.
	Server string
	Token  string
	// VerifyServer checks, before the token is written anywhere, that the
	// server answers and that its CA is the one the token names (K3s's
	// /cacerts check). It must not send the token's secret.
	VerifyServer func(ctx context.Context, server, token string) error
}

// ErrServerHost: join on the host tpctl installed a server on.
var errServerHost = errors.New("this host runs the K3s server `tpctl install` set up; join another host, or `tpctl uninstall` first")

// ErrAgentHost: install on a host tpctl joined as an agent.
var errAgentHost = errors.New("this host was joined to a cluster as an agent by `tpctl join`; `tpctl uninstall` it first to install a server here")

// NewJoinPlan builds the join plan: preflight (the agent's rows) → check
// the server (reachable, CA as the token says) → stage payload → K3s agent
// config → containerd drop-in (when the host needs it) → environment file →
// k3s-agent.service → start → containerd check → wait for this node to be Ready in the
// cluster. The configuration must be valid (Config.Validate).
func NewJoinPlan(ctx context.Context, o JoinOptions) (*Plan, *Env, error) {
	if _, err := url.Parse(o.Server); err != nil || o.Server == "" {
		return nil, nil, fmt.Errorf("--server %q is not a URL", o.Server)
	}
	if o.Token == "" {
		return nil, nil, errors.New("--token is required")
	}
	if o.VerifyServer == nil {
		return nil, nil, errors.New("no server check configured")
	}
	env := newEnv(o.Options)
	env.join = &joinRun{server: o.Server, token: o.Token, verify: o.VerifyServer}
	if cur, err := LoadState(env.State.path, env.Now); err == nil {
		if serverState(cur.Get()) {
			return nil, nil, errServerHost
		}
		if err := checkDataDir(env.Root, env.Config, cur.Get(), env.DataDirForce); err != nil {
			return nil, nil, err
		}
	}
	stage, err := newStageStep(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	steps := []Step{
		&preflightStep{env: env},
		&serverCheckStep{env: env},
		stage,
		&fileStep{env: env, name: "write K3s agent config", path: K3sConfigPath, perm: 0o600,
			render: func() ([]byte, error) {
				return RenderAgentConfig(env.Config, env.Facts, env.join.server, env.join.token)
			},
			redact: redactAgentConfig},
		newContainerdDropInStep(env),
		&fileStep{env: env, name: "write environment file", path: AgentEnvFilePath, perm: 0o600,
			render: func() ([]byte, error) { return RenderEnv(env.Config) }, redact: RedactEnv},
		&fileStep{env: env, name: "write unit", path: AgentUnitPath, perm: 0o644, render: RenderAgentUnit, reload: true},
		&startStep{env: env},
		&containerdStep{env: env},
		&agentWaitStep{env: env},
	}
	plan := &Plan{Name: "join", Steps: steps, Root: env.Root, State: env.State, PID: env.PID, Now: env.Now}
	plan.Begin = func(context.Context) error {
		// The role first: a join killed at any later point is uninstalled
		// as the agent it was becoming.
		if serverState(env.State.Get()) {
			return errServerHost
		}
		if err := beginInstall(env); err != nil {
			return err
		}
		return recordJoin(env, RoleAgent, env.join.server)
	}
	plan.OnFinish = func(_ context.Context, ev Events) error {
		if err := recordCompleted(env); err != nil {
			return err
		}
		logf(ev, false, "K3s %s runs as %s; node %s joined %s and is Ready.", orUnknown(env.State.Get().K3s.Version), AgentUnitName, env.Config.NodeName, redactURL(env.join.server))
		logf(ev, false, "Log: %s. Remove the node with `tpctl uninstall` on this host.", LogPath)
		return nil
	}
	return plan, env, nil
}

// serverState reports whether a state is of a server install (anything
// recorded, and not the agent role).
func serverState(s State) bool {
	return s.Role != RoleAgent && (s.Completed || len(s.Created) > 0)
}

// AgentState reports whether the state of this host is a join's.
func AgentState(s State) bool { return s.Role == RoleAgent }

// RefuseAgentHost is install's check: a host joined as an agent is not
// installed over.
func RefuseAgentHost(s State) error {
	if AgentState(s) && (s.Completed || len(s.Created) > 0) {
		return errAgentHost
	}
	if s.Role == RoleServer && (s.Completed || len(s.Created) > 0) {
		return errMemberHost
	}
	return nil
}

// errMemberHost: install on a host `tpctl join --role server` made a
// control-plane member. Install's plan would install the cluster's charts
// again from it.
var errMemberHost = errors.New("this host was joined to a cluster as a server by `tpctl join --role server`; rerun that join to repair it, an install here would change the cluster's releases")

// recordJoin records the host's role and its server (without credentials),
// once: join's first act, so that a join killed at any later point is
// uninstalled as what it was becoming.
func recordJoin(env *Env, role, server string) error {
	rec := &JoinRecord{Server: redactURL(server)}
	if st := env.State.Get(); st.Role == role && reflect.DeepEqual(st.Join, rec) {
		return nil
	}
	return env.State.Update(func(s *State) { s.Role, s.Join = role, rec })
}

// serverCheckStep is join's gate on the server: it changes nothing and is
// "done" when the server answers with the CA the token names.
type serverCheckStep struct {
	env *Env
	err error
}

func (s *serverCheckStep) Name() string { return "check server" }

func (s *serverCheckStep) Describe() string {
	return "connect to " + redactURL(s.env.join.server) + " and check that its CA (/cacerts) has the sha256 the token names, before the token is written or sent anywhere"
}

func (s *serverCheckStep) Done(ctx context.Context) (bool, error) {
	s.err = s.env.join.verify(ctx, s.env.join.server, s.env.join.token)
	return s.err == nil, nil
}

// Blocks is the failure a run would stop on (after Done).
func (s *serverCheckStep) Blocks() error { return s.err }

func (s *serverCheckStep) Run(ctx context.Context, ev Events) error {
	if err := s.env.join.verify(ctx, s.env.join.server, s.env.join.token); err != nil {
		return err
	}
	summarize(ev, "%s answers with the CA the token names", redactURL(s.env.join.server))
	return nil
}

// agentWaitStep waits until K3s's agent has written its kubelet kubeconfig
// and this node is Ready in the cluster, read with the node's own
// credentials.
type agentWaitStep struct {
	env *Env
	cl  Cluster
}

func (s *agentWaitStep) Name() string { return "wait for node" }

func (s *agentWaitStep) Describe() string {
	return "wait for " + KubeletKubeconfig(s.env.Config) + " (the node's own credentials) and node " + s.env.Config.NodeName + " to be Ready in the cluster"
}

func (s *agentWaitStep) check(ctx context.Context) (string, error) {
	kc := s.env.FS.Path(KubeletKubeconfig(s.env.Config))
	if _, err := os.Stat(kc); err != nil {
		return "K3s's agent to write " + KubeletKubeconfig(s.env.Config), nil
	}
	cl, err := s.env.cluster(&s.cl, kc)
	if err != nil {
		return "", err
	}
	n, err := cl.Node(ctx, s.env.Config.NodeName)
	if err != nil {
		return "node " + s.env.Config.NodeName + " to register (" + err.Error() + ")", nil
	}
	if ok, why := NodeReady(n); !ok {
		return "node " + s.env.Config.NodeName + " to be Ready (" + why + ")", nil
	}
	return s.env.freshReady(n), nil
}

func (s *agentWaitStep) Done(ctx context.Context) (bool, error) {
	missing, err := s.check(ctx)
	return err == nil && missing == "", err
}

func (s *agentWaitStep) Run(ctx context.Context, ev Events) error {
	if err := waitFor(ctx, s.env, ev, s.check); err != nil {
		return err
	}
	summarize(ev, "node %s Ready", s.env.Config.NodeName)
	return nil
}

// NodeDeleter deletes a Node object.
type NodeDeleter interface {
	DeleteNode(ctx context.Context, name string) error
}

// nodeGoneStep is an agent uninstall's first step, a gate that changes
// nothing: this node's Node object must be gone from the cluster before
// K3s stops. The node's own credentials (its kubelet kubeconfig, through
// the agent's local load balancer while K3s runs) may read their Node but
// not delete it: the Node authorizer grants nodes no delete on nodes. So
// the Node is deleted on the server (`tpctl node delete NAME`), whose K3s
// then removes the node's password Secret; until then the uninstall stops
// here with that instruction, unless --keep-node.
type nodeGoneStep struct {
	env  *Env
	last string
}

func (s *nodeGoneStep) Name() string { return "node left the cluster" }

func (s *nodeGoneStep) Describe() string {
	return "check (with " + KubeletKubeconfig(s.env.Config) + ", while K3s runs) that node " + s.env.Config.NodeName +
		" is no longer in the cluster: delete it on the server first with `tpctl node delete " + s.env.Config.NodeName + "`"
}

// gone looks once; why says what is in the way.
func (s *nodeGoneStep) gone(ctx context.Context) (bool, string, error) {
	kc := s.env.FS.Path(KubeletKubeconfig(s.env.Config))
	if _, err := os.Stat(kc); err != nil {
		return true, "", nil // never joined: nothing in the cluster
	}
	if s.env.Cluster == nil {
		return false, "", errors.New("no Kubernetes client configured")
	}
	cl, err := s.env.Cluster(kc)
	if err != nil {
		return false, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cl.Node(ctx, s.env.Config.NodeName)
	switch {
	case apierrors.IsNotFound(err):
		return true, "", nil
	case err != nil:
		return false, fmt.Sprintf("the cluster cannot be asked whether node %s is still there (%v); %s must run and reach the server",
			s.env.Config.NodeName, err, AgentUnitName), nil
	}
	return false, fmt.Sprintf("node %s is still in the cluster", s.env.Config.NodeName), nil
}

func (s *nodeGoneStep) Done(ctx context.Context) (bool, error) {
	ok, why, err := s.gone(ctx)
	s.last = why
	return ok, err
}

// Blocks is the failure a run would stop on (after Done).
func (s *nodeGoneStep) Blocks() error {
	if s.last == "" {
		return nil
	}
	return s.refusal(s.last)
}

func (s *nodeGoneStep) refusal(why string) error {
	n := s.env.Config.NodeName
	return fmt.Errorf("%s: on the server run `tpctl node delete %s` (K3s's server then removes its node-password Secret), "+
		"then run uninstall here again; nothing was changed. --keep-node uninstalls without it (then delete the node on the server later)", why, n)
}

func (s *nodeGoneStep) Run(ctx context.Context, ev Events) error {
	ok, why, err := s.gone(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return s.refusal(why)
	}
	summarize(ev, "node %s is not in the cluster", s.env.Config.NodeName)
	return nil
}

// DeleteNode deletes a Node object.
func (k *kubeCluster) DeleteNode(ctx context.Context, name string) error {
	return k.cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
}
