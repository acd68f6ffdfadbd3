package operator

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/pipeline"
	"github.com/tpctl/tpctl/preflight/ports"
)

// RESTConfig returns the connection to the API server: the kubeconfig file
// when one is named, else $KUBECONFIG or ~/.kube/config when present, else
// the in-cluster service account.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "tpctl-operator"
	return cfg, nil
}

// ParsePortRange reads "30000-32767".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return PortRange{}, fmt.Errorf("port range %q: want FIRST-LAST", s)
	}
	a, err := pipeline.ParsePortNumber(lo)
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	b, err := pipeline.ParsePortNumber(hi)
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	if a > b {
		return PortRange{}, fmt.Errorf("port range %q: first port is above the last", s)
	}
	return PortRange{Min: a, Max: b}, nil
}

func (r PortRange) String() string {
	return strconv.Itoa(int(r.Min)) + "-" + strconv.Itoa(int(r.Max))
}

// ReservedPorts builds Options.Reserved: the host-bound K3s rows of the
// built-in catalog under the given node conditions ("cni=cilium", …), the
// node ports of the enabled packaged components (see
// PackagedComponentPorts), plus extra ports in ParseReservedPort syntax, or
// as "tcp/22=sshd" naming the program on the node that serves the port.
func ReservedPorts(conditions, components, extra []string) (pipeline.PortSet, error) {
	tables, err := ports.Builtin()
	if err != nil {
		return nil, fmt.Errorf("load the built-in port tables: %w", err)
	}
	conds := map[string]bool{}
	for _, c := range conditions {
		conds[c] = true
	}
	set, err := NodeReservedPorts(tables, conds)
	if err != nil {
		return nil, err
	}
	packaged, err := PackagedComponentPorts(components)
	if err != nil {
		return nil, err
	}
	set.Merge(packaged)
	for _, s := range extra {
		if strings.Contains(s, "=") {
			// "tcp/22=sshd": a program on the node serves it (the
			// installer passes what preflight saw).
			ls, err := pipeline.ParseHostListeners(s)
			if err != nil || len(ls) != 1 {
				return nil, fmt.Errorf("reserved port %q: want PROTOCOL/PORT or PROTOCOL/PORT=PROGRAM", s)
			}
			set.Hold(ls[0].Port, pipeline.Hold{By: "host program " + ls[0].Program + " (serves it on the node)"})
			continue
		}
		p, err := ParseReservedPort(s)
		if err != nil {
			return nil, err
		}
		set.Hold(p, pipeline.Hold{By: "the operator's --reserve list"})
	}
	return set, nil
}

// OwnNamespace is the namespace the operator runs in: $POD_NAMESPACE, else
// the service account's namespace file, else "".
func OwnNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
