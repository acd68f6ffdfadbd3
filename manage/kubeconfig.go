package manage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// K3sKubeconfig is where the K3s that tpctl installs writes its admin
// kubeconfig.
const K3sKubeconfig = "/etc/rancher/k3s/k3s.yaml"

// DefaultNamespace is used when neither --namespace nor the kubeconfig's
// context names one.
const DefaultNamespace = "default"

// Sources of a kubeconfig, in the order they are tried.
const (
	SourceFlag = "--kubeconfig"
	SourceEnv  = "$KUBECONFIG"
	SourceK3s  = "K3s"
	SourceHome = "~/.kube/config"
)

// Kubeconfig is the kubeconfig file(s) chosen and where the choice came from.
type Kubeconfig struct {
	// Paths holds one file, or the list $KUBECONFIG names (merged in order).
	Paths  []string
	Source string
}

// KubeconfigLocator finds the kubeconfig. Its fields are the environment it
// looks at; the zero value is not usable, see NewKubeconfigLocator.
type KubeconfigLocator struct {
	Getenv  func(string) string
	Home    string
	K3sPath string
	// Readable returns nil when the file exists and can be read.
	Readable func(path string) error
}

// NewKubeconfigLocator returns a locator over the process environment.
func NewKubeconfigLocator() KubeconfigLocator {
	home, _ := os.UserHomeDir() // no home: ~/.kube/config is skipped
	return KubeconfigLocator{Getenv: os.Getenv, Home: home, K3sPath: K3sKubeconfig, Readable: readable}
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// Resolve picks the kubeconfig: the flag value, else $KUBECONFIG (a list
// separated by ':'; files that do not exist are skipped, as kubectl does),
// else the K3s kubeconfig when it can be read, else ~/.kube/config.
func (l KubeconfigLocator) Resolve(flag string) (Kubeconfig, error) {
	if flag != "" {
		if err := l.Readable(flag); err != nil {
			return Kubeconfig{}, fmt.Errorf("read kubeconfig %s (from --kubeconfig): %w", flag, err)
		}
		return Kubeconfig{Paths: []string{flag}, Source: SourceFlag}, nil
	}
	if env := l.Getenv("KUBECONFIG"); env != "" {
		var paths []string
		for _, p := range filepath.SplitList(env) {
			if p != "" && l.Readable(p) == nil {
				paths = append(paths, p)
			}
		}
		if len(paths) == 0 {
			return Kubeconfig{}, fmt.Errorf("$KUBECONFIG is %q but names no readable file", env)
		}
		return Kubeconfig{Paths: paths, Source: SourceEnv}, nil
	}
	var tried []string
	k3sErr := l.Readable(l.K3sPath)
	if k3sErr == nil {
		return Kubeconfig{Paths: []string{l.K3sPath}, Source: SourceK3s}, nil
	}
	tried = append(tried, describeMiss(l.K3sPath, k3sErr))
	if l.Home != "" {
		home := filepath.Join(l.Home, ".kube", "config")
		err := l.Readable(home)
		if err == nil {
			return Kubeconfig{Paths: []string{home}, Source: SourceHome}, nil
		}
		tried = append(tried, describeMiss(home, err))
	}
	hint := "pass --kubeconfig or set $KUBECONFIG"
	if errors.Is(k3sErr, fs.ErrPermission) {
		hint = "run as root to use the K3s kubeconfig, or " + hint
	}
	return Kubeconfig{}, fmt.Errorf("no kubeconfig found (%s): %s", strings.Join(tried, "; "), hint)
}

func describeMiss(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist"
	case errors.Is(err, fs.ErrPermission):
		return path + " is not readable by this user"
	}
	return path + ": " + err.Error()
}

// Connection is a resolved kubeconfig turned into a client configuration.
type Connection struct {
	Kubeconfig Kubeconfig
	REST       *rest.Config
	// Namespace is the one asked for, else the context's, else DefaultNamespace.
	Namespace string
}

// Connect loads the kubeconfig and returns the REST configuration and the
// namespace to work in (namespace overrides the context's when not empty).
func Connect(kc Kubeconfig, namespace string) (Connection, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: kc.Paths}
	if len(kc.Paths) == 1 {
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: kc.Paths[0]}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return Connection{}, fmt.Errorf("load kubeconfig %s (from %s): %w", strings.Join(kc.Paths, ":"), kc.Source, err)
	}
	cfg.UserAgent = "tpctl"
	if namespace == "" {
		ns, _, err := cc.Namespace()
		if err != nil {
			return Connection{}, fmt.Errorf("read the namespace of kubeconfig %s: %w", strings.Join(kc.Paths, ":"), err)
		}
		namespace = ns
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return Connection{Kubeconfig: kc, REST: cfg, Namespace: namespace}, nil
}
