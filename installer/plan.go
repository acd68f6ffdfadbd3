package installer

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/preflight"
	"github.com/tpctl/tpctl/systemd"
)

// Sources name K3s artifacts given on the command line instead of (or in
// addition to) the embedded payload.
type Sources struct {
	// K3sBinary is --k3s-binary; K3sSHA256 (--k3s-sha256) is its digest.
	K3sBinary string
	K3sSHA256 string
	// K3sImages are --k3s-images archives.
	K3sImages []string
}

// PreflightFunc runs the host checks for a configuration; failures of the
// checks named in ignore become warnings (on top of the user's own set).
type PreflightFunc func(ctx context.Context, c Config, ignore ...string) (preflight.Report, error)

// DefaultPreflight runs preflight.DefaultChecks against the host below root,
// with the install's own network, CNI and data dir, and the ignore set.
// lookupEnv is the environment tpctl runs in (the proxy variables), as given
// to ConfigFlags.Load.
func DefaultPreflight(root string, ignore preflight.IgnoreSet, lookupEnv func(string) (string, bool)) PreflightFunc {
	return func(ctx context.Context, c Config, more ...string) (preflight.Report, error) {
		o := PreflightOptions(c)
		o.ProxyConfigured = c.proxyConfigured(preflight.ProxyFromEnv(lookupEnv))
		checks, err := preflight.DefaultChecks(o)
		if err != nil {
			return preflight.Report{}, fmt.Errorf("preflight options: %w", err)
		}
		set := preflight.IgnoreSet{}
		for k := range ignore {
			set[k] = struct{}{}
		}
		for k := range preflight.ParseIgnoreSet(more...) {
			set[k] = struct{}{}
		}
		host := preflight.NewHost(root)
		host.LookupEnv = lookupEnv
		return preflight.Run(ctx, checks, host, set), nil
	}
}

// PreflightOptions are the preflight selection for an install configuration.
func PreflightOptions(c Config) preflight.Options {
	o := preflight.Options{CNI: c.CNI, ClusterCIDR: c.ClusterCIDR, ServiceCIDR: c.ServiceCIDR, DataDir: c.DataDir, NodeIP: c.NodeIP}
	if c.CNI == CNICilium {
		o.FlannelBackend = "none"
	}
	return o
}

// cniPending reports whether the node waits for a network plugin tpctl does
// not install (cni: cilium) and is not Ready yet. Without a kubeconfig or an
// answer from the API server it is pending: K3s has not started yet.
func cniPending(ctx context.Context, env *Env) bool {
	if env.Config.CNI != CNICilium {
		return false
	}
	kc := env.Kubeconfig()
	if _, err := os.Stat(kc); err != nil || env.Cluster == nil {
		return true
	}
	cl, err := env.Cluster(kc)
	if err != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := cl.Node(ctx, env.Config.NodeName)
	if err != nil {
		return true
	}
	ready, _ := NodeReady(n)
	return !ready
}

// CiliumNextSteps says what the user does after an install with cni: cilium
// whose node has no network plugin yet. charts: the operator and
// core-instance charts were asked for (and are deferred).
func CiliumNextSteps(c Config, charts bool) []string {
	key := "ipam.operator.clusterPoolIPv4PodCIDRList"
	if p, err := netip.ParsePrefix(c.ClusterCIDR); err == nil && p.Addr().Is6() {
		key = "ipam.operator.clusterPoolIPv6PodCIDRList"
	}
	out := []string{
		fmt.Sprintf("Next: install Cilium, e.g. with its CLI: KUBECONFIG=%s cilium install --set %s=%s (or its Helm chart with the same value); "+
			"then wait until `kubectl get node %s` says Ready.", KubeconfigPath, key, c.ClusterCIDR, c.NodeName),
	}
	if charts {
		out = append(out, "The operator and core-instance charts are deferred until then: run `tpctl install` again with the same configuration once the node is Ready; it installs them.")
	} else {
		out = append(out, "Then run `tpctl install` again with the same configuration to check the node (add the charts by leaving out --skip-charts).")
	}
	return out
}

// deferredChartsStep stands for the chart steps while the node has no
// network plugin: it changes nothing and says when they run.
type deferredChartsStep struct{ env *Env }

func (s *deferredChartsStep) Name() string { return "charts (deferred)" }

func (s *deferredChartsStep) Describe() string {
	return "the operator and core-instance charts need a Ready node; with cni: cilium it is Ready only once Cilium is installed"
}

func (s *deferredChartsStep) Done(context.Context) (bool, error) { return true, nil }

func (s *deferredChartsStep) Run(context.Context, Events) error { return nil }

// Note is shown with the skipped step.
func (s *deferredChartsStep) Note() string { return s.Deferred() }

// Deferred says why the step waits and what the user does next.
func (s *deferredChartsStep) Deferred() string {
	return strings.Join(CiliumNextSteps(s.env.Config, true), " ")
}

