package main

import (
	"fmt"
	"io"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
)

// filesHelp explains --file and --remove-file in create's and update's help.
const filesHelp = `--file NAME=PATH (or PATH, named as its base name) puts a file beside the
configuration: parsers, Lua scripts, CA bundles. The pods see it as
` + v1alpha1.FilesDir + `/NAME, the directory of the configuration itself, so the
configuration names it by that absolute path (parsers_file, @INCLUDE,
tls.ca_file, a Lua filter's script). Names are letters, digits, '-', '_' and
'.'; a file holds UTF-8 text, at most 256 KiB, and a pipeline's files at most
512 KiB together. A change of a file rolls the pods.`

// writeFilesTable lists a pipeline's files (names, sizes and paths) under
// its description.
func writeFilesTable(w io.Writer, p *v1alpha1.Pipeline) error {
	files := manage.PipelineFiles(p)
	if len(files) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nFiles (beside the configuration in %s):\n", v1alpha1.FilesDir)
	return manage.WritePipelineFiles(w, files, "  ")
}
