package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tpctl/tpctl/manage"
)

func pipelineExportCmd(d clusterDeps, cf *clusterFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "export [NAME…]",
		Short: "Write pipelines as YAML that `tpctl apply -f` recreates elsewhere",
		Long: `Write the named pipelines (all of the namespace when none is named) as a
multi-document YAML stream of Pipeline objects, for another host or for git.

Only what defines a pipeline is written: apiVersion, kind, name, namespace, the
user's labels and annotations, and the spec as it is. What the API server and
the operator set (uid, resourceVersion, generation, creation time, managed
fields, owner references, status) and tpctl's own annotations (such as the
node's host listeners) are left out. The instance's health-check pipeline is
not exported. A spec that holds a credential in plain text (a proxy URL or
any URL with a password in an env value) is refused: keep it in a Secret.`,
		Example: `  tpctl pipeline export > pipelines.yaml
  tpctl pipeline export syslog fwd -n logs > two.yaml
  tpctl pipeline export | ssh other-host tpctl apply -f -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(d)
			if err != nil {
				return err
			}
			ps, err := manage.ExportPipelines(cmd.Context(), c, args)
			if err != nil {
				return userError(err)
			}
			if len(ps) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "namespace %q has no pipelines to export\n", c.Namespace())
				return nil
			}
			// Render everything first: on an error nothing is written.
			var buf bytes.Buffer
			if err := manage.WriteExport(&buf, ps); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
}
