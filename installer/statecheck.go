package installer

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The install state decides what uninstall deletes, so it is trusted only
// as far as it names paths tpctl could have created: every recorded path
// must be absolute, clean and inside one of the roots below, or the whole
// state is refused.

// stateRoots are the trees install and K3s create paths in: K3s's
// configuration, its data dir, tpctl's own state and log, and the run-time
// directories of K3s, its kubelet and CNI (both CNIs: the recorded ones
// depend on the configuration of the run that recorded them).
func stateRoots(c Config) []string {
	roots := []string{"/etc/rancher", c.DataDir, StateDir, filepath.Dir(LogPath)}
	return append(roots, runtimePaths(Config{CNI: CNICilium})...)
}

// stateFiles are the single files install writes outside those trees.
func stateFiles() []string {
	out := []string{K3sBinaryPath, UnitPath, EnvFilePath, AgentUnitPath, AgentEnvFilePath}
	for _, l := range []string{"kubectl", "crictl", "ctr"} {
		out = append(out, filepath.Join(filepath.Dir(K3sBinaryPath), l))
	}
	return out
}

// allowedRecord reports whether c is a path install may have created. A
// directory may also be a missing parent of one of those paths (install
// creates them top-down); uninstall removes such a directory only when it is
// empty.
func allowedRecord(c Created, cfg Config) error {
	p := c.Path
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || strings.ContainsRune(p, 0) {
		return fmt.Errorf("recorded path %q is not a clean absolute path", p)
	}
	switch c.Kind {
	case KindFile, KindSymlink, KindDir:
	case KindRuntime:
		// K3s's run-time directories, recorded before its first start.
		if !slices.Contains(runtimePaths(Config{CNI: CNICilium}), p) {
			return fmt.Errorf("recorded path %s is not one of K3s's run-time directories", p)
		}
		return nil
	default:
		return fmt.Errorf("recorded path %s has unknown kind %q", p, c.Kind)
	}
	for _, r := range stateRoots(cfg) {
		if inside(p, r) {
			return nil
		}
	}
	if slices.Contains(stateFiles(), p) && c.Kind != KindDir && c.Kind != KindRuntime {
		return nil
	}
	if c.Kind == KindDir {
		for _, t := range append(stateRoots(cfg), stateFiles()...) {
			if inside(t, p) {
				return nil
			}
		}
	}
	return fmt.Errorf("recorded path %s (%s) is outside everything tpctl installs", p, c.Kind)
}

// stateConfig is the configuration a state's paths are judged by: the
// recorded one, with K3s's default data dir when none was recorded (a state
// of an install that stopped before it saved its configuration).
func stateConfig(s State) Config {
	c := s.Config
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.CNI == "" {
		c.CNI = CNIFlannel
	}
	return c
}

// checkState says why a state cannot be trusted, or returns nil.
func checkState(s State) error {
	c := stateConfig(s)
	if msg := DataDirProblem(c.DataDir); msg != "" {
		return fmt.Errorf("recorded dataDir %q %s", c.DataDir, msg)
	}
	if c.CNI != CNIFlannel && c.CNI != CNICilium {
		return fmt.Errorf("recorded cni %q is neither %s nor %s", c.CNI, CNIFlannel, CNICilium)
	}
	for _, e := range s.Created {
		if err := allowedRecord(e, c); err != nil {
			return err
		}
	}
	return nil
}
