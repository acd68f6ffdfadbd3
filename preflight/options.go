package preflight

import (
	"fmt"
	"net/netip"
	"path"
	"slices"

	"github.com/tpctl/tpctl/preflight/ports"
)

// CNIs tpctl can set up.
const (
	CNIFlannel = "flannel"
	CNICilium  = "cilium"
)

// Defaults of the K3s network and datastore.
const (
	DefaultClusterCIDR    = "10.42.0.0/16"
	DefaultServiceCIDR    = "10.43.0.0/16"
	DefaultDatastore      = "sqlite"
	DefaultFlannelBackend = "vxlan"
)

var (
	datastores      = []string{"sqlite", "etcd", "k8s-dqlite"}
	flannelBackends = []string{"vxlan", "host-gw", "wireguard-native", "none"}
)

// Options say what will be installed; they choose the port rows, kernel
// options and ranges the checks look at. The zero value is K3s's default
// node: flannel (VXLAN), SQLite, 10.42.0.0/16 and 10.43.0.0/16, data under
// /var/lib/rancher/k3s, the k3s and telemetry-pipeline tables.
type Options struct {
	// Tables names catalog tables; empty means ports.DefaultTables().
	Tables []string
	// CNI is "flannel" (default) or "cilium". cilium enables the condition
	// cni=cilium and adds the kubernetes-cilium table.
	CNI string
	// Datastore is "sqlite" (default), "etcd" or "k8s-dqlite"; it enables
	// the condition datastore=<value>.
	Datastore string
	// FlannelBackend is "vxlan" (default), "host-gw", "wireguard-native" or
	// "none"; with flannel it enables flannel-backend=<value>.
	FlannelBackend string
	// Conditions are extra condition keys ("es-metrics", "kuma-mode=global").
	Conditions []string
	// PortsFiles are user tables (ports.LoadFile); each is selected.
	PortsFiles []string
	// PipelinePorts are the frontend ports of configured pipelines.
	PipelinePorts []ports.PipelinePort
	// ClusterCIDR and ServiceCIDR are the pod and Service ranges
	// (comma-separated for dual stack).
	ClusterCIDR, ServiceCIDR string
	// DataDir is K3s's data directory.
	DataDir string
	// NodeIP is the node address the install sets (nodeIP), or "" when
	// K3s chooses it from the default route.
	NodeIP string
	// ProxyConfigured: the install configuration sets a proxy of its own,
	// so the proxy variables of the environment are not used.
	ProxyConfigured bool
}

func (o Options) cni() string {
	if o.CNI == "" {
		return CNIFlannel
	}
	return o.CNI
}

func (o Options) flannelBackend() string {
	if o.FlannelBackend == "" {
		return DefaultFlannelBackend
	}
	return o.FlannelBackend
}

func (o Options) datastore() string {
	if o.Datastore == "" {
		return DefaultDatastore
	}
	return o.Datastore
}

