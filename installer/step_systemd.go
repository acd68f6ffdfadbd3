package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// runtimePaths are directories K3s (its kubelet, CNI and containerd)
// creates at run time outside its data dir. Those absent before the first
// start are recorded, so uninstall removes them and nothing else.
func runtimePaths(c Config) []string {
	// /run/containerd: containerd's shims put their sockets (s/) and runc
	// its state (runc/) there whatever containerd's own state dir is.
	// /run/nri: containerd 2 (K3s 1.36's) starts its NRI plugin, whose
	// socket lives there.
	p := []string{"/run/k3s", "/run/containerd", "/run/nri", "/run/flannel", "/run/netns", "/var/lib/kubelet", "/var/lib/cni", "/var/log/pods", "/var/log/containers"}
	if c.CNI == CNICilium {
		p = append(p, "/etc/cni", "/opt/cni", "/run/cilium")
	}
	return p
}

// startStep reloads systemd, enables and starts (or restarts) k3s.service.
type startStep struct{ env *Env }

func (s *startStep) Name() string { return "start K3s" }

func (s *startStep) Describe() string {
	return "systemd daemon-reload, enable and start " + s.env.unitName() + " (waits for K3s to report ready); restart it when its files changed"
}

func (s *startStep) Done(ctx context.Context) (bool, error) {
	mgr, err := s.env.Manager(ctx)
	if err != nil {
		return false, err
	}
	cur, err := mgr.State(ctx, s.env.unitName())
	if err != nil {
		return false, err
	}
	st := s.env.State.Get()
	return cur.Installed() && cur.Active() && cur.Enabled() && !st.PendingReload && !st.PendingRestart, nil
}

func (s *startStep) Run(ctx context.Context, ev Events) error {
	mgr, err := s.env.Manager(ctx)
	if err != nil {
		return err
	}
	for _, p := range runtimePaths(s.env.Config) {
		if !s.env.FS.Exists(p) && !s.env.State.CreatedUnder(p) {
			if err := s.env.State.Record(Created{Path: p, Kind: KindRuntime, Step: s.Name()}); err != nil {
				return err
			}
		}
	}
	if err := s.env.FS.MkdirAll(s.env.Config.DataDir, s.Name(), 0o755, true); err != nil {
		return err
	}
	cur, err := mgr.State(ctx, s.env.unitName())
	if err != nil {
		return err
	}
	if s.env.State.Get().PendingReload || !cur.Installed() {
		if err := mgr.Reload(ctx); err != nil {
			return err
		}
		if err := s.env.State.Update(func(st *State) { st.PendingReload = false }); err != nil {
			return err
		}
	}
	restart := s.env.State.Get().PendingRestart && cur.Active()
	if !cur.Active() || !cur.Enabled() {
		if !cur.Active() {
			s.env.k3sStarting()
		}
		err = during(ctx, ev, s.env.Now, "waiting for K3s to report ready", func() error { return mgr.EnableAndStart(ctx, s.env.unitName()) })
		if err != nil {
			return err
		}
	}
	if restart {
		s.env.k3sStarting()
		err = during(ctx, ev, s.env.Now, "restarting K3s for its new files", func() error { return mgr.Restart(ctx, s.env.unitName()) })
		if err != nil {
			return err
		}
	}
	if err := s.env.State.Update(func(st *State) { st.PendingRestart = false }); err != nil {
		return err
	}
	if restart {
		summarize(ev, "%s restarted", s.env.unitName())
	} else {
		summarize(ev, "%s enabled and active", s.env.unitName())
	}
	return nil
}

// Undo stops and disables the unit.
func (s *startStep) Undo(ctx context.Context, ev Events) error {
	mgr, err := s.env.Manager(ctx)
	if err != nil {
		return err
	}
	return during(ctx, ev, s.env.Now, "stopping K3s", func() error { return mgr.StopAndDisable(ctx, s.env.unitName()) })
}

// during runs f, emitting a progress event every few seconds while it
// blocks (a notify unit's start lasts until K3s is ready).
func during(ctx context.Context, ev Events, now func() time.Time, msg string, f func() error) error {
	done := make(chan error, 1)
	start := now()
	go func() { done <- f() }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			ev.Emit(Event{Type: EventProgress, Message: fmt.Sprintf("%s (%s)", msg, now().Sub(start).Round(time.Second))})
		case <-ctx.Done():
			// f is bounded by the same context; wait for it to return.
			return <-done
		}
	}
}

