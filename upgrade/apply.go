package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/version"
	"github.com/tpctl/tpctl/systemd"
)

// KeptDir is where an upgrade keeps the files it replaces.
const KeptDir = installer.StateDir + "/upgrade"

// keptFiles are the host files an upgrade may replace: the K3s binary,
// every file the install renders from the configuration (a newer tpctl may
// render them differently), the containerd drop-in, and the containerd
// templates derived from a K3s's generated config (both layouts: an
// upgrade may remove one and write the other, or remove the template of a
// host installed before the drop-in; the old K3s needs its own back).
func keptFiles(c installer.Config) []string {
	dir := installer.ContainerdDir(c)
	return []string{installer.K3sBinaryPath, installer.K3sConfigPath, installer.RegistriesPath, installer.UnitPath, installer.EnvFilePath,
		path.Join(dir, installer.ContainerdTemplateName("3")), path.Join(dir, installer.ContainerdTemplateName("2")),
		installer.ContainerdDropInPath(c)}
}

// Snapshotter takes the pre-upgrade snapshot and returns the archive's
// path (the backup package's Create).
type Snapshotter interface {
	Snapshot(ctx context.Context) (string, error)
}

// Releaser rolls a Helm release back to a revision.
type Releaser interface {
	Rollback(ctx context.Context, namespace, name string, revision int) error
}

