package ports

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteCatalog writes the rows of tables as an aligned text table with the
// columns TABLE PORT PROTO BINDING COMPONENT CONDITION PURPOSE. An empty
// condition reads "always".
func WriteCatalog(w io.Writer, tables []Table) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if _, err := fmt.Fprintln(tw, "TABLE\tPORT\tPROTO\tBINDING\tCOMPONENT\tCONDITION\tPURPOSE"); err != nil {
		return fmt.Errorf("write port catalog: %w", err)
	}
	for _, t := range tables {
		for _, r := range t.Rows {
			cond := r.Condition
			if cond == "" {
				cond = "always"
			}
			if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				t.Name, r.PortString(), r.Protocol, r.Binding, r.Component, cond, r.Purpose); err != nil {
				return fmt.Errorf("write port catalog: %w", err)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write port catalog: %w", err)
	}
	return nil
}
