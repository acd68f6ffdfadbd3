package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tpctl/tpctl/systemd"
)

// ErrNotInstalled: there is no install state on this host.
var errNotInstalled = errors.New("tpctl has installed nothing on this host")

// NotInstalled reports whether err says there is nothing to uninstall.
func NotInstalled(err error) bool { return errors.Is(err, errNotInstalled) }

// UninstallOptions configure an uninstall plan.
type UninstallOptions struct {
	Options
	// KeepData leaves K3s's data dir (cluster state, images) in place.
	KeepData bool
	// KeepNode leaves a joined host's Node object in the cluster (when the
	// server is gone for good).
	KeepNode bool
	Ops      HostOps
}

// MissingStateError: there is no install state, but the K3s unit carries
// tpctl's mark, so an install was made here and its record is lost.
type MissingStateError struct{ State, Unit string }

func (e *MissingStateError) Error() string {
	return fmt.Sprintf("there is no install state at %s, but %s was written by tpctl: this host was installed and its record is lost, "+
		"so tpctl cannot tell what the install created and removes nothing. If a copy of the state exists (%s.corrupt-* or a backup), "+
		"put it back as %s and run `tpctl uninstall` again; otherwise remove K3s by hand: `systemctl disable --now %s`, then remove %s, %s, "+
		"/usr/local/bin/k3s (with its kubectl, crictl and ctr links), /etc/rancher/k3s and K3s's data dir, and run `systemctl daemon-reload`",
		e.State, e.Unit, e.State, e.State, UnitName, e.Unit, EnvFilePath)
}

// NewUninstallPlan builds the uninstall plan from the install state: the
// undo of every install step that has one (charts, then the K3s unit), then
// leftover processes, mounts, network interfaces and firewall rules, then
// exactly the files and directories the install recorded (and K3s's own
// below them), and last systemd forgets the unit.
//
// It refuses a state it cannot trust (*StateError), a recorded configuration
// that is not valid, and a missing state beside a tpctl unit
// (*MissingStateError); without either there is nothing to uninstall
// (NotInstalled).
func NewUninstallPlan(o UninstallOptions) (*Plan, *Env, error) {
	env := newEnv(o.Options)
	if err := env.State.Load(); err != nil {
		return nil, nil, err
	}
	if !env.State.Exists() {
		for _, u := range []string{UnitPath, AgentUnitPath} {
			if unit, err := os.ReadFile(env.FS.Path(u)); err == nil && systemd.IsManaged(unit) {
				return nil, nil, &MissingStateError{State: StatePath, Unit: u}
			}
		}
		return nil, nil, fmt.Errorf("%w (no %s)", errNotInstalled, StatePath)
	}
	if err := refuseServerMember(env.State.Get()); err != nil {
		return nil, nil, err
	}
	cfg, err := uninstallConfig(env.State.Get())
	if err != nil {
		return nil, nil, err
	}
	env.Config = cfg
	if _, err := removalPlan(env.State.Get(), cfg, o.KeepData); err != nil {
		return nil, nil, err
	}
	ops := o.Ops
	if ops.ProcDir == "" {
		ops.ProcDir = filepath.Join(env.Root, "proc")
	}
	env.keepData = o.KeepData
	var undo []Step
	if AgentState(env.State.Get()) {
		// A joined host: no charts here; its Node must be gone from the
		// cluster before K3s stops.
		env.join = &joinRun{}
		if st := env.State.Get(); st.Join != nil {
			env.join.server = st.Join.Server
		}
		env.Charts = nil
		if !o.KeepNode {
			undo = append(undo, &nodeGoneStep{env: env})
		}
	}
	install := []Step{&startStep{env: env}}
	if env.Charts != nil {
		install = append(install, env.Charts.steps(env)...)
	}
	for i := len(install) - 1; i >= 0; i-- {
		if u, ok := install[i].(Undoer); ok {
			undo = append(undo, &undoStep{step: install[i], undo: u})
		}
	}
	steps := append(undo,
		&killStep{env: env, ops: ops},
		&unmountStep{env: env, ops: ops},
		&linksStep{env: env, ops: ops},
		&firewallStep{env: env, ops: ops},
		&removeStep{env: env, ops: ops, keepData: o.KeepData},
	)
	plan := &Plan{Name: "uninstall", Steps: steps, Root: env.Root, State: env.State, PID: env.PID, Now: env.Now}
	plan.OnFinish = func(ctx context.Context, ev Events) error {
		if err := forgetUnit(ctx, env); err != nil {
			return err
		}
		if o.KeepData {
			// What stays is still the install's: a later install and
			// uninstall remove it.
			logf(ev, false, "K3s is removed; its data dir %s is kept (a later `tpctl uninstall` removes it).", env.Config.DataDir)
			return env.State.Update(func(s *State) {
				*s = State{Version: StateVersion, Steps: map[string]StepRecord{}, Created: s.Created, Config: s.Config}
			})
		}
		mounts, err := ops.mountPoints()
		if err != nil {
			return err
		}
		rm := newRemover(env.Root, mounts, false)
		for _, p := range []string{StateDir, filepath.Dir(LogPath)} {
			if err := rm.tree(p); err != nil {
				return err
			}
		}
		for _, k := range rm.kept {
			logf(ev, true, "kept %s: %s", k.Path, k.Why)
		}
		logf(ev, false, "K3s and everything tpctl installed are removed.")
		return nil
	}
	return plan, env, nil
}