// Options are the seams of Apply and Rollback.
type Options struct {
	// Root stands for "/".
	Root string
	// Plan is Compute's plan for Installed (refused plans are not applied).
	Plan      Plan
	Installed Installed
	Target    Target
	// Install reruns the install plan with the recorded configuration and
	// this tpctl's payload: it stages the new K3s and images, restarts
	// k3s.service once (on a host without CAP_SYS_RESOURCE too: the
	// containerd drop-in needs nothing from the new K3s; only a K3s whose
	// generated config imports no drop-in has its template derived again,
	// with a second restart), waits for the node and installs or upgrades
	// the CRDs and both releases (the operator rolls to its new image).
	Install func(ctx context.Context) error
	// Instances returns the CoreInstances that are not Ready (name: why).
	Instances func(ctx context.Context) ([]string, error)
	Systemd   func(ctx context.Context) (systemd.Manager, error)
	Cluster   func(kubeconfig string) (Cluster, error)
	Releases  Releaser
	// Snapshot is nil when no snapshot can be taken; Apply then says so
	// and goes on only with AllowNoSnapshot.
	Snapshot        Snapshotter
	AllowNoSnapshot bool
	// Timeout bounds the apply (and, again, the rollback) once K3s is
	// restarted: past it the upgrade rolls back.
	Timeout time.Duration
	Poll    time.Duration
	Now     func() time.Time
	PID     int
	// Log reports progress.
	Log func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll == 0 {
		o.Poll = 2 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
}

func (o *Options) host(p string) string { return filepath.Join(o.Root, p) }

// RolledBackError is an upgrade that failed and was rolled back: the host
// runs the previous version again.
type RolledBackError struct{ Cause error }

func (e *RolledBackError) Error() string {
	return fmt.Sprintf("the upgrade failed and was rolled back (the previous K3s, configuration and releases run again): %v", e.Cause)
}
func (e *RolledBackError) Unwrap() error { return e.Cause }

// state loads the install state afresh (the install plan writes it too).
func (o *Options) state() (*installer.StateStore, error) {
	return installer.LoadState(o.host(installer.StatePath), o.Now)
}

// update changes the state on disk under the install lock.
func (o *Options) update(f func(*installer.State)) error {
	lock, err := installer.AcquireLock(o.Root+installer.LockPath, o.PID)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	st, err := o.state()
	if err != nil {
		return err
	}
	return st.Update(f)
}

func (o *Options) record() (*installer.UpgradeRecord, error) {
	st, err := o.state()
	if err != nil {
		return nil, err
	}
	return st.Get().Upgrade, nil
}

func (o *Options) setPhase(phase string, f func(*installer.UpgradeRecord)) error {
	return o.update(func(s *installer.State) {
		if s.Upgrade == nil {
			return
		}
		s.Upgrade.Phase = phase
		if f != nil {
			f(s.Upgrade)
		}
	})
}

// Apply upgrades the host, or finishes an upgrade (or its rollback) that
// was interrupted. Every phase is recorded before its changes, so a run
// killed at any point is completed by the next Apply or Rollback. A
// failure once files were replaced rolls back and returns a
// *RolledBackError.
func Apply(ctx context.Context, o Options) error {
	o.defaults()
	if o.Plan.Refused() {
		return fmt.Errorf("upgrade refused: %s", o.Plan.Refusals[0].Reason)
	}
	rec, err := o.record()
	if err != nil {
		return err
	}
	if rec != nil && rec.Phase == installer.UpgradeRollingBack {
		o.Log("finishing the rollback of an interrupted upgrade")
		return o.rollback(ctx, errors.New(rec.Error))
	}
	if rec == nil || rec.Phase == installer.UpgradeDone || rec.Phase == installer.UpgradeRolledBack {
		if o.Plan.NothingToDo() {
			return nil
		}
		if o.Snapshot == nil && !o.AllowNoSnapshot {
			return errors.New("no snapshot can be taken before the upgrade (backups are not available in this tpctl); refusing: pass --no-snapshot to upgrade without one")
		}
		if err := o.begin(); err != nil {
			return err
		}
	} else {
		o.Log("resuming the interrupted upgrade (phase %s)", rec.Phase)
	}
	if rec, err = o.record(); err != nil {
		return err
	}
	if rec.Phase == installer.UpgradePrepare {
		if err := o.keepAside(rec); err != nil {
			return fmt.Errorf("keep the previous files aside: %w (nothing was replaced; run `tpctl upgrade` again)", err)
		}
		if err := o.setPhase(installer.UpgradeSaved, nil); err != nil {
			return err
		}
		rec.Phase = installer.UpgradeSaved
	}
	if rec.Phase == installer.UpgradeSaved {
		snap := rec.Snapshot
		switch {
		case snap != "":
		case o.Snapshot != nil:
			o.Log("taking a snapshot")
			if snap, err = o.Snapshot.Snapshot(ctx); err != nil {
				return fmt.Errorf("snapshot before the upgrade: %w (nothing was replaced; run `tpctl upgrade` again)", err)
			}
			o.Log("snapshot: %s", snap)
		default:
			o.Log("no snapshot taken (--no-snapshot)")
		}
		if err := o.setPhase(installer.UpgradeApplying, func(r *installer.UpgradeRecord) { r.Snapshot = snap }); err != nil {
			return err
		}
	}
	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
	err = o.apply(tctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted by the user, not timed out: leave the record for
			// the next run to resume or roll back.
			return fmt.Errorf("upgrade interrupted: %w; `tpctl upgrade` resumes it, `tpctl upgrade --rollback` undoes it", err)
		}
		o.Log("upgrade failed: %v; rolling back", err)
		if rerr := o.rollback(ctx, err); rerr != nil {
			return fmt.Errorf("upgrade failed: %w; the rollback failed too: %v (`tpctl upgrade --rollback` tries again)", err, rerr)
		}
		return &RolledBackError{Cause: err}
	}
	return o.update(func(s *installer.State) {
		if s.Upgrade != nil {
			s.Upgrade.Phase = installer.UpgradeDone
			s.TpctlVersion = s.Upgrade.ToTpctl
		}
	})
}

