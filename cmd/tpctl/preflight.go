package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/preflight"
)

func newPreflightCmd() *cobra.Command {
	var (
		ignore []string
		output string
		opts   preflight.Options
	)
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check this host before installing (kernel, cgroups, resources, ports, …)",
		Long: `Check this host against everything the telemetry-pipeline appliance needs,
without changing anything: privileges, OS and architecture, systemd, kernel
version, options and modules, cgroup version and controllers, CPU, memory and
free disk under the K3s data dir, swap, SELinux, AppArmor, firewall, time
synchronisation, DNS (resolv.conf as K3s picks it), a default route (unless
--node-ip), K3s config drop-ins (/etc/rancher/k3s/config.yaml.d), host name, existing K3s/Kubernetes/container
runtimes, cluster and service CIDR clashes, proxy variables, CAP_SYS_RESOURCE,
and every port of the selected catalog tables (see "tpctl preflight ports").

Every result has a stable NAME, shown in the CHECK column and in the "name"
field of -o json, for example IsPrivilegedUser, Systemd, Memory, CgroupVersion,
KernelConfig-CONFIG_VXLAN, KernelModule-br_netfilter, CIDR-cluster,
Port-6443-TCP. The name is also the ignore key: --ignore-preflight-errors=NAME,...
turns those failures into warnings (they stay in the report, marked ignored);
"all" ignores every failure. Names are case-insensitive.

Exit codes:
  0  no check fails (warnings allowed)
  2  usage error: bad flag, CIDR, table name or ports file (nothing checked)
  3  at least one check still fails after --ignore-preflight-errors`,
		Example: `  tpctl preflight
  tpctl preflight --cni cilium -o json
  tpctl preflight --ignore-preflight-errors=Systemd,Port-10250-TCP
  tpctl preflight --table k3s --table kuma --condition kuma-mode=standalone
  tpctl preflight --ports-file ./my-ports.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return &cli.UsageError{Err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := cli.ParseFormat(output, cli.Table, cli.JSON)
			if err != nil {
				return err
			}
			checks, err := preflight.DefaultChecks(opts)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			set := preflight.ParseIgnoreSet(ignore...)
			rep := preflight.Run(cmd.Context(), checks, preflight.NewHost("/"), set)
			for _, k := range set.Unused(rep) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --ignore-preflight-errors=%s matches no check\n", k)
			}
			w := cmd.OutOrStdout()
			if f == cli.JSON {
				err = preflight.WriteJSON(w, rep)
			} else {
				to := preflight.TableOptions{}
				if out, ok := w.(*os.File); ok {
					to.Color = cli.ColorEnabled(out)
					if cli.IsTerminal(out) {
						to.Width = terminalWidth(out)
					}
				}
				err = preflight.WriteTable(w, rep, to)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &cli.CodeError{Code: cli.ExitPreflight,
					Err: fmt.Errorf("preflight: %d check(s) failed", rep.Summary.Fail)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&ignore, "ignore-preflight-errors", nil, "result names whose failures become warnings (comma-separated, or all)")
	fl.StringVarP(&output, "output", "o", "table", "output format: table|json")
	fl.StringArrayVar(&opts.Tables, "table", nil, "port catalog table to check (repeatable; default: k3s, telemetry-pipeline)")
	fl.StringArrayVar(&opts.PortsFiles, "ports-file", nil, "extra port table in YAML, same schema as the catalog (repeatable)")
	fl.StringVar(&opts.CNI, "cni", preflight.CNIFlannel, "CNI: flannel|cilium (cilium adds the kubernetes-cilium table)")
	fl.StringVar(&opts.Datastore, "datastore", preflight.DefaultDatastore, "datastore: sqlite|etcd|k8s-dqlite")
	fl.StringVar(&opts.FlannelBackend, "flannel-backend", preflight.DefaultFlannelBackend, "flannel backend: vxlan|host-gw|wireguard-native|none")
	fl.StringArrayVar(&opts.Conditions, "condition", nil, "enable a catalog condition, e.g. es-metrics or kuma-mode=global (repeatable)")
	fl.StringVar(&opts.ClusterCIDR, "cluster-cidr", preflight.DefaultClusterCIDR, "pod network range (comma-separated for dual stack)")
	fl.StringVar(&opts.ServiceCIDR, "service-cidr", preflight.DefaultServiceCIDR, "Service range (comma-separated for dual stack)")
	fl.StringVar(&opts.NodeIP, "node-ip", "", "node address the install sets (without it K3s needs a default route to choose one)")
	fl.StringVar(&opts.DataDir, "data-dir", preflight.DefaultDataDir, "K3s data directory (free space is checked there)")
	cmd.AddCommand(newPreflightPortsCmd())
	return cmd
}

// terminalWidth returns the column count of a terminal, 0 when unknown.
func terminalWidth(f *os.File) int {
	var ws struct{ Row, Col, X, Y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return 0
	}
	return int(ws.Col)
}
