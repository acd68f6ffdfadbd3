package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tpctl/tpctl/installer"
)

// NodePasswordPath is the agent's node password; K3s keeps its hash in the
// datastore (a node-password Secret) and rejects a node whose password does
// not match, so a restored datastore needs the password it was taken with.
const NodePasswordPath = "/etc/rancher/node/password"

// nodePasswordPart is its archive entry.
const nodePasswordPart = "etc/rancher/node/password"

// Units starts and stops k3s.service (systemd.Manager in production).
type Units interface {
	StopAndDisable(ctx context.Context, unit string) error
	EnableAndStart(ctx context.Context, unit string) error
}

// RestoreOptions for Restore.
type RestoreOptions struct {
	// Root is the host's root directory ("/" in production).
	Root string
	// Archive is the backup to restore.
	Archive string
	// TpctlVersion is the running tpctl's version.
	TpctlVersion string
	// DryRun verifies the archive and returns the plan; nothing changes.
	DryRun bool
	// Yes confirms the restore; without it (and without DryRun) Restore
	// refuses.
	Yes   bool
	Units Units
	// Cluster is read after K3s has started again.
	Cluster Cluster
	// Progress receives one line per action (nil: none).
	Progress func(string)
	// Poll is the interval of the waits (2s when 0).
	Poll time.Duration
	Now  func() time.Time
}

func (o RestoreOptions) host(p string) string { return filepath.Join(o.Root, p) }