// begin records the intent: versions, the files about to be replaced with
// their digests, and the releases' revisions.
func (o *Options) begin() error {
	in := o.Installed
	rec := &installer.UpgradeRecord{
		Phase:     installer.UpgradePrepare,
		StartedAt: o.Now().UTC(),
		FromTpctl: in.State.TpctlVersion,
		ToTpctl:   o.Target.Tpctl,
		FromK3s:   in.State.K3s,
		ToK3s:     o.Target.K3s,
	}
	for _, p := range keptFiles(in.State.Config) {
		k := installer.KeptFile{Path: p, Saved: path.Join(KeptDir, path.Base(p))}
		fi, err := os.Stat(o.host(p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			k.Absent = true
		case err != nil:
			return err
		default:
			sum, err := fileSHA256(o.host(p))
			if err != nil {
				return err
			}
			k.SHA256, k.Mode = sum, fi.Mode().Perm()
		}
		rec.Kept = append(rec.Kept, k)
	}
	for _, name := range []string{installer.OperatorRelease, installer.InstanceRelease} {
		if r, ok := in.Releases[name]; ok {
			rec.Releases = append(rec.Releases, installer.ReleaseRevision{Namespace: r.Namespace, Name: r.Name, Revision: r.Revision, Chart: r.Chart})
		}
	}
	o.Log("recording the upgrade in %s", installer.StatePath)
	return o.update(func(s *installer.State) { s.Upgrade = rec })
}

// checkRecord refuses a record that would make a rollback write outside
// the files an upgrade replaces.
func checkRecord(rec *installer.UpgradeRecord, c installer.Config) error {
	kept := keptFiles(c)
	for _, k := range rec.Kept {
		if !slices.Contains(kept, k.Path) || k.Saved != path.Join(KeptDir, path.Base(k.Path)) {
			return fmt.Errorf("the upgrade record names %s → %s, not a file an upgrade keeps; tpctl does not guess", k.Path, k.Saved)
		}
	}
	return nil
}

// checkRecord checks rec against the recorded configuration's files.
func (o *Options) checkRecord(rec *installer.UpgradeRecord) error {
	st, err := o.state()
	if err != nil {
		return err
	}
	return checkRecord(rec, st.Get().Config)
}

// keepAside copies each file to KeptDir, unless its copy is there already.
func (o *Options) keepAside(rec *installer.UpgradeRecord) error {
	if err := o.checkRecord(rec); err != nil {
		return err
	}
	for _, k := range rec.Kept {
		if k.Absent {
			continue
		}
		if sum, err := fileSHA256(o.host(k.Saved)); err == nil && sum == k.SHA256 {
			continue
		}
		sum, err := fileSHA256(o.host(k.Path))
		if err != nil {
			return err
		}
		if sum != k.SHA256 {
			return fmt.Errorf("%s changed since the upgrade was recorded (sha256 %s, recorded %s)", k.Path, sum, k.SHA256)
		}
		if err := o.recordCreated(KeptDir, installer.KindDir); err != nil {
			return err
		}
		if err := o.recordCreated(k.Saved, installer.KindFile); err != nil {
			return err
		}
		if err := copyFile(o.host(k.Path), o.host(k.Saved), 0o600, k.SHA256); err != nil {
			return err
		}
		o.Log("kept %s as %s", k.Path, k.Saved)
	}
	return nil
}

// recordCreated records a path the upgrade creates, so that uninstall
// removes it.
func (o *Options) recordCreated(p, kind string) error {
	return o.update(func(s *installer.State) {
		for _, c := range s.Created {
			if c.Path == p {
				return
			}
		}
		s.Created = append(s.Created, installer.Created{Path: p, Kind: kind, Step: "upgrade"})
	})
}

// apply runs the install plan, waits for the node on the new K3s and for
// every CoreInstance.
func (o *Options) apply(ctx context.Context) error {
	if err := o.Install(ctx); err != nil {
		return err
	}
	if err := o.waitNewK3s(ctx); err != nil {
		return err
	}
	if !o.Plan.Charts || o.Instances == nil {
		return nil
	}
	return o.waitInstances(ctx)
}

// waitNewK3s waits, when the upgrade replaced the K3s binary, for the node
// to be Ready on the new K3s with a kubelet report made since the upgrade
// began. The install plan's own wait reads the node's Ready condition, and
// the one the node had before K3s was restarted stays in the API until the
// node controller marks it Unknown (40 s): a new K3s whose kubelet never
// reports would pass it.
func (o *Options) waitNewK3s(ctx context.Context) error {
	rec, err := o.record()
	if err != nil || rec == nil {
		return err
	}
	st, err := o.state()
	if err != nil {
		return err
	}
	now := st.Get().K3s
	if now.Version == rec.FromK3s.Version && now.SHA256 == rec.FromK3s.SHA256 {
		return nil
	}
	cl, err := o.cluster()
	if err != nil {
		return err
	}
	// The API keeps heartbeats to the second.
	return o.waitNode(ctx, cl, now.Version, rec.StartedAt.Truncate(time.Second))
}

func (o *Options) waitInstances(ctx context.Context) error {
	o.Log("waiting for every CoreInstance to be Ready")
	for {
		bad, err := o.Instances(ctx)
		if err == nil && len(bad) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("not Ready: %s", strings.Join(bad, "; "))
			}
			return fmt.Errorf("CoreInstances: %w (%v)", err, ctx.Err())
		case <-time.After(o.Poll):
		}
	}
}