func (o Options) dataDir() string {
	if o.DataDir == "" {
		return DefaultDataDir
	}
	return path.Clean(o.DataDir)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Validate checks the option values without touching the host.
func (o Options) Validate() error {
	_, err := o.resolve()
	return err
}

// resolved holds parsed options.
type resolved struct {
	cluster, service []netip.Prefix
}

func (o Options) resolve() (resolved, error) {
	var rs resolved
	if c := o.cni(); c != CNIFlannel && c != CNICilium {
		return rs, fmt.Errorf("unknown CNI %q (want flannel or cilium)", c)
	}
	if !slices.Contains(datastores, o.datastore()) {
		return rs, fmt.Errorf("unknown datastore %q (want one of %v)", o.Datastore, datastores)
	}
	if !slices.Contains(flannelBackends, o.flannelBackend()) {
		return rs, fmt.Errorf("unknown flannel backend %q (want one of %v)", o.FlannelBackend, flannelBackends)
	}
	if o.DataDir != "" && !path.IsAbs(o.DataDir) {
		return rs, fmt.Errorf("data dir %q is not an absolute path", o.DataDir)
	}
	var err error
	if rs.cluster, err = parseCIDRs(orDefault(o.ClusterCIDR, DefaultClusterCIDR)); err != nil {
		return rs, fmt.Errorf("cluster CIDR: %w", err)
	}
	if rs.service, err = parseCIDRs(orDefault(o.ServiceCIDR, DefaultServiceCIDR)); err != nil {
		return rs, fmt.Errorf("service CIDR: %w", err)
	}
	for _, c := range rs.cluster {
		for _, s := range rs.service {
			if c.Overlaps(s) {
				return rs, fmt.Errorf("cluster CIDR %s overlaps service CIDR %s", c, s)
			}
		}
	}
	return rs, nil
}

// Selection turns the options into a catalog selection, loading the user's
// tables. It returns every table (built-in first) with the selection.
func (o Options) Selection() ([]ports.Table, ports.Selection, error) {
	all, err := ports.Builtin()
	if err != nil {
		return nil, ports.Selection{}, fmt.Errorf("load built-in port tables: %w", err)
	}
	names := slices.Clone(o.Tables)
	if len(names) == 0 {
		names = ports.DefaultTables()
	}
	if len(o.PortsFiles) > 0 {
		n := len(all)
		if all, err = ports.AddFiles(all, o.PortsFiles); err != nil {
			return nil, ports.Selection{}, fmt.Errorf("ports file: %w", err)
		}
		for _, t := range all[n:] {
			names = append(names, t.Name)
		}
	}
	conds := map[string]bool{"cni=" + o.cni(): true, "datastore=" + o.datastore(): true}
	if o.cni() == CNIFlannel {
		conds["flannel-backend="+o.flannelBackend()] = true
	} else if !slices.Contains(names, ports.TableKubernetesCilium) {
		names = append(names, ports.TableKubernetesCilium)
	}
	for _, c := range o.Conditions {
		conds[c] = true
	}
	extra, err := ports.PipelineRows(o.PipelinePorts)
	if err != nil {
		return nil, ports.Selection{}, fmt.Errorf("pipeline ports: %w", err)
	}
	return all, ports.Selection{Tables: names, Conditions: conds, Extra: extra}, nil
}

// Rows returns the catalog rows the options select.
func (o Options) Rows() ([]ports.Row, error) {
	all, sel, err := o.Selection()
	if err != nil {
		return nil, err
	}
	rows, err := ports.Select(all, sel)
	if err != nil {
		return nil, fmt.Errorf("select port rows: %w", err)
	}
	return rows, nil
}

// DefaultChecks returns every check for the options, in report order. The
// installer runs exactly these before it changes anything. An error means
// the options are invalid (bad CIDR, unknown table, unreadable ports file).
func DefaultChecks(o Options) ([]Check, error) {
	rs, err := o.resolve()
	if err != nil {
		return nil, err
	}
	rows, err := o.Rows()
	if err != nil {
		return nil, err
	}
	allRanges := append(slices.Clone(rs.cluster), rs.service...)
	return []Check{
		privilegedUserCheck(),
		osCheck(),
		archCheck(),
		systemdCheck(),
		kernelVersionCheck{cilium: o.cni() == CNICilium},
		kernelConfigCheck{options: kernelOptions(o)},
		kernelModuleCheck{modules: kernelModules(o)},
		cgroupVersionCheck(),
		cgroupControllersCheck(),
		cpuCheck(),
		memoryCheck(),
		diskCheck(o.dataDir()),
		swapCheck(),
		seLinuxCheck(),
		appArmorCheck(),
		oomScoreAdjCheck(),
		timeSyncCheck(),
		hostnameCheck(),
		resolvConfCheck(),
		defaultRouteCheck(o.NodeIP),
		dropInCheck(),
		proxyCheck(joinPrefixes(rs.cluster), joinPrefixes(rs.service), o.ProxyConfigured),
		existingInstallCheck(),
		cidrCheck("cluster", "--cluster-cidr", rs.cluster, rs.service),
		cidrCheck("service", "--service-cidr", rs.service, rs.cluster),
		firewallCheck(rows, allRanges),
		portCheck{rows: rows, dataDir: o.dataDir()},
	}, nil
}