// uninstallConfig is the recorded configuration, checked again: uninstall
// kills, unmounts and removes by it.
func uninstallConfig(s State) (Config, error) {
	c, err := stateConfig(s).Complete(Hostname)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		return Config{}, fmt.Errorf("the configuration recorded in %s is not valid, so uninstall does not act on it (nothing was changed): %w. "+
			"Repair its \"config\" in the file, or remove K3s by hand", StatePath, err)
	}
	return c, nil
}

// Undoer is an install step that can take its change back.
type Undoer interface {
	// Undone reports whether the change is already gone.
	Undone(ctx context.Context) (bool, error)
	Undo(ctx context.Context, ev Events) error
}

// UndoDescriber is an Undoer that says in words what its undo does (the
// uninstall dry run shows it).
type UndoDescriber interface{ UndoDescribe() string }

type undoStep struct {
	step Step
	undo Undoer
}

func (u *undoStep) Name() string                             { return "undo " + u.step.Name() }
func (u *undoStep) Done(ctx context.Context) (bool, error)   { return u.undo.Undone(ctx) }
func (u *undoStep) Run(ctx context.Context, ev Events) error { return u.undo.Undo(ctx, ev) }

// Describe says what the undo does, when the step can tell.
func (u *undoStep) Describe() string {
	if d, ok := u.undo.(UndoDescriber); ok {
		return d.UndoDescribe()
	}
	return ""
}

// Note forwards the undone step's remark.
func (u *undoStep) Note() string {
	if n, ok := u.undo.(Noter); ok {
		return n.Note()
	}
	return ""
}

// Undone: the unit is unknown to systemd, or stopped and disabled.
func (s *startStep) Undone(ctx context.Context) (bool, error) {
	mgr, err := s.env.Manager(ctx)
	if err != nil {
		return false, err
	}
	st, err := mgr.State(ctx, s.env.unitName())
	if err != nil {
		return false, err
	}
	return !st.Installed() || (!st.Active() && !st.Enabled() && st.ActiveState != "activating"), nil
}

// killStep kills what K3s leaves running after its unit stopped: the
// containerd shims and the pods below them.
type killStep struct {
	env *Env
	ops HostOps
}

func (s *killStep) Name() string { return "kill leftover processes" }

func (s *killStep) Describe() string {
	return "kill processes run from " + filepath.Join(s.env.Config.DataDir, "data") + "/ (where K3s unpacks its binaries) or left in " + s.env.unitName() + "'s cgroup (containerd shims), and their children (pods)"
}