// Rollback restores what the last upgrade replaced: on demand after it
// finished, or to complete an interrupted upgrade or rollback.
func Rollback(ctx context.Context, o Options) error {
	o.defaults()
	rec, err := o.record()
	if err != nil {
		return err
	}
	if rec == nil || rec.Phase == installer.UpgradeRolledBack {
		return errors.New("nothing to roll back: no upgrade is recorded in " + installer.StatePath)
	}
	return o.rollback(ctx, errors.New("rollback requested"))
}

func (o *Options) rollback(ctx context.Context, cause error) error {
	rec, err := o.record()
	if err != nil {
		return err
	}
	if rec == nil {
		return errors.New("no upgrade recorded")
	}
	if err := o.checkRecord(rec); err != nil {
		return err
	}
	if rec.Phase == installer.UpgradePrepare {
		// Nothing was replaced yet: forget the intent.
		return o.update(func(s *installer.State) {
			s.Upgrade.Phase = installer.UpgradeRolledBack
			s.Upgrade.Error = cause.Error()
		})
	}
	if err := o.setPhase(installer.UpgradeRollingBack, func(r *installer.UpgradeRecord) {
		if r.Error == "" {
			r.Error = cause.Error()
		}
	}); err != nil {
		return err
	}
	restored := 0
	for _, k := range rec.Kept {
		n, err := o.restore(k)
		if err != nil {
			return err
		}
		restored += n
	}
	if err := o.update(func(s *installer.State) {
		s.K3s = rec.FromK3s
		s.PendingRestart = false
		s.PendingReload = false
	}); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	mgr, err := o.Systemd(tctx)
	if err != nil {
		return err
	}
	if c, ok := mgr.(interface{ Close() }); ok {
		defer c.Close()
	}
	cl, err := o.cluster()
	if err != nil {
		return err
	}
	running := o.kubeletVersion(tctx, cl)
	var since time.Time
	if restored > 0 || running == "" || !sameK3s(running, rec.FromK3s.Version) {
		o.Log("restarting %s with K3s %s (running: %s)", installer.UnitName, rec.FromK3s.Version, orUnknown(running))
		if err := mgr.Reload(tctx); err != nil {
			return err
		}
		// The API keeps heartbeats to the second.
		since = o.Now().Truncate(time.Second)
		if err := mgr.Restart(tctx, installer.UnitName); err != nil {
			return err
		}
	}
	if err := o.waitNode(tctx, cl, rec.FromK3s.Version, since); err != nil {
		return err
	}
	for _, r := range rec.Releases {
		if err := o.rollbackRelease(tctx, cl, r); err != nil {
			return err
		}
	}
	if len(rec.Releases) > 0 && o.Instances != nil {
		if err := o.waitInstances(tctx); err != nil {
			return err
		}
	}
	return o.update(func(s *installer.State) {
		if s.Upgrade != nil {
			s.Upgrade.Phase = installer.UpgradeRolledBack
			s.TpctlVersion = s.Upgrade.FromTpctl
		}
	})
}

// restore puts a kept file back (1) unless it is in place already (0).
func (o *Options) restore(k installer.KeptFile) (int, error) {
	live := o.host(k.Path)
	if k.Absent {
		if _, err := os.Lstat(live); errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		o.Log("removing %s (the upgrade added it)", k.Path)
		if err := os.Remove(live); err != nil {
			return 0, err
		}
		return 1, nil
	}
	if sum, err := fileSHA256(live); err == nil && sum == k.SHA256 {
		return 0, nil
	}
	o.Log("restoring %s from %s", k.Path, k.Saved)
	if err := copyFile(o.host(k.Saved), live, k.Mode, k.SHA256); err != nil {
		return 0, fmt.Errorf("restore %s: %w", k.Path, err)
	}
	return 1, nil
}