// RunSummary is what a finished install tells the user, part by part.
type RunSummary struct {
	// Node: the K3s version, its unit and the node's state.
	Node string
	// Access: the kubeconfig and the tools next to K3s.
	Access string
	// Registries names the configured registry mirrors ("" when none).
	Registries string
	// Charts: the releases and what to do next, the Cilium next steps,
	// or why the charts were left out.
	Charts []string
	// Log: where the log is and the commands that check or remove the node.
	Log string
}

// Lines is the summary in print order, one line each.
func (s RunSummary) Lines() []string {
	out := []string{s.Node, s.Access}
	if s.Registries != "" {
		out = append(out, s.Registries)
	}
	return append(append(out, s.Charts...), s.Log)
}

// Summary is what a finished install tells the user.
func Summary(env *Env) RunSummary {
	st := env.State.Get()
	sum := RunSummary{
		Node: fmt.Sprintf("K3s %s runs as %s; node %s is Ready.", orUnknown(st.K3s.Version), UnitName, env.Config.NodeName),
		Access: fmt.Sprintf("kubeconfig: %s (mode %s); kubectl, crictl and ctr are in %s.", KubeconfigPath, env.Config.WriteKubeconfigMode,
			filepath.Dir(K3sBinaryPath)),
		Log: "Log: " + LogPath + ". Check the node with `tpctl status`; remove it with `tpctl uninstall`.",
	}
	if env.cniPending {
		sum.Node = fmt.Sprintf("K3s %s runs as %s; node %s is registered but stays NotReady until Cilium is installed (cni: cilium: K3s runs without flannel).",
			orUnknown(st.K3s.Version), UnitName, env.Config.NodeName)
	}
	if r := env.Config.Registries; !r.empty() {
		sum.Registries = fmt.Sprintf("Registries (%s): %s.", RegistriesPath, describeRegistries(r))
	}
	switch {
	case env.cniPending:
		sum.Charts = CiliumNextSteps(env.Config, env.Charts != nil)
	case env.charts != nil:
		sum.Charts = env.charts.summary()
	case env.Charts == nil:
		sum.Charts = []string{"The operator and core-instance charts were left out (--skip-charts); run `tpctl install` without it to add them."}
	}
	return sum
}

// Options configure an install (or uninstall) plan. Every seam is a field.
type Options struct {
	// Root stands for "/" (a temporary directory in tests).
	Root   string
	Config Config
	// ProxyEnv names the environment variables the configuration's proxy
	// came from (ConfigFlags.ProxyEnv); empty when it came from the
	// configuration or there is none.
	ProxyEnv []string
	Sources  Sources
	// Bundle is the embedded payload (bundle.Open()).
	Bundle *bundle.Bundle
	// Preflight runs the host checks (DefaultPreflight).
	Preflight PreflightFunc
	// Systemd connects to the service manager when a step first needs it.
	Systemd func(ctx context.Context) (systemd.Manager, error)
	// Cluster opens the API of the node from its kubeconfig.
	Cluster func(kubeconfig string) (Cluster, error)
	// K3sVersion asks a K3s binary for its version (`k3s --version`).
	K3sVersion func(ctx context.Context, binary string) (string, error)
	// Charts are the operator and core-instance charts (nil: the plan
	// ends with the node). Of their steps, those named in BeforeStartSteps
	// (staging the operator image) follow "stage payload"; the others
	// follow the Ready node, and their undo steps open the uninstall plan.
	Charts *Charts
	// ChartAPI opens the API for the chart steps and for status
	// (NewChartAPI).
	ChartAPI func(kubeconfig string) (ChartAPI, error)
	// DataDirForce accepts a data dir that holds files tpctl did not
	// create (--data-dir-force).
	DataDirForce bool
	// Poll is how often waits look again (default 1s).
	Poll time.Duration
	Now  func() time.Time
	PID  int
	// afterWrite is HostFS.afterWrite (tests).
	afterWrite func(path string)
}

// Env is what the steps of one plan share.
type Env struct {
	Options
	FS    *HostFS
	State *StateStore
	// Facts are set by the preflight step.
	Facts Facts
	// reuseK3s: the plan drives a K3s that was on the host already.
	reuseK3s bool
	mgr      systemd.Manager
	// cniPending: cni is cilium and the node is not Ready yet (no network
	// plugin until Cilium is installed): the install waits only for the
	// node to register and defers the charts.
	cniPending bool
	// charts is set by Charts.Steps; keepData by the uninstall plan.
	charts   *chartsRun
	keepData bool
	// join is set by the join plan, and by the uninstall plan of a joined
	// host: K3s runs as an agent (agent.go).
	join *joinRun
	// k3sStarted is when this run last started or restarted K3s: the wait
	// for the node then wants a Ready condition reported since, not the
	// one the node had before (it stays in the API until the node
	// controller marks it Unknown, 40 s later).
	k3sStarted time.Time
}

