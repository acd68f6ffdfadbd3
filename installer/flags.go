package installer

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tpctl/tpctl/preflight"
)

// ConfigFlags are the install configuration's flags. Flags the user set win
// over the --config file; unset flags leave it alone.
type ConfigFlags struct {
	File string
	v    Config
	// noProxy is comma-separated on the command line.
	noProxy string
	// registries are the private-registry flags.
	registries registryFlags
	// ProxyEnv names the environment variables the proxy came from (set by
	// Load when neither a proxy flag nor a proxy key was given).
	ProxyEnv []string
}

// Register adds the flags to fs.
func (f *ConfigFlags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.File, "config", "", "install configuration file (YAML); flags override its values")
	fs.StringVar(&f.v.NodeName, "node-name", "", "Kubernetes node name (default: the host name)")
	fs.StringVar(&f.v.NodeIP, "node-ip", "", "IP address the node advertises (default: chosen by K3s)")
	fs.StringVar(&f.v.DataDir, "data-dir", "", "K3s data directory (default "+DefaultDataDir+")")
	fs.StringVar(&f.v.ClusterCIDR, "cluster-cidr", "", "pod network range (default "+DefaultClusterCIDR+")")
	fs.StringVar(&f.v.ServiceCIDR, "service-cidr", "", "Service network range (default "+DefaultServiceCIDR+")")
	fs.StringVar(&f.v.ClusterDNS, "cluster-dns", "", "cluster DNS Service address, inside the service range (default: its 10th address)")
	fs.StringVar(&f.v.NodePortRange, "service-node-port-range", "", "NodePort range (default "+DefaultNodePortRange+")")
	fs.StringVar(&f.v.CNI, "cni", "", "network plugin: flannel (default) or cilium")
	fs.StringSliceVar(&f.v.Disable, "disable", nil, "packaged K3s component not to deploy (repeatable): "+strings.Join(Components(), ", "))
	fs.StringSliceVar(&f.v.TLSSANs, "tls-san", nil, "extra name or address in the API server certificate (repeatable)")
	fs.StringVar(&f.v.HTTPProxy, "http-proxy", "", "HTTP proxy for K3s and containerd")
	fs.StringVar(&f.v.HTTPSProxy, "https-proxy", "", "HTTPS proxy for K3s and containerd")
	fs.StringVar(&f.noProxy, "no-proxy", "", "comma-separated hosts that bypass the proxy (the cluster's own ranges are added)")
	fs.StringArrayVar(&f.v.KubeletArgs, "kubelet-arg", nil, "extra kubelet argument name=value (repeatable)")
	fs.BoolVar(&f.v.AirGap, "airgap", false, "pull no images: use only the staged air-gap images")
	fs.StringVar(&f.v.WriteKubeconfigMode, "write-kubeconfig-mode", "", "octal mode of /etc/rancher/k3s/k3s.yaml (default "+DefaultKubeconfigMode+")")
	fs.StringArrayVar(&f.registries.mirrors, "registry-mirror", nil, "REGISTRY=ENDPOINT: pull REGISTRY's images from the http(s) ENDPOINT (repeatable, in order; * for every registry)")
	fs.StringArrayVar(&f.registries.cas, "registry-ca", nil, "HOST=FILE: trust the PEM CA certificates in FILE for HOST (copied under "+RegistryCertsDir+"; repeatable)")
	fs.StringArrayVar(&f.registries.auths, "registry-auth", nil, "HOST=USER: log in to HOST as USER; the password comes from --registry-password-file or "+RegistryPasswordEnvPrefix+"<HOST> (repeatable)")
	fs.StringArrayVar(&f.registries.passwordFiles, "registry-password-file", nil, "HOST=FILE: read HOST's registry password from FILE (repeatable)")
}

