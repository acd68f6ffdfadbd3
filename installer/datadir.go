package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// DataDirForceFlag is the install flag that accepts a data dir holding
// files tpctl did not create.
const DataDirForceFlag = "--data-dir-force"

// resolveBelow follows the symlinks of p (a host path) below root as far as
// p exists, and returns the host path it leads to.
func resolveBelow(root, p string) (string, error) {
	rest := ""
	cur := p
	for {
		real, err := filepath.EvalSymlinks(filepath.Join(root, cur))
		if err == nil {
			rel, err := filepath.Rel(filepath.Clean(root), real)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				return "", fmt.Errorf("%s leads outside %s", p, root)
			}
			return filepath.Join("/", rel, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("resolve %s: %w", p, err)
		}
		if cur == "/" {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = filepath.Dir(cur)
	}
}

// checkDataDir refuses a data dir install must not use: one that leads
// (through symlinks) to a system directory, one where another install's
// data dir is recorded, and (unless force) an existing directory that holds
// anything and is not this install's. st is the recorded state.
func checkDataDir(root string, c Config, st State, force bool) error {
	dir := c.DataDir
	real, err := resolveBelow(root, dir)
	if err != nil {
		return fmt.Errorf("dataDir %s: %w", dir, err)
	}
	if real != dir {
		if msg := DataDirProblem(real); msg != "" {
			return fmt.Errorf("dataDir %s leads to %s, which %s", dir, real, msg)
		}
	}
	// An install that created something (or started K3s) has adopted its
	// data dir; one that stopped before (say, in preflight) has not, and
	// may still change it.
	_, started := st.Steps["start K3s"]
	if len(st.Created) > 0 || st.Completed || started {
		was := stateConfig(st)
		if was.DataDir != c.DataDir || was.CNI != c.CNI {
			return fmt.Errorf("this host's install uses dataDir %s and cni %s (recorded in %s); tpctl does not move an installed node to another data dir or CNI: "+
				"install again with --data-dir %s --cni %s, or run `tpctl uninstall` first", was.DataDir, was.CNI, StatePath, was.DataDir, was.CNI)
		}
		// This install adopted the directory already (its K3s fills it).
		return nil
	}
	ents, err := os.ReadDir(filepath.Join(root, dir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("dataDir %s: %w", dir, err)
	case len(ents) == 0 || force:
		return nil
	}
	names := make([]string, 0, 3)
	for _, e := range ents {
		if len(names) == 3 {
			names = append(names, "…")
			break
		}
		names = append(names, e.Name())
	}
	return fmt.Errorf("dataDir %s already holds %d entries (%s) that tpctl did not create: K3s would mix its files with them, and uninstall removes K3s's server/, agent/, data/ and storage/ there. "+
		"Choose an empty or new directory, or pass %s to use this one anyway; nothing was changed", dir, len(ents), strings.Join(names, ", "), DataDirForceFlag)
}

// beginInstall runs under the lock before the first step: it checks the data
// dir again, then saves the configuration in the state, so that an install
// interrupted at any later point is uninstalled with its own data dir and
// CNI.
func beginInstall(env *Env) error {
	st := env.State.Get()
	if err := checkDataDir(env.Root, env.Config, st, env.DataDirForce); err != nil {
		return err
	}
	cfg := env.Config.Redacted()
	if reflect.DeepEqual(st.Config, cfg) {
		return nil
	}
	return env.State.Update(func(s *State) { s.Config = cfg })
}
