package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/manage"
)

func newInstanceCmd() *cobra.Command { return newInstanceCmdWith(defaultClusterDeps()) }

func newInstanceCmdWith(d clusterDeps) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:     "instance",
		Aliases: []string{"instances", "ci"},
		Short:   "Inspect and change core instances (proxies, health check)",
		Long: `A core instance groups pipelines: they share its frontend port space, its
proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY in every pipeline pod) and its
health-check pipeline (TCP 2020 by default). tpctl install creates one.`,
		Args: cobra.NoArgs,
	}
	cf.register(cmd)
	cmd.AddCommand(instanceListCmd(d, &cf), instanceGetCmd(d, &cf), instanceUpdateCmd(d, &cf))
	return cmd
}

// withInstanceKind prepares an instance for output: kind set, managed
// fields dropped and any proxy credentials redacted.
func withInstanceKind(c *v1alpha1.CoreInstance) *v1alpha1.CoreInstance {
	c = manage.RedactInstance(c)
	c.APIVersion, c.Kind = v1alpha1.GroupVersion.String(), v1alpha1.KindCoreInstance
	c.ManagedFields = nil
	return c
}

// instanceName returns the named instance, or the only one there is.
func instanceName(cmd *cobra.Command, c clusterClient, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	list, err := c.ListInstances(cmd.Context())
	if err != nil {
		return "", err
	}
	name, err := manage.ResolveInstance("", c.Namespace(), list)
	return name, userError(err)
}

func instanceListCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the core instances of the namespace",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseOutput(output)
			if err != nil {
				return err
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			items, err := c.ListInstances(cmd.Context())
			if err != nil {
				return err
			}
			if f == cli.Table {
				return manage.WriteInstances(cmd.OutOrStdout(), items)
			}
			list := &v1alpha1.CoreInstanceList{Items: make([]v1alpha1.CoreInstance, len(items))}
			list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), v1alpha1.KindCoreInstance+"List"
			for i := range items {
				list.Items[i] = *withInstanceKind(&items[i])
			}
			return cli.Encode(cmd.OutOrStdout(), f, list)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func instanceGetCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get [I]",
		Short: "Show a core instance: proxies, health check, defaults and frontend ports in use",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(output)
			if err != nil {
				return err
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			name, err := instanceName(cmd, c, args)
			if err != nil {
				return err
			}
			inst, err := c.GetInstance(cmd.Context(), name)
			if err != nil {
				return userError(err)
			}
			if f == cli.Table {
				return manage.WriteInstance(cmd.OutOrStdout(), inst)
			}
			return cli.Encode(cmd.OutOrStdout(), f, withInstanceKind(inst))
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func instanceUpdateCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	var fl manage.InstanceFlags
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "update [I] [--http-proxy URL] [--https-proxy URL] [--no-proxy LIST] [--health-check-port P | --no-health-check]",
		Short: "Change a core instance's proxies or health check; only the given flags change",
		Long: `Change a core instance. The proxies reach every pipeline of the instance (its
pods are rolled with the new environment). An empty value clears a proxy.
--health-check-port enables the health-check pipeline on that TCP port;
--no-health-check disables it. Without I, the namespace's only instance.`,
		Example: `  tpctl instance update core --https-proxy http://proxy.example:3128 --no-proxy localhost,.svc,10.0.0.0/8
  tpctl instance update --no-health-check`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseOutput(wf.output)
			if err != nil {
				return err
			}
			ch, err := fl.Change(cmd.Flags())
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			if ch.IsEmpty() {
				return cli.Usagef("nothing to change: give at least one of --http-proxy, --https-proxy, --no-proxy, --health-check-port, --no-health-check")
			}
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			name, err := instanceName(cmd, c, args)
			if err != nil {
				return err
			}
			inst, err := c.UpdateInstance(cmd.Context(), name, ch, manage.WriteOptions{DryRun: wf.dryRun})
			if err != nil {
				return userError(err)
			}
			out := cmd.OutOrStdout()
			if wf.dryRun {
				if f == cli.Table {
					fmt.Fprintln(cmd.ErrOrStderr(), "dry run: the API server accepted this update; nothing was stored")
				}
				return encodeObject(out, f, withInstanceKind(inst))
			}
			if f != cli.Table {
				return encodeObject(out, f, withInstanceKind(inst))
			}
			fmt.Fprintf(out, "core instance %q updated\n", inst.Name)
			return manage.WriteInstance(out, inst)
		},
	}
	fl.Register(cmd.Flags())
	wf.register(cmd, false)
	return cmd
}
