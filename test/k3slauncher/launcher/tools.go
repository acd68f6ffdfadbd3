package launcher

import (
	"fmt"
	"os"
	"syscall"

	"github.com/tpctl/tpctl/test/cluster"
)

// DefaultComponentDir is where the launcher looks for the upstream
// component binaries unless built with another directory. The install
// end-to-end tests bind scripts/test-deps's .cache/bin there, read-only.
const DefaultComponentDir = "/opt/tpctl-k3s-launcher/bin"

// K3sRelease is the K3s release suffix the launcher reports. A test that
// needs two K3s releases of the same Kubernetes version (an upgrade from
// +k3s1 to +k3s2, say) builds the launcher with
// -ldflags "-X github.com/tpctl/tpctl/test/k3slauncher/launcher.K3sRelease=k3s2",
// as K3s stamps its own version at link time (K3s: scripts/version.sh and the
// -X …/pkg/version.Version flag in scripts/build).
var K3sRelease = "k3s1"

// UsageError is a command line or configuration error (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// VersionString is `k3s --version`'s first line, in K3s's format, for the
// Kubernetes version the launcher runs.
func VersionString(goVersion string) string {
	return fmt.Sprintf("k3s version %s+%s (tpctl-k3s-launcher, test double)\ngo version %s",
		cluster.PinnedVersions().Kubernetes, K3sRelease, goVersion)
}

// ExecTool replaces the process with kubectl (with K3s's kubeconfig unless
// KUBECONFIG or --kubeconfig says otherwise) or containerd's own ctr (on
// K3s's containerd socket). It returns only on failure.
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
		paths, err := containerdPaths(componentDir)
		if err != nil {
			return err
		}
		bin, argv = paths["ctr"], append([]string{"ctr", "--address", ContainerdSocket}, args...)
	default:
		return fmt.Errorf("%s is not provided by this launcher", name)
	}
	if err := syscall.Exec(bin, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	return nil
}