// Load reads the --config file (when given), overlays the flags that were
// set, fills defaults and validates the result as a whole. Without any proxy
// flag or key, the proxy comes from lookupEnv (HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY in either case), as K3s's own installer takes it from its shell.
func (f *ConfigFlags) Load(fs *pflag.FlagSet, readFile func(string) ([]byte, error), hostname func() (string, error), lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	if f.File != "" {
		raw, err := readFile(f.File)
		if err != nil {
			return Config{}, fmt.Errorf("read install configuration %s: %w", f.File, err)
		}
		if c, err = ParseConfig(raw); err != nil {
			return Config{}, fmt.Errorf("%s: %w", f.File, err)
		}
	}
	f.apply(&c, fs.Changed)
	if err := f.registries.apply(&c, readFile, lookupEnv); err != nil {
		return Config{}, err
	}
	f.ProxyEnv = nil
	flagged := fs.Changed("http-proxy") || fs.Changed("https-proxy") || fs.Changed("no-proxy")
	if p := preflight.ProxyFromEnv(lookupEnv); p.Set() && !flagged && !c.hasProxy() {
		var errs []FieldError
		for _, v := range []struct{ name, value string }{{"HTTP_PROXY", p.HTTP}, {"HTTPS_PROXY", p.HTTPS}} {
			if v.value == "" {
				continue
			}
			if msg := checkProxyURL(v.value); msg != "" {
				errs = append(errs, FieldError{Field: v.name + " (from the environment)", Value: redactURL(v.value),
					Message: msg + "; fix or unset it, or give --http-proxy/--https-proxy"})
			}
		}
		if len(errs) > 0 {
			return Config{}, &ValidationError{Fields: errs}
		}
		c.HTTPProxy, c.HTTPSProxy, c.NoProxy = p.HTTP, p.HTTPS, p.NoProxy
		f.ProxyEnv = p.Vars
	}
	c, err := c.Complete(hostname)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	if err := CheckRegistryFiles(c, readFile); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (f *ConfigFlags) apply(c *Config, changed func(string) bool) {
	set := func(flag string, dst *string, v string) {
		if changed(flag) {
			*dst = v
		}
	}
	set("node-name", &c.NodeName, f.v.NodeName)
	set("node-ip", &c.NodeIP, f.v.NodeIP)
	set("data-dir", &c.DataDir, f.v.DataDir)
	set("cluster-cidr", &c.ClusterCIDR, f.v.ClusterCIDR)
	set("service-cidr", &c.ServiceCIDR, f.v.ServiceCIDR)
	set("cluster-dns", &c.ClusterDNS, f.v.ClusterDNS)
	set("service-node-port-range", &c.NodePortRange, f.v.NodePortRange)
	set("cni", &c.CNI, f.v.CNI)
	set("http-proxy", &c.HTTPProxy, f.v.HTTPProxy)
	set("https-proxy", &c.HTTPSProxy, f.v.HTTPSProxy)
	set("write-kubeconfig-mode", &c.WriteKubeconfigMode, f.v.WriteKubeconfigMode)
	if changed("disable") {
		c.Disable = f.v.Disable
	}
	if changed("tls-san") {
		c.TLSSANs = f.v.TLSSANs
	}
	if changed("kubelet-arg") {
		c.KubeletArgs = f.v.KubeletArgs
	}
	if changed("no-proxy") {
		c.NoProxy = splitList(f.noProxy)
	}
	if changed("airgap") {
		c.AirGap = f.v.AirGap
	}
}

// hasProxy reports whether the configuration sets any proxy key.
func (c Config) hasProxy() bool { return c.HTTPProxy != "" || c.HTTPSProxy != "" || len(c.NoProxy) > 0 }

// proxyConfigured reports whether the configuration sets a proxy other than
// the one the environment gives.
func (c Config) proxyConfigured(p preflight.EnvProxy) bool {
	return c.hasProxy() && (c.HTTPProxy != p.HTTP || c.HTTPSProxy != p.HTTPS || !slices.Equal(c.NoProxy, p.NoProxy))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Hostname is os.Hostname, the production node-name source.
func Hostname() (string, error) { return os.Hostname() }