func (o RestoreOptions) say(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// Move is one rename of the plan.
type Move struct {
	What string `json:"what"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Plan is what a restore does.
type Plan struct {
	Archive      string    `json:"archive"`
	CreatedAt    time.Time `json:"createdAt"`
	TpctlVersion string    `json:"tpctlVersion"`
	K3sVersion   string    `json:"k3sVersion"`
	DataDir      string    `json:"dataDir"`
	// Aside is where the current files are kept.
	Aside string `json:"aside"`
	// MoveAside are the current files moved to Aside; PutInPlace the
	// archive's files moved into place (both after k3s.service stopped).
	MoveAside  []Move `json:"moveAside"`
	PutInPlace []Move `json:"putInPlace"`
	// WaitFor is what the restore waits for after starting K3s again.
	WaitFor []string `json:"waitFor"`
}

// restoreTarget is one thing a restore replaces: a host path and the
// archive entry (file) or prefix (directory) it comes from.
type restoreTarget struct {
	what, host, entry string
	dir               bool
}

func targets(dataDir string) []restoreTarget {
	server := filepath.Join(dataDir, "server")
	return []restoreTarget{
		{what: "datastore", host: filepath.Join(server, "db"), entry: "k3s/server/db", dir: true},
		{what: "server token", host: filepath.Join(server, "token"), entry: TokenPart},
		{what: "CA material and certificates", host: filepath.Join(server, "tls"), entry: strings.TrimSuffix(TLSPrefix, "/"), dir: true},
		{what: "credentials", host: filepath.Join(server, "cred"), entry: strings.TrimSuffix(CredPrefix, "/"), dir: true},
		{what: "node password", host: NodePasswordPath, entry: nodePasswordPart},
	}
}

// has reports whether the manifest holds the target (a file or anything
// below a directory).
func (t restoreTarget) in(m Manifest) bool {
	for _, p := range m.Parts {
		if p.Path == t.entry || (t.dir && strings.HasPrefix(p.Path, t.entry+"/")) {
			return true
		}
	}
	return false
}

// intent is written to RestoreIntentPath before anything changes.
type intent struct {
	Archive   string    `json:"archive"`
	StartedAt time.Time `json:"startedAt"`
	Phase     string    `json:"phase"`
	Staging   string    `json:"staging"`
	Plan      Plan      `json:"plan"`
}

// Restore verifies an archive against this host and, unless DryRun,
// restores it (see the package documentation). It returns the plan.
func Restore(ctx context.Context, o RestoreOptions) (Plan, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	st, err := installer.LoadState(o.host(installer.StatePath), time.Now)
	if err != nil {
		return Plan{}, fmt.Errorf("read the install state: %w", err)
	}
	state := st.Get()
	if !state.Completed || state.Config.DataDir == "" {
		return Plan{}, fmt.Errorf("no completed install is recorded in %s: install tpctl first, then restore", installer.StatePath)
	}
	if _, err := os.Stat(o.host(RestoreIntentPath)); err == nil {
		return Plan{}, fmt.Errorf("a restore is recorded as in progress in %s: finish or inspect it first (remove the file once the node is as it should be)", RestoreIntentPath)
	}
	m, err := Verify(o.Archive, "")
	if err != nil {
		return Plan{}, err
	}
	if err := checkTpctlVersion(m.TpctlVersion, o.TpctlVersion); err != nil {
		return Plan{}, err
	}
	if err := checkK3sVersion(m.K3sVersion, state.K3s.Version); err != nil {
		return Plan{}, err
	}
	if m.DataDir != state.Config.DataDir {
		return Plan{}, &VersionError{What: "dataDir", Archive: m.DataDir, Installed: state.Config.DataDir,
			Reason: "install with --data-dir " + m.DataDir + " to restore this archive"}
	}
	stamp := now().UTC().Format("20060102T150405Z")
	server := filepath.Join(m.DataDir, "server")
	plan := Plan{
		Archive: o.Archive, CreatedAt: m.CreatedAt, TpctlVersion: m.TpctlVersion, K3sVersion: m.K3sVersion,
		DataDir: m.DataDir, Aside: filepath.Join(server, "pre-restore-"+stamp),
	}
	staging := filepath.Join(server, ".tpctl-restore-"+stamp)
	for _, t := range targets(m.DataDir) {
		if !t.in(m) {
			continue
		}
		if _, err := os.Lstat(o.host(t.host)); err == nil {
			plan.MoveAside = append(plan.MoveAside, Move{What: t.what, From: t.host, To: filepath.Join(plan.Aside, asideName(t.host))})
		}
		plan.PutInPlace = append(plan.PutInPlace, Move{What: t.what, From: filepath.Join(staging, filepath.FromSlash(t.entry)), To: t.host})
	}
	plan.WaitFor = []string{"the API server and every node Ready"}
	if m.Inventory != nil {
		for _, c := range m.Inventory.CoreInstances {
			plan.WaitFor = append(plan.WaitFor, "CoreInstance "+c.Key()+readyText(c.Ready))
		}
		for _, p := range m.Inventory.Pipelines {
			plan.WaitFor = append(plan.WaitFor, "Pipeline "+p.Key()+readyText(p.Ready)+frontendText(p.Frontends))
		}
	} else {
		plan.WaitFor = append(plan.WaitFor, "(the archive records no inventory: "+m.InventoryError+")")
	}
	if o.DryRun {
		return plan, nil
	}
	if !o.Yes {
		return plan, errors.New("restore replaces K3s's datastore, token and certificates: confirm it (--yes); nothing was changed")
	}
	if o.Units == nil || o.Cluster == nil {
		return plan, errors.New("restore needs a unit manager and a cluster reader")
	}

	// Extract (verifying again: the archive is read a second time) before
	// anything on the node changes.
	o.say("extracting %s into %s", o.Archive, staging)
	if _, err := Verify(o.Archive, o.host(staging)); err != nil {
		os.RemoveAll(o.host(staging))
		return plan, err
	}
	rec := intent{Archive: o.Archive, StartedAt: now().UTC(), Phase: "stopping k3s", Staging: staging, Plan: plan}
	if err := writeIntent(o.host(RestoreIntentPath), rec); err != nil {
		os.RemoveAll(o.host(staging))
		return plan, err
	}
	o.say("stopping %s", installer.UnitName)
	if err := o.Units.StopAndDisable(ctx, installer.UnitName); err != nil {
		return plan, fmt.Errorf("stop %s: %w (nothing was moved; %s records the restore)", installer.UnitName, err, RestoreIntentPath)
	}
	rec.Phase = "replacing files"
	if err := writeIntent(o.host(RestoreIntentPath), rec); err != nil {
		return plan, err
	}
	if err := os.MkdirAll(o.host(plan.Aside), 0o700); err != nil {
		return plan, fmt.Errorf("make %s: %w", plan.Aside, err)
	}
	for _, mv := range plan.MoveAside {
		o.say("moving the current %s aside: %s -> %s", mv.What, mv.From, mv.To)
		if err := os.Rename(o.host(mv.From), o.host(mv.To)); err != nil {
			return plan, fmt.Errorf("move %s aside: %w (%s records what was moved)", mv.From, err, RestoreIntentPath)
		}
	}
	for _, mv := range plan.PutInPlace {
		o.say("putting the archive's %s in place: %s", mv.What, mv.To)
		if err := os.MkdirAll(filepath.Dir(o.host(mv.To)), 0o700); err != nil {
			return plan, fmt.Errorf("make %s: %w", filepath.Dir(mv.To), err)
		}
		if err := os.Rename(o.host(mv.From), o.host(mv.To)); err != nil {
			return plan, fmt.Errorf("put %s in place: %w (%s records the restore)", mv.To, err, RestoreIntentPath)
		}
		if err := privatize(o.host(mv.To)); err != nil {
			return plan, err
		}
	}
	os.RemoveAll(o.host(staging))
	rec.Phase = "starting k3s"
	if err := writeIntent(o.host(RestoreIntentPath), rec); err != nil {
		return plan, err
	}
	o.say("starting %s", installer.UnitName)
	// Whole seconds: the API's timestamps have no finer precision.
	started := now().Truncate(time.Second)
	if err := o.Units.EnableAndStart(ctx, installer.UnitName); err != nil {
		return plan, fmt.Errorf("start %s: %w (the previous files are in %s)", installer.UnitName, err, plan.Aside)
	}
	rec.Phase = "waiting"
	if err := writeIntent(o.host(RestoreIntentPath), rec); err != nil {
		return plan, err
	}
	if err := waitRestored(ctx, o, m, started); err != nil {
		return plan, fmt.Errorf("%w (the previous files are in %s; %s records the restore)", err, plan.Aside, RestoreIntentPath)
	}
	if err := os.Remove(o.host(RestoreIntentPath)); err != nil {
		return plan, fmt.Errorf("remove %s: %w", RestoreIntentPath, err)
	}
	o.say("restored; the previous files are kept in %s", plan.Aside)
	return plan, nil
}

// asideName is the name a host path gets in the aside directory.
func asideName(p string) string {
	if p == NodePasswordPath {
		return "node-password"
	}
	return filepath.Base(p)
}

func readyText(ready bool) string {
	if ready {
		return " Ready"
	}
	return " present"
}

func frontendText(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " with frontends " + strings.Join(f, ", ")
}

// privatize makes files 0600 and directories 0700 below p.
func privatize(p string) error {
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		return os.Chmod(q, mode)
	})
	if err != nil {
		return fmt.Errorf("set modes below %s: %w", p, err)
	}
	return nil
}

func writeIntent(path string, rec intent) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// waitRestored polls until the node is Ready and the manifest's inventory
// is back; on timeout it says what is still missing.
func waitRestored(ctx context.Context, o RestoreOptions, m Manifest, since time.Time) error {
	poll := o.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	last := ""
	said := ""
	for {
		last = restoredMissing(ctx, o.Cluster, m, since)
		if last == "" {
			return nil
		}
		if last != said {
			o.say("waiting: %s", last)
			said = last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the restored node is not back: %s", last)
		case <-time.After(poll):
		}
	}
}

// restoredMissing returns what is not back yet, or "".
func restoredMissing(ctx context.Context, c Cluster, m Manifest, since time.Time) string {
	if err := c.NodeReady(ctx, since); err != nil {
		return err.Error()
	}
	if m.Inventory == nil {
		return ""
	}
	inv, err := c.Inventory(ctx, since)
	if err != nil {
		return err.Error()
	}
	return InventoryMissing(*m.Inventory, inv)
}

// InventoryMissing lists what of want is not in got: objects absent, not
// Ready (when they were), or with other frontends; "" when all are back.
func InventoryMissing(want, got Inventory) string {
	var miss []string
	check := func(kind string, want, got []Object) {
		idx := map[string]Object{}
		for _, g := range got {
			idx[g.Key()] = g
		}
		for _, w := range want {
			g, ok := idx[w.Key()]
			switch {
			case !ok:
				miss = append(miss, kind+" "+w.Key()+" is absent")
			case w.Ready && !g.Ready:
				miss = append(miss, kind+" "+w.Key()+" is not Ready")
			case !slices.Equal(w.Frontends, g.Frontends):
				miss = append(miss, fmt.Sprintf("%s %s has frontends [%s], the backup had [%s]", kind, w.Key(),
					strings.Join(g.Frontends, " "), strings.Join(w.Frontends, " ")))
			}
		}
	}
	check("CoreInstance", want.CoreInstances, got.CoreInstances)
	check("Pipeline", want.Pipelines, got.Pipelines)
	return strings.Join(miss, "; ")
}