// k3sStarting records that K3s is about to be (re)started.
func (e *Env) k3sStarting() { e.k3sStarted = e.Now() }

// Manager connects to systemd once and returns the connection.
func (e *Env) Manager(ctx context.Context) (systemd.Manager, error) {
	if e.mgr != nil {
		return e.mgr, nil
	}
	if e.Systemd == nil {
		return nil, fmt.Errorf("no systemd connection configured")
	}
	m, err := e.Systemd(ctx)
	if err != nil {
		return nil, err
	}
	e.mgr = m
	return m, nil
}

// Close closes the systemd connection, if one was opened.
func (e *Env) Close() {
	if c, ok := e.mgr.(interface{ Close() }); ok {
		c.Close()
	}
}

// Kubeconfig is the kubeconfig K3s writes, below the root.
func (e *Env) Kubeconfig() string { return e.FS.Path(KubeconfigPath) }

func (o *Options) defaults() {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
}

func newEnv(o Options) *Env {
	o.defaults()
	st := NewStateStore(filepath.Join(o.Root, StatePath), o.Now)
	return &Env{Options: o, State: st, FS: &HostFS{Root: o.Root, State: st, afterWrite: o.afterWrite}}
}

// BeforeStartSteps name the chart steps the install plan runs right after
// "stage payload", before K3s starts (K3s imports the operator image it
// finds in its images directory when it starts); the other chart steps
// follow the Ready node.
var BeforeStartSteps = []string{StageOperatorImageStep}

// NewInstallPlan builds the install plan: preflight → stage payload →
// (stage operator image) → K3s config → (registries, when configured or
// written before) → containerd drop-in (when the host needs it) →
// environment file → unit → start → containerd check (a template only for
// a K3s that imports no drop-in) → wait for the node →
// (import operator image → operator chart → core-instance chart → wait for
// the core instance, when chart steps are registered).
// The configuration must be valid (Config.Validate). Sources are resolved
// here, so a missing K3s binary is reported before anything is touched.
func NewInstallPlan(ctx context.Context, o Options) (*Plan, *Env, error) {
	env := newEnv(o)
	// The data dir is judged now, so that a dry run and a refused run say
	// so before anything is touched (Run checks again under the lock). An
	// unreadable state is Run's to report.
	if cur, err := LoadState(env.State.path, env.Now); err == nil {
		if err := checkDataDir(env.Root, env.Config, cur.Get(), env.DataDirForce); err != nil {
			return nil, nil, err
		}
	}
	stage, err := newStageStep(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	env.cniPending = cniPending(ctx, env)
	var beforeStart, afterReady []Step
	if env.Charts != nil {
		for _, s := range env.Charts.steps(env) {
			if slices.Contains(BeforeStartSteps, s.Name()) {
				beforeStart = append(beforeStart, s)
			} else {
				afterReady = append(afterReady, s)
			}
		}
		if env.cniPending && len(afterReady) > 0 {
			// Nothing schedules on a node without a network plugin: the
			// charts wait for a run after Cilium is installed.
			afterReady = []Step{&deferredChartsStep{env: env}}
		}
	}
	steps := append([]Step{&preflightStep{env: env}, stage}, beforeStart...)
	steps = append(steps, newK3sConfigStep(env))
	steps = append(steps, registriesSteps(env)...)
	steps = append(steps,
		newContainerdDropInStep(env),
		newEnvFileStep(env),
		newUnitStep(env),
		&startStep{env: env},
		&containerdStep{env: env},
		&waitStep{env: env},
	)
	steps = append(steps, afterReady...)
	plan := &Plan{Name: "install", Steps: steps, Root: env.Root, State: env.State, PID: env.PID, Now: env.Now}
	plan.Begin = func(context.Context) error {
		if err := RefuseAgentHost(env.State.Get()); err != nil {
			return err
		}
		return beginInstall(env)
	}
	plan.OnFinish = func(_ context.Context, ev Events) error {
		if err := recordCompleted(env); err != nil {
			return err
		}
		for _, line := range Summary(env).Lines() {
			logf(ev, false, "%s", line)
		}
		return nil
	}
	return plan, env, nil
}

// recordCompleted marks the run finished in the state with its (redacted)
// configuration and host facts, writing only when one of them changed, so
// a run that changes nothing leaves the state file alone.
func recordCompleted(env *Env) error {
	cur := env.State.Get()
	cfg := env.Config.Redacted()
	if cur.Completed && reflect.DeepEqual(cur.Config, cfg) && reflect.DeepEqual(cur.Facts, env.Facts) {
		return nil
	}
	return env.State.Update(func(s *State) {
		s.Completed = true
		s.Config = cfg
		s.Facts = env.Facts
	})
}