// containerdStep makes sure containerd runs with restrict_oom_score_adj on
// hosts that lack CAP_SYS_RESOURCE. With a K3s whose generated config
// imports the drop-in directory (containerdDropInStep wrote the drop-in
// before K3s started) it only checks that, and restarts nothing; so it does
// when K3s's own config sets the key (K3s does in a user namespace). For a
// K3s whose config imports no drop-in it derives a template from that
// config (see DeriveContainerdTemplate), restarting K3s once. The template
// records the sha256 of the K3s binary it was derived for; when the binary
// changes (an upgrade), the template is removed, K3s regenerates its own
// config and the template is derived again if still needed.
type containerdStep struct{ env *Env }

func (s *containerdStep) Name() string { return "containerd template" }

func (s *containerdStep) Describe() string {
	return "when CAP_SYS_RESOURCE is missing: check that K3s's generated containerd config imports the drop-in (or sets restrict_oom_score_adj); " +
		"for a K3s whose config imports no drop-in, derive a template that sets it from that config and restart K3s"
}

func (s *containerdStep) generated() string {
	return filepath.Join(ContainerdDir(s.env.Config), ContainerdConfigFile)
}

// template returns the path and content of an existing template, if any.
func (s *containerdStep) template() (string, []byte, error) {
	for _, v := range []string{"3", "2"} {
		p := filepath.Join(ContainerdDir(s.env.Config), ContainerdTemplateName(v))
		b, err := os.ReadFile(s.env.FS.Path(p))
		if err == nil {
			return p, b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("read %s: %w", p, err)
		}
	}
	return "", nil, nil
}

