package cluster

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed versions.env
var versionsEnv string

// Versions are the pinned versions of the test binaries (test/cluster/versions.env,
// shared with scripts/test-deps).
type Versions struct {
	Kubernetes string
	Kine       string
	CoreDNS    string
	// Containerd is the containerd 2 release a Node runs (containerd,
	// containerd-shim-runc-v2 and ctr built from
	// github.com/containerd/containerd/v2), the one the K3s stand-in runs.
	Containerd string
}

// ParseVersions reads KEY=value lines; # starts a comment.
func ParseVersions(text string) (Versions, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || v == "" {
			return Versions{}, fmt.Errorf("versions line %d: want KEY=value, got %q", n, line)
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		return Versions{}, fmt.Errorf("read versions: %w", err)
	}
	v := Versions{Kubernetes: vals["K8S_VERSION"], Kine: vals["KINE_VERSION"], CoreDNS: vals["COREDNS_VERSION"],
		Containerd: vals["CONTAINERD_VERSION"]}
	if v.Kubernetes == "" || v.Kine == "" || v.CoreDNS == "" || v.Containerd == "" {
		return Versions{}, fmt.Errorf("versions: K8S_VERSION, KINE_VERSION, COREDNS_VERSION and CONTAINERD_VERSION are required, got %+v", v)
	}
	return v, nil
}

// PinnedVersions returns the versions this package was built with.
func PinnedVersions() Versions {
	v, err := ParseVersions(versionsEnv)
	if err != nil {
		panic(err) // the embedded file is part of the source tree
	}
	return v
}

// Binaries locates the test binaries built by scripts/test-deps.
type Binaries struct {
	Dir      string
	Versions Versions
}

// ErrMissingBinaries is wrapped by FindBinaries and Path when binaries are
// not built yet.
var ErrMissingBinaries = errors.New("test binaries missing: run scripts/test-deps")

// FindBinaries resolves the binary directory: $TPCTL_TEST_BIN, else .cache/bin
// under the root of the module that contains the working directory.
func FindBinaries() (Binaries, error) {
	b := Binaries{Dir: os.Getenv("TPCTL_TEST_BIN"), Versions: PinnedVersions()}
	if b.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Binaries{}, fmt.Errorf("working directory: %w", err)
		}
		root, err := moduleRoot(wd)
		if err != nil {
			return Binaries{}, err
		}
		b.Dir = filepath.Join(root, ".cache", "bin")
	}
	return b, nil
}

// moduleRoot walks up from dir to the directory holding the product's go.mod.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/tpctl/tpctl\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find module root above %s (set TPCTL_TEST_BIN): %w", dir, ErrMissingBinaries)
		}
	}
}

// Path returns the path of a binary (kube-apiserver, kubelet, …, kine,
// coredns, containerd, containerd-shim-runc-v2, ctr), checking that it
// exists.
func (b Binaries) Path(name string) (string, error) {
	var v string
	switch name {
	case "kine":
		v = b.Versions.Kine
	case "coredns":
		v = b.Versions.CoreDNS
	case "containerd", "containerd-shim-runc-v2", "ctr":
		v = b.Versions.Containerd
	default:
		v = b.Versions.Kubernetes
	}
	p := filepath.Join(b.Dir, name+"-"+v)
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode().Perm()&0o100 == 0 {
		return "", fmt.Errorf("%s %s not found at %s: %w", name, v, p, ErrMissingBinaries)
	}
	return p, nil
}

// Require resolves every named binary, failing on the first missing one.
func (b Binaries) Require(names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		p, err := b.Path(n)
		if err != nil {
			return nil, err
		}
		out[n] = p
	}
	return out, nil
}
