package manage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// A pipeline's files (spec.files: parsers, Lua scripts, CA bundles) live in
// its ConfigMap beside the configuration; the pods see them in
// v1alpha1.FilesDir, so the configuration names one as
// /fluent-bit/etc/tpctl/NAME. They are part of the spec: export and apply
// carry them, and the operator's config hash rolls the pods when one changes.

// FileChange sets and removes files of a pipeline.
type FileChange struct {
	// Set adds files or replaces their content; other files are kept.
	Set map[string]v1alpha1.FileContent
	// Remove drops files; each must exist.
	Remove []string
}

// IsEmpty reports whether the change sets and removes nothing.
func (c FileChange) IsEmpty() bool { return len(c.Set) == 0 && len(c.Remove) == 0 }

// Validate checks the names and sizes of the files set (each on its own;
// ValidatePipeline checks the total) and the names removed.
func (c FileChange) Validate() []string {
	var probs []string
	for _, name := range fileNames(c.Set) {
		probs = append(probs, v1alpha1.ValidateFiles(map[string]v1alpha1.FileContent{name: c.Set[name]})...)
	}
	for _, name := range c.Remove {
		if err := v1alpha1.ValidateFileName(name); err != nil {
			probs = append(probs, err.Error())
		}
		if _, ok := c.Set[name]; ok {
			probs = append(probs, fmt.Sprintf("file %q is both set and removed", name))
		}
	}
	return probs
}

// FileNotFoundError is a file to remove that the pipeline does not have.
type FileNotFoundError struct {
	Pipeline string
	Names    []string
	Existing []string
}

func (e *FileNotFoundError) Error() string {
	msg := fmt.Sprintf("pipeline %q has no file %s", e.Pipeline, strings.Join(e.Names, ", "))
	if len(e.Existing) == 0 {
		return msg + " (it has none)"
	}
	return msg + "; existing: " + strings.Join(e.Existing, ", ")
}

// applyFiles returns files with c applied (files is not modified); nil
// when none are left.
func (c FileChange) applyFiles(files map[string]v1alpha1.FileContent) map[string]v1alpha1.FileContent {
	out := make(map[string]v1alpha1.FileContent, len(files)+len(c.Set))
	for k, v := range files {
		out[k] = v
	}
	for _, k := range c.Remove {
		delete(out, k)
	}
	for k, v := range c.Set {
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// PipelineFile is one file of a pipeline: its name and size in bytes.
type PipelineFile struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// PipelineFiles lists a pipeline's files by name.
func PipelineFiles(p *v1alpha1.Pipeline) []PipelineFile {
	out := make([]PipelineFile, 0, len(p.Spec.Files))
	for _, name := range fileNames(p.Spec.Files) {
		out = append(out, PipelineFile{Name: name, Size: len(p.Spec.Files[name])})
	}
	return out
}

// FilePath is the path of a pipeline's file in its pods.
func FilePath(name string) string { return v1alpha1.FilesDir + "/" + name }

// ReadFiles reads the files of --file flags: NAME=PATH, or PATH alone for a
// file named as PATH's last element. A file larger than
// v1alpha1.MaxFileBytes is refused before it is read whole; so is one that
// is not UTF-8 text (a ConfigMap's data holds text) and a name given twice.
func ReadFiles(specs []string) (map[string]v1alpha1.FileContent, error) {
	out := map[string]v1alpha1.FileContent{}
	var errs []error
	for _, s := range specs {
		name, path, ok := strings.Cut(s, "=")
		if !ok {
			path, name = s, filepath.Base(s)
		}
		if path == "" {
			errs = append(errs, fmt.Errorf("--file %q: needs NAME=PATH or PATH", s))
			continue
		}
		if err := v1alpha1.ValidateFileName(name); err != nil {
			errs = append(errs, fmt.Errorf("--file %s: %w", s, err))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("--file %s: file %q is given twice", s, name))
			continue
		}
		content, err := readFile(name, path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = content
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func readFile(name, path string) (v1alpha1.FileContent, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("file %q: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, v1alpha1.MaxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("file %q: read %s: %w", name, path, err)
	}
	if len(data) > v1alpha1.MaxFileBytes {
		return "", fmt.Errorf("file %q (%s): larger than %d bytes (256 KiB), the most a pipeline file may hold (all files together: %d, 512 KiB)",
			name, path, v1alpha1.MaxFileBytes, v1alpha1.MaxFilesBytes)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("file %q (%s): not UTF-8 text; a pipeline's files are text (parsers, scripts, PEM certificates)", name, path)
	}
	return v1alpha1.FileContent(data), nil
}

// fileNames lists the names of files, sorted.
func fileNames(files map[string]v1alpha1.FileContent) []string {
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Apply applies the change to p, after checking that every file it removes
// exists (a *FileNotFoundError otherwise, and p is left as it was).
func (c PipelineChange) Apply(p *v1alpha1.Pipeline) error {
	if c.Files != nil {
		var missing []string
		for _, name := range c.Files.Remove {
			if _, ok := p.Spec.Files[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return &FileNotFoundError{Pipeline: p.Name, Names: missing, Existing: fileNames(p.Spec.Files)}
		}
	}
	c.ApplyTo(&p.Spec)
	return nil
}

// WritePipelineFiles writes a table of files: name, size and the path the
// configuration names it by; each line starts with indent.
func WritePipelineFiles(w io.Writer, files []PipelineFile, indent string) error {
	if len(files) == 0 {
		_, err := fmt.Fprintln(w, indent+"none")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, indent+"NAME\tSIZE\tPATH")
	for _, f := range files {
		fmt.Fprintf(tw, "%s%s\t%d bytes\t%s\n", indent, f.Name, f.Size, FilePath(f.Name))
	}
	return tw.Flush()
}
