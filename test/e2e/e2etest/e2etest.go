// Package e2etest holds what the node tests of tpctl's commands share:
// building tpctl, running it, and a node with the sink image and a core
// instance to create pipelines in.
package e2etest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/testenv"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/images"
)

// BuildTpctl builds ./cmd/tpctl (static) into a directory of the test;
// $TPCTL_BIN, when set, names a binary to use instead.
func BuildTpctl(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TPCTL_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "bin", "tpctl")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("find the module root: %v", err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/tpctl")
	cmd.Dir = strings.TrimSpace(string(root))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tpctl: %v\n%s", err, b)
	}
	return out
}

// Run runs bin with args and returns its standard output and error.
func Run(bin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// NeedRoot skips the test unless it runs as root, which the node harness
// needs.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the node harness changes the host's network and cgroups")
	}
}

// SinkNode is a node running the operator's test environment, with the
// sink image imported and a core instance without a health check.
type SinkNode struct {
	Bin  string
	Node *cluster.Node
	Env  *testenv.Env
	// Conn are the flags that point tpctl at the node and the namespace.
	Conn []string
}

// StartSinkNode builds tpctl and the sink image and starts the node.
func StartSinkNode(ctx context.Context, t testing.TB) *SinkNode {
	t.Helper()
	NeedRoot(t)
	s := &SinkNode{Bin: BuildTpctl(t)}
	sinkTar, err := images.Build(ctx, t.TempDir(), images.Sink())
	if err != nil {
		t.Fatalf("build the sink image: %v", err)
	}
	s.Node = cluster.StartNode(ctx, t, cluster.NodeOptions{Images: []string{sinkTar}, Logf: t.Logf})
	s.Env = testenv.StartEnvOn(ctx, t, s.Node.Kubeconfig(), s.Node.RESTConfig(), testenv.EnvOptions{
		Instance: func(i *v1alpha1.CoreInstance) { i.Spec.HealthCheck.Enabled = ptr.To(false) },
	})
	s.Conn = []string{"--kubeconfig", s.Node.Kubeconfig(), "--namespace", s.Env.Namespace}
	return s
}

// Tpctl runs tpctl with args and the node's connection flags.
func (s *SinkNode) Tpctl(args ...string) (stdout, stderr string, err error) {
	return Run(s.Bin, append(args, s.Conn...)...)
}
