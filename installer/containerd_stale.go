package installer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// dropStaleTemplate removes a containerd template tpctl derived for
// another K3s binary than the installed one, and has K3s restarted. The
// stage step calls it once the binary is in place (an upgrade), before the
// start step restarts K3s for the new binary: that restart then makes the
// new K3s render its own base config. A K3s whose base config imports the
// drop-in directory (K3s 1.36) applies containerdDropInStep's drop-in with
// that one restart, and the containerd step changes nothing. Left in
// place, the stale template would be rendered by the new K3s at that
// restart (without the import), and the containerd step would restart K3s
// twice more (once without the template to see K3s's own config, once
// with what it derives from it). Only for a K3s whose config imports no
// drop-in is the template derived again, with one more restart.
//
// A template tpctl did not write is left to the containerd step, which
// refuses it. It reports the removed template's path ("" when none).
func dropStaleTemplate(env *Env) (string, error) {
	if !env.Facts.NoCapSysResource {
		return "", nil
	}
	s := &containerdStep{env: env}
	p, tmpl, err := s.template()
	if err != nil || p == "" || !bytes.HasPrefix(tmpl, []byte(templateMarker)) {
		return "", err
	}
	sum, err := s.k3sSHA256()
	if err != nil {
		return "", err
	}
	if TemplateK3sSHA256(tmpl) == sum {
		return "", nil
	}
	// K3s must start again without it: say so before removing it.
	if !env.State.Get().PendingRestart {
		if err := env.State.Update(func(st *State) { st.PendingRestart = true }); err != nil {
			return "", err
		}
	}
	if err := os.Remove(env.FS.Path(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("remove the stale %s: %w", p, err)
	}
	return p, nil
}