// k3sSHA256 hashes the installed K3s binary.
func (s *containerdStep) k3sSHA256() (string, error) {
	f, err := os.Open(s.env.FS.Path(K3sBinaryPath))
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", K3sBinaryPath, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", K3sBinaryPath, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ownGenerated reports whether K3s rendered a config from a tpctl template.
func ownGenerated(gen []byte) bool { return bytes.HasPrefix(gen, []byte(templateMarker)) }

func (s *containerdStep) Done(context.Context) (bool, error) {
	if !s.env.Facts.NoCapSysResource {
		return true, nil
	}
	p, tmpl, err := s.template()
	if err != nil {
		return false, err
	}
	gen, gerr := os.ReadFile(s.env.FS.Path(s.generated()))
	if p == "" {
		// K3s's own config may set the key already, or import the drop-in.
		return gerr == nil && !ownGenerated(gen) && (ContainerdTemplateApplied(gen) || s.dropInActive(gen)), nil
	}
	if gerr != nil {
		return false, nil
	}
	if !bytes.HasPrefix(tmpl, []byte(templateMarker)) {
		// The user's own template: enough when what K3s rendered from it
		// sets the key or imports the drop-in.
		return ContainerdTemplateApplied(gen) || s.dropInActive(gen), nil
	}
	sum, err := s.k3sSHA256()
	if err != nil {
		return false, err
	}
	return TemplateK3sSHA256(tmpl) == sum && TemplateK3sSHA256(gen) == sum && ContainerdTemplateApplied(gen), nil
}

func (s *containerdStep) Run(ctx context.Context, ev Events) error {
	p, tmpl, err := s.template()
	if err != nil {
		return err
	}
	foreign := p != "" && !bytes.HasPrefix(tmpl, []byte(templateMarker))
	sum, err := s.k3sSHA256()
	if err != nil {
		return err
	}
	mgr, err := s.env.Manager(ctx)
	if err != nil {
		return err
	}
	ev.Emit(Event{Type: EventProgress, Message: "waiting for K3s to generate " + s.generated()})
	gen, err := waitFile(ctx, s.env.FS.Path(s.generated()), s.env.Poll)
	if err != nil {
		return fmt.Errorf("wait for K3s's containerd config: %w", err)
	}
	if foreign {
		if ContainerdTemplateApplied(gen) || s.dropInActive(gen) {
			summarize(ev, "the config K3s rendered from %s sets restrict_oom_score_adj or imports %s", p, ContainerdDropInPath(s.env.Config))
			return nil
		}
		return fmt.Errorf("%s exists and was not written by tpctl, and the config K3s renders from it neither imports %s/ nor sets restrict_oom_score_adj: "+
			"include {{ template \"base\" . }} in it (K3s's base imports the drop-in), or add restrict_oom_score_adj = true to its CRI runtime table, or remove it, then run again",
			p, filepath.Join(ContainerdDir(s.env.Config), ContainerdDropInDir))
	}
	current := p != "" && TemplateK3sSHA256(tmpl) == sum
	if current && TemplateK3sSHA256(gen) == sum && ContainerdTemplateApplied(gen) {
		summarize(ev, "restrict_oom_score_adj = true in %s", s.generated())
		return nil
	}
	if p == "" && !ownGenerated(gen) && s.dropInActive(gen) {
		summarize(ev, "%s imports %s: restrict_oom_score_adj = true without a template", s.generated(), ContainerdDropInPath(s.env.Config))
		return nil
	}
	if !current {
		if p != "" || ownGenerated(gen) {
			// The template (or the config K3s rendered from it) belongs to
			// another K3s binary: let this K3s generate its own config first
			// (which, importing the drop-in, may need nothing more).
			if p != "" {
				if err := os.Remove(s.env.FS.Path(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove the stale %s: %w", p, err)
				}
			}
			s.env.k3sStarting()
			if err := during(ctx, ev, s.env.Now, "restarting K3s to regenerate its containerd config", func() error { return mgr.Restart(ctx, s.env.unitName()) }); err != nil {
				return err
			}
			for {
				gen, err = os.ReadFile(s.env.FS.Path(s.generated()))
				if err == nil && !ownGenerated(gen) {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("wait for K3s to regenerate %s: %w", s.generated(), ctx.Err())
				case <-time.After(s.env.Poll):
				}
			}
		}
		if ContainerdTemplateApplied(gen) {
			summarize(ev, "K3s already sets restrict_oom_score_adj = true in %s; no template written", s.generated())
			return nil
		}
		if s.dropInActive(gen) {
			summarize(ev, "%s imports %s: restrict_oom_score_adj = true without a template", s.generated(), ContainerdDropInPath(s.env.Config))
			return nil
		}
		// This K3s's config does not import the drop-in directory (a K3s
		// from before its base templates did): derive a template.
		name, derived, err := DeriveContainerdTemplateFor(gen, sum)
		if err != nil {
			return err
		}
		if _, err := s.env.FS.WriteFile(ctx, filepath.Join(ContainerdDir(s.env.Config), name), s.Name(), derived, 0o600); err != nil {
			return err
		}
	}
	s.env.k3sStarting()
	if err := during(ctx, ev, s.env.Now, "restarting K3s with restrict_oom_score_adj", func() error { return mgr.Restart(ctx, s.env.unitName()) }); err != nil {
		return err
	}
	for {
		gen, err := os.ReadFile(s.env.FS.Path(s.generated()))
		if err == nil && ContainerdTemplateApplied(gen) && TemplateK3sSHA256(gen) == sum {
			summarize(ev, "restrict_oom_score_adj = true in %s", s.generated())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for K3s to apply the containerd template: %w", ctx.Err())
		case <-time.After(s.env.Poll):
		}
	}
}

// Files explains the template for the dry run.
func (s *containerdStep) Files() []FilePreview {
	dir := ContainerdDir(s.env.Config)
	if !s.env.Facts.NoCapSysResource {
		return []FilePreview{{Path: filepath.Join(dir, "config-v3.toml.tmpl"), Note: "not written: this host has CAP_SYS_RESOURCE"}}
	}
	return []FilePreview{{Path: filepath.Join(dir, "config-v3.toml.tmpl (or config.toml.tmpl)"), Mode: 0o600,
		Note: "written only for a K3s whose generated " + ContainerdConfigFile + " does not import " + ContainerdDropInDir + "/ (K3s 1.36's does): then derived after K3s's first start from that config, " +
			"with restrict_oom_score_adj = true in the CRI runtime table; it records the K3s binary's sha256 and is derived again when that binary changes; K3s is restarted once"}}
}

// waitFile polls until path exists and returns its content.
func waitFile(ctx context.Context, path string, poll time.Duration) ([]byte, error) {
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s does not exist yet: %w", path, ctx.Err())
		case <-time.After(poll):
		}
	}
}