func (o *Options) cluster() (Cluster, error) {
	if o.Cluster == nil {
		return nil, errors.New("no API client configured")
	}
	return o.Cluster(o.host(installer.KubeconfigPath))
}

func (o *Options) kubeletVersion(ctx context.Context, cl Cluster) string {
	n, err := cl.Node(ctx, o.Installed.State.Config.NodeName)
	if err != nil {
		return ""
	}
	return n.Status.NodeInfo.KubeletVersion
}

// waitNode waits for the node to be Ready on K3s version want and, with a
// non-zero since (K3s was restarted then), for its kubelet to have reported
// at or after since: the Ready condition the node had before the restart
// stays in the API until the kubelet reports again.
func (o *Options) waitNode(ctx context.Context, cl Cluster, want string, since time.Time) error {
	name := o.Installed.State.Config.NodeName
	o.Log("waiting for node %s to be Ready on K3s %s", name, want)
	last := ""
	for {
		n, err := cl.Node(ctx, name)
		if err == nil {
			ready, why := installer.NodeReady(n)
			v := n.Status.NodeInfo.KubeletVersion
			fresh, beat := heartbeatSince(n, since)
			switch {
			case ready && nodeRuns(v, want) && fresh:
				return nil
			case ready && nodeRuns(v, want):
				last = fmt.Sprintf("its kubelet has not reported since K3s was restarted at %s (last at %s)", since.UTC().Format(time.RFC3339), beat)
			default:
				last = fmt.Sprintf("%s on %s", why, v)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: %s (%v)", name, last, ctx.Err())
		case <-time.After(o.Poll):
		}
	}
}

// heartbeatSince reports whether the node's Ready condition was reported
// at or after since (always, for a zero since), and when it was last.
func heartbeatSince(n *corev1.Node, since time.Time) (bool, string) {
	return installer.ReportedSince(n, since)
}

// sameK3s reports whether the node's kubelet version is the K3s version
// want; a version that does not parse (a K3s built without one) is judged
// by Readiness alone.
func sameK3s(kubelet, want string) bool {
	a, err := version.ParseK3s(kubelet)
	if err != nil {
		return true
	}
	b, err := version.ParseK3s(want)
	if err != nil {
		return true
	}
	return a.Compare(b) == 0
}

// nodeRuns reports whether a Ready node's kubelet version says it runs
// the K3s version want. K3s stamps its kubelet with its release
// (v1.35.2+k3s1); a kubelet version without one (a kubelet not built by
// K3s) is judged by its Kubernetes version alone: waiting for a release
// suffix it never reports would only time out. Whether K3s must be
// restarted is still decided by sameK3s, which restarts such a node.
func nodeRuns(kubelet, want string) bool {
	a, err := version.ParseK3s(kubelet)
	if err != nil {
		return true
	}
	b, err := version.ParseK3s(want)
	if err != nil {
		return true
	}
	if a.Release == 0 {
		a.Release = b.Release
	}
	return a.Compare(b) == 0
}

// rollbackRelease rolls a release back to its recorded revision unless it
// runs that chart version already.
func (o *Options) rollbackRelease(ctx context.Context, cl Cluster, r installer.ReleaseRevision) error {
	var cur *Release
	var err error
	for {
		if cur, err = cl.Release(ctx, r.Namespace, r.Name); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read Helm release %s/%s: %w", r.Namespace, r.Name, err)
		case <-time.After(o.Poll):
		}
	}
	if cur != nil && cur.Status == "deployed" && (cur.Revision == r.Revision || cur.Chart == r.Chart) {
		return nil
	}
	if o.Releases == nil {
		return fmt.Errorf("Helm release %s/%s: no Helm client to roll it back to revision %d", r.Namespace, r.Name, r.Revision)
	}
	o.Log("rolling Helm release %s/%s back to revision %d (chart %s)", r.Namespace, r.Name, r.Revision, r.Chart)
	return o.Releases.Rollback(ctx, r.Namespace, r.Name, r.Revision)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile copies src to dst atomically (temporary file, sync, rename) and
// checks the copy's digest against want.
func copyFile(src, dst string, perm fs.FileMode, want string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		tmp.Close()
		return fmt.Errorf("%s has sha256 %s, want %s", src, got, want)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
