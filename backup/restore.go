package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	// interrupt, when set, is called at each checkpoint of a restore; an
	// error stops the restore there as if it had been killed (tests).
	interrupt func(step string) error
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
	// Resume is the phase an interrupted restore of this archive stopped
	// in ("" for a new restore): the restore continues from there.
	Resume string `json:"resume,omitempty"`
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

// The phases of a restore, in order, as the intent records them. A restore
// that was killed resumes at the phase its intent names: each phase can run
// again from its start.
const (
	phaseExtract = "extracting"
	phaseStop    = "stopping k3s"
	phaseReplace = "replacing files"
	phaseStart   = "starting k3s"
	phaseWait    = "waiting"
)

// intent is written to RestoreIntentPath before anything changes.
type intent struct {
	Archive string `json:"archive"`
	// ArchiveSHA256 names the archive by content: a restore in progress is
	// resumed by the same archive (wherever it is) and refuses any other.
	ArchiveSHA256 string    `json:"archiveSHA256,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	Phase         string    `json:"phase"`
	Staging       string    `json:"staging"`
	// K3sStartedAt is recorded before k3s.service is started: the waits
	// ask for what happened since then, also when they are resumed.
	K3sStartedAt time.Time `json:"k3sStartedAt,omitempty"`
	Plan         Plan      `json:"plan"`
}

// readIntent returns the recorded restore, if any.
func readIntent(path string) (intent, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return intent{}, false, nil
	}
	if err != nil {
		return intent{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	var rec intent
	if err := json.Unmarshal(b, &rec); err != nil {
		return intent{}, false, fmt.Errorf("%s records a restore in progress but cannot be read (%v): inspect it, and remove it once the node is as it should be", path, err)
	}
	switch rec.Phase {
	case phaseExtract, phaseStop, phaseReplace, phaseStart, phaseWait:
	default:
		return intent{}, false, fmt.Errorf("%s records a restore in an unknown phase %q (written by another tpctl?): inspect it, and remove it once the node is as it should be", path, rec.Phase)
	}
	return rec, true, nil
}

// sameArchive reports whether the archive at path, whose sha256 is sum, is
// the one rec is restoring (by content; by path for an intent that records
// no digest).
func (rec intent) sameArchive(path, sum string) bool {
	if rec.ArchiveSHA256 != "" {
		return rec.ArchiveSHA256 == sum
	}
	return rec.Archive == path
}

// fileSHA256 is the lower-case hex sha256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Restore verifies an archive against this host and, unless DryRun,
// restores it (see the package documentation). It returns the plan. A
// restore of the same archive that was interrupted is resumed where it
// stopped (Plan.Resume names the phase); any other archive is refused while
// one is recorded in progress.
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
	if err := refuseAgent(state); err != nil {
		return Plan{}, err
	}
	if !state.Completed || state.Config.DataDir == "" {
		return Plan{}, fmt.Errorf("no completed install is recorded in %s: install tpctl first, then restore", installer.StatePath)
	}
	rec, resuming, err := readIntent(o.host(RestoreIntentPath))
	if err != nil {
		return Plan{}, err
	}
	sum, err := fileSHA256(o.Archive)
	if err != nil {
		return Plan{}, err
	}
	if resuming && !rec.sameArchive(o.Archive, sum) {
		return Plan{}, fmt.Errorf("a restore of %s is in progress (started %s, phase %s; recorded in %s): run `tpctl backup restore --yes %s` to complete it; %s is refused until then, nothing was changed",
			rec.Archive, rec.StartedAt.UTC().Format(time.RFC3339), rec.Phase, RestoreIntentPath, rec.Archive, o.Archive)
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
	var plan Plan
	if resuming {
		// The recorded plan: the files it moves may be moved already, so
		// it is not computed again from the host.
		plan = rec.Plan
		plan.Archive = o.Archive
		plan.Resume = rec.Phase
	} else {
		stamp := now().UTC().Format("20060102T150405Z")
		plan, rec.Staging = planRestore(o, m, stamp)
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
	if resuming {
		o.say("resuming the restore of %s started %s (phase %s)", rec.Archive, rec.StartedAt.UTC().Format(time.RFC3339), rec.Phase)
		rec.Archive = o.Archive
		rec.ArchiveSHA256 = sum
	} else {
		rec = intent{Archive: o.Archive, ArchiveSHA256: sum, StartedAt: now().UTC(), Phase: phaseExtract,
			Staging: rec.Staging, Plan: plan}
	}
	// The intent is recorded before anything on the node changes.
	if err := writeIntent(o.host(RestoreIntentPath), rec); err != nil {
		return plan, err
	}
	return plan, o.run(ctx, m, rec, now)
}

// planRestore computes the plan of a new restore and its staging directory.
func planRestore(o RestoreOptions, m Manifest, stamp string) (Plan, string) {
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
	return plan, staging
}

// checkpoint is where a test interrupts the restore (as if killed there).
func (o RestoreOptions) checkpoint(step string) error {
	if o.interrupt == nil {
		return nil
	}
	return o.interrupt(step)
}

// run carries out rec from its recorded phase to the end, recording each
// phase before it starts. Every phase can be run again from its start: a
// restore killed anywhere is completed by running it again.
func (o RestoreOptions) run(ctx context.Context, m Manifest, rec intent, now func() time.Time) error {
	intentPath := o.host(RestoreIntentPath)
	plan := rec.Plan
	advance := func(phase string) error {
		rec.Phase = phase
		return writeIntent(intentPath, rec)
	}
	if rec.Phase == phaseWait {
		// A resumed wait makes sure K3s runs (starting a running unit
		// changes nothing); the waits keep the recorded start time.
		rec.Phase = phaseStart
	}
	for {
		switch rec.Phase {
		case phaseExtract:
			// A staging directory left by a killed extraction is partial.
			if err := os.RemoveAll(o.host(rec.Staging)); err != nil {
				return fmt.Errorf("remove the partial staging directory %s: %w", rec.Staging, err)
			}
			if err := o.checkpoint("extract"); err != nil {
				return err
			}
			// Verified again: the archive is read a second time.
			o.say("extracting %s into %s", o.Archive, rec.Staging)
			if _, err := Verify(o.Archive, o.host(rec.Staging)); err != nil {
				// Nothing on the node has changed: the restore is not in
				// progress any more.
				os.RemoveAll(o.host(rec.Staging))
				os.Remove(intentPath)
				return err
			}
			if err := o.checkpoint("extracted"); err != nil {
				return err
			}
			if err := advance(phaseStop); err != nil {
				return err
			}
		case phaseStop:
			o.say("stopping %s", installer.UnitName)
			if err := o.Units.StopAndDisable(ctx, installer.UnitName); err != nil {
				return fmt.Errorf("stop %s: %w (nothing was moved; %s records the restore: run it again to complete it)", installer.UnitName, err, RestoreIntentPath)
			}
			if err := o.checkpoint("stopped"); err != nil {
				return err
			}
			if err := advance(phaseReplace); err != nil {
				return err
			}
		case phaseReplace:
			if err := os.MkdirAll(o.host(plan.Aside), 0o700); err != nil {
				return fmt.Errorf("make %s: %w", plan.Aside, err)
			}
			for _, mv := range plan.MoveAside {
				if err := o.moveAside(mv); err != nil {
					return err
				}
				if err := o.checkpoint("moved aside " + mv.What); err != nil {
					return err
				}
			}
			for _, mv := range plan.PutInPlace {
				if err := o.putInPlace(mv); err != nil {
					return err
				}
				if err := o.checkpoint("put in place " + mv.What); err != nil {
					return err
				}
			}
			if err := os.RemoveAll(o.host(rec.Staging)); err != nil {
				return fmt.Errorf("remove the staging directory %s: %w", rec.Staging, err)
			}
			// Whole seconds: the API's timestamps have no finer precision.
			rec.K3sStartedAt = now().UTC().Truncate(time.Second)
			if err := advance(phaseStart); err != nil {
				return err
			}
		case phaseStart:
			if err := o.checkpoint("start"); err != nil {
				return err
			}
			if rec.K3sStartedAt.IsZero() { // recorded by a tpctl that did not keep it
				rec.K3sStartedAt = now().UTC().Truncate(time.Second)
			}
			o.say("starting %s", installer.UnitName)
			if err := o.Units.EnableAndStart(ctx, installer.UnitName); err != nil {
				return fmt.Errorf("start %s: %w (the previous files are in %s; %s records the restore: run it again to complete it)", installer.UnitName, err, plan.Aside, RestoreIntentPath)
			}
			if err := o.checkpoint("started"); err != nil {
				return err
			}
			if err := advance(phaseWait); err != nil {
				return err
			}
		case phaseWait:
			if err := waitRestored(ctx, o, m, rec.K3sStartedAt); err != nil {
				return fmt.Errorf("%w (the previous files are in %s; %s records the restore: run it again to keep waiting)", err, plan.Aside, RestoreIntentPath)
			}
			if err := o.checkpoint("back"); err != nil {
				return err
			}
			if err := os.Remove(intentPath); err != nil {
				return fmt.Errorf("remove %s: %w", RestoreIntentPath, err)
			}
			o.say("restored; the previous files are kept in %s", plan.Aside)
			return nil
		default:
			return fmt.Errorf("%s: unknown phase %q", RestoreIntentPath, rec.Phase)
		}
	}
}

// moveAside moves a current file aside, unless a previous run did.
func (o RestoreOptions) moveAside(mv Move) error {
	_, ferr := os.Lstat(o.host(mv.From))
	_, terr := os.Lstat(o.host(mv.To))
	switch {
	case terr == nil: // moved by a run that was interrupted
		return nil
	case ferr != nil:
		return fmt.Errorf("move %s aside: it is gone and %s does not hold it (%s records the restore; inspect the node)", mv.From, mv.To, RestoreIntentPath)
	}
	o.say("moving the current %s aside: %s -> %s", mv.What, mv.From, mv.To)
	if err := os.Rename(o.host(mv.From), o.host(mv.To)); err != nil {
		return fmt.Errorf("move %s aside: %w (%s records what was moved)", mv.From, err, RestoreIntentPath)
	}
	return nil
}

// putInPlace moves the archive's file from the staging directory into
// place, unless a previous run did, and makes it private.
func (o RestoreOptions) putInPlace(mv Move) error {
	_, ferr := os.Lstat(o.host(mv.From))
	_, terr := os.Lstat(o.host(mv.To))
	switch {
	case ferr == nil:
		o.say("putting the archive's %s in place: %s", mv.What, mv.To)
		if err := os.MkdirAll(filepath.Dir(o.host(mv.To)), 0o700); err != nil {
			return fmt.Errorf("make %s: %w", filepath.Dir(mv.To), err)
		}
		if err := os.Rename(o.host(mv.From), o.host(mv.To)); err != nil {
			return fmt.Errorf("put %s in place: %w (%s records the restore)", mv.To, err, RestoreIntentPath)
		}
	case terr != nil:
		return fmt.Errorf("put %s in place: neither it nor the archive's copy %s exists (%s records the restore; inspect the node)", mv.To, mv.From, RestoreIntentPath)
	}
	// Also when a previous run was interrupted between the rename and this.
	return privatize(o.host(mv.To))
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
