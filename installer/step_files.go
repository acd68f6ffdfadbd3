package installer

import (
	"context"
	"io/fs"
	"strings"
)

// FilePreview is one file a step writes, as the dry run shows it.
type FilePreview struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode,omitempty"`
	// Content is the exact text written, secrets redacted (rendered files).
	Content string `json:"content,omitempty"`
	// Size, SHA256 and Source describe a copied file (staged artifacts).
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Source string `json:"source,omitempty"`
	// Note explains a file whose content is decided later.
	Note string `json:"note,omitempty"`
}

// fileStep writes one rendered file.
type fileStep struct {
	env    *Env
	name   string
	path   string
	perm   fs.FileMode
	render func() ([]byte, error)
	// redact hides secrets for the dry run.
	redact func([]byte) []byte
	// reload: the file is a unit (systemd must re-read it).
	reload bool
	// note says where the content comes from, for the dry run.
	note func() string
}

func newK3sConfigStep(env *Env) *fileStep {
	return &fileStep{env: env, name: "write K3s config", path: K3sConfigPath, perm: 0o600,
		render: func() ([]byte, error) { return RenderK3sConfig(env.Config, env.Facts) }}
}

func newEnvFileStep(env *Env) *fileStep {
	return &fileStep{env: env, name: "write environment file", path: EnvFilePath, perm: 0o600,
		render: func() ([]byte, error) { return RenderEnv(env.Config) }, redact: RedactEnv,
		note: func() string {
			if len(env.ProxyEnv) == 0 {
				return ""
			}
			return "the proxy comes from this shell's " + strings.Join(env.ProxyEnv, ", ") +
				" (no proxy flag or configuration key was given), as K3s's own installer carries it"
		}}
}

func newUnitStep(env *Env) *fileStep {
	return &fileStep{env: env, name: "write unit", path: UnitPath, perm: 0o644, render: RenderUnit, reload: true}
}

func (s *fileStep) Name() string { return s.name }

func (s *fileStep) Done(context.Context) (bool, error) {
	data, err := s.render()
	if err != nil {
		return false, err
	}
	return s.env.FS.Same(s.path, data, s.perm)
}

func (s *fileStep) Run(ctx context.Context, ev Events) error {
	data, err := s.render()
	if err != nil {
		return err
	}
	same, err := s.env.FS.Same(s.path, data, s.perm)
	if err != nil || same {
		return err
	}
	// The intent first: a run killed after the write still makes systemd
	// and K3s pick the file up.
	if err := s.env.State.Update(func(st *State) {
		st.PendingRestart = true
		st.PendingReload = st.PendingReload || s.reload
	}); err != nil {
		return err
	}
	if _, err := s.env.FS.WriteFile(ctx, s.path, s.name, data, s.perm); err != nil {
		return err
	}
	if s.note != nil && s.note() != "" {
		summarize(ev, "%s written; %s", s.path, s.note())
	} else {
		summarize(ev, "%s written", s.path)
	}
	return nil
}

// Files renders the file for the dry run.
func (s *fileStep) Files() []FilePreview {
	data, err := s.render()
	if err != nil {
		return []FilePreview{{Path: s.path, Note: "cannot render: " + err.Error()}}
	}
	if s.redact != nil {
		data = s.redact(data)
	}
	fp := FilePreview{Path: s.path, Mode: s.perm, Content: string(data)}
	if s.note != nil {
		fp.Note = s.note()
	}
	return []FilePreview{fp}
}
