package main

import (
	"bytes"
	"fmt"
	"strings"

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
any URL with a password in an env value) is refused: keep it in a Secret.
A pipeline's own secrets (tpctl pipeline secret) are not exported: their
names are listed on stderr, to be set again where the file is applied.`,
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
			if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
				return err
			}
			noteSecrets(cmd, c, ps)
			return nil
		},
	}
}

// noteSecrets names, on stderr, the secrets of the exported pipelines that
// the export leaves out (values are never exported).
func noteSecrets(cmd *cobra.Command, c clusterClient, ps []manage.ExportedPipeline) {
	w := cmd.ErrOrStderr()
	for i := range ps {
		name := ps[i].Metadata.Name
		keys, err := c.PipelineSecrets(cmd.Context(), name)
		if err != nil {
			fmt.Fprintf(w, "note: could not list the secrets of pipeline %q (%v); they are not exported either\n", name, err)
			continue
		}
		if len(keys) == 0 {
			continue
		}
		names := make([]string, len(keys))
		for j, k := range keys {
			names[j] = k.Name
		}
		fmt.Fprintf(w, "note: pipeline %q has secrets that are not exported: %s; set them where you apply it (tpctl pipeline secret set %s NAME…)\n",
			name, strings.Join(names, ", "), name)
	}
}