func (s *killStep) find() ([]int, error) {
	procs, err := readProcs(s.ops.ProcDir)
	if err != nil {
		return nil, err
	}
	return leftoversOf(procs, s.env.FS.Path(s.env.Config.DataDir), s.ops.Self, "/system.slice/"+s.env.unitName()), nil
}

func (s *killStep) Done(context.Context) (bool, error) {
	pids, err := s.find()
	return err == nil && len(pids) == 0, err
}

func (s *killStep) Run(ctx context.Context, ev Events) error {
	pids, err := s.find()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := s.ops.Kill(pid); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill pid %d: %w", pid, err)
		}
	}
	for {
		left, err := s.find()
		if err != nil {
			return err
		}
		if len(left) == 0 {
			summarize(ev, "killed %d processes", len(pids))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v are still running: %w", left, ctx.Err())
		case <-time.After(s.env.Poll):
		}
	}
}

// k3sMountPrefixes are where K3s, its kubelet and CNI mount things: strictly
// below their directories, and K3s's own network namespaces. Of the data dir
// only agent/ (containerd's snapshots and K3s's agent) is K3s's to unmount:
// the data dir may be a file system of its own, or hold the user's mounts.
func k3sMountPrefixes(c Config) []string {
	d := []string{"/run/k3s/", filepath.Join(c.DataDir, "agent") + "/", "/var/lib/kubelet/", "/run/netns/cni-"}
	if c.CNI == CNICilium {
		d = append(d, "/run/cilium/")
	}
	return d
}

// unmountStep detaches everything mounted below K3s's directories.
type unmountStep struct {
	env *Env
	ops HostOps
}

func (s *unmountStep) Name() string { return "unmount" }

func (s *unmountStep) Describe() string {
	return "unmount what is mounted at " + strings.Join(k3sMountPrefixes(s.env.Config), "…, ") + "…"
}

func (s *unmountStep) find() ([]string, error) {
	points, err := s.ops.mountPoints()
	if err != nil {
		return nil, err
	}
	var prefixes []string
	for _, d := range k3sMountPrefixes(s.env.Config) {
		// filepath.Join would drop the trailing "/" that means "below".
		prefixes = append(prefixes, strings.TrimSuffix(s.env.Root, "/")+d)
	}
	return mountsUnder(points, prefixes), nil
}

func (s *unmountStep) Done(context.Context) (bool, error) {
	m, err := s.find()
	return err == nil && len(m) == 0, err
}

func (s *unmountStep) Run(_ context.Context, ev Events) error {
	m, err := s.find()
	if err != nil {
		return err
	}
	for _, p := range m {
		if err := s.ops.Unmount(p); err != nil {
			return fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	summarize(ev, "%d mounts detached", len(m))
	return nil
}

// forgetUnit ends the uninstall: systemd forgets a failed k3s.service
// (reset-failed) and the removed unit file (daemon-reload).
func forgetUnit(ctx context.Context, env *Env) error {
	mgr, err := env.Manager(ctx)
	if err != nil {
		return err
	}
	if err := mgr.ResetFailed(ctx, env.unitName()); err != nil {
		return err
	}
	return mgr.Reload(ctx)
}

// ErrServerMember refuses to uninstall a host `tpctl join --role server`
// made an embedded-etcd member. Its uninstall would run the main server's
// plan: undo the operator and core-instance releases for the whole cluster,
// and stop K3s without removing its etcd member or its Node, leaving the
// other servers a member that never answers (a quorum at risk).
var ErrServerMember = errors.New("this host is a control-plane member joined with `tpctl join --role server`; uninstalling a server member is not supported yet")

// refuseServerMember refuses a joined server member, naming what to do.
func refuseServerMember(s State) error {
	if s.Role != RoleServer {
		return nil
	}
	server := "the cluster"
	if s.Join != nil && s.Join.Server != "" {
		server = s.Join.Server
	}
	return fmt.Errorf("%w: nothing was changed. Its removal must take it out of etcd and the cluster first (K3s: delete its Node from another server, which removes its etcd member), which tpctl does not do yet; the charts stay installed for %s", ErrServerMember, server)
}
