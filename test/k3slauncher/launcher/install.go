package launcher

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tpctl/tpctl/test/cluster"
)

// BinDir is where the launcher puts its components, as K3s extracts its
// bundled binaries below <data-dir>/data: processes run from there are what
// tpctl's preflight and uninstall recognise as the K3s it installed.
func (l Layout) BinDir() string {
	return l.path("data", cluster.PinnedVersions().Kubernetes+"-launcher", "bin")
}

// componentNames are the names the components get in BinDir. A real K3s
// runs them inside its own process (k3s-server), so no process of it is
// called kubelet or kube-apiserver; the launcher's copies carry k3s- names
// for the same reason. containerd, its runc shim and ctr keep their names,
// as in K3s's bin directory, which K3s puts first in its children's PATH
// (containerd finds the shim there).
func componentNames() map[string]string {
	return map[string]string{
		"kine": "k3s-kine", "etcd": "k3s-etcd", "kube-apiserver": "k3s-apiserver", "kube-controller-manager": "k3s-controller-manager",
		"kube-scheduler": "k3s-scheduler", "kubelet": "k3s-kubelet", "kube-proxy": "k3s-kube-proxy", "containerd": "containerd",
		"containerd-shim-runc-v2": "containerd-shim-runc-v2", "ctr": "ctr",
	}
}

// installComponents copies the component binaries into BinDir (once: a copy
// of the same size is kept) and returns their paths there.
func installComponents(l Layout, bins map[string]string) (map[string]string, error) {
	dir := l.BinDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	out := map[string]string{}
	for comp, src := range bins {
		name, ok := componentNames()[comp]
		if !ok {
			out[comp] = src
			continue
		}
		dst := filepath.Join(dir, name)
		if err := copyIfChanged(src, dst); err != nil {
			return nil, err
		}
		out[comp] = dst
	}
	return out, nil
}

func copyIfChanged(src, dst string) error {
	s, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if d, err := os.Stat(dst); err == nil && d.Size() == s.Size() && d.Mode().Perm() == 0o755 {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
