package launcher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/tpctl/tpctl/test/cluster"
)

// DefaultComponentDir is where the launcher looks for the upstream
// component binaries unless built with another directory. The install
// end-to-end tests bind scripts/test-deps's .cache/bin there, read-only.
const DefaultComponentDir = "/opt/tpctl-k3s-launcher/bin"

// K3sRelease is the K3s release suffix the launcher reports.
const K3sRelease = "k3s1"

// UsageError is a command line or configuration error (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// LookPathNotSelf finds a program in PATH, skipping this launcher itself:
// tpctl links ctr, crictl and kubectl to the K3s binary in /usr/local/bin,
// which comes first in PATH, so a plain lookup of ctr would find the
// launcher again.
func LookPathNotSelf(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this executable: %w", err)
	}
	if s, err := filepath.EvalSymlinks(self); err == nil {
		self = s
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			continue
		}
		p, err := exec.LookPath(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && real == self {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%s: not found in PATH (other than this launcher): %w", name, exec.ErrNotFound)
}

// VersionString is `k3s --version`'s first line, in K3s's format, for the
// Kubernetes version the launcher runs.
func VersionString(goVersion string) string {
	return fmt.Sprintf("k3s version %s+%s (tpctl-k3s-launcher, test double)\ngo version %s",
		cluster.PinnedVersions().Kubernetes, K3sRelease, goVersion)
}

// ExecTool replaces the process with kubectl (with K3s's kubeconfig unless
// KUBECONFIG or --kubeconfig says otherwise) or ctr (on K3s's containerd
// socket). It returns only on failure.
func ExecTool(componentDir, name string, args []string) error {
	var bin string
	var argv []string
	env := os.Environ()
	switch name {
	case "kubectl":
		p, err := cluster.Binaries{Dir: componentDir, Versions: cluster.PinnedVersions()}.Path("kubectl")
		if err != nil {
			return fmt.Errorf("kubectl: %w", err)
		}
		bin, argv = p, append([]string{"kubectl"}, args...)
		if os.Getenv("KUBECONFIG") == "" {
			env = append(env, "KUBECONFIG="+KubeconfigPath)
		}
	case "ctr":
		p, err := LookPathNotSelf("ctr")
		if err != nil {
			return err
		}
		bin, argv = p, append([]string{"ctr", "--address", ContainerdSocket}, args...)
	default:
		return fmt.Errorf("%s is not provided by this launcher", name)
	}
	if err := syscall.Exec(bin, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	return nil
}
