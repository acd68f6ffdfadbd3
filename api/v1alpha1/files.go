package v1alpha1

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Limits of a pipeline's files (spec.files). They live in the pipeline's
// ConfigMap beside the configuration (at most MaxConfigBytes); a ConfigMap
// holds at most 1 MiB.
const (
	// MaxFiles bounds the number of files of a pipeline.
	MaxFiles = 32
	// MaxFileBytes bounds one file.
	MaxFileBytes = 256 * 1024
	// MaxFilesBytes bounds all files of a pipeline together.
	MaxFilesBytes = 512 * 1024
	// MaxFileNameLength is the longest ConfigMap key.
	MaxFileNameLength = 253
	// FilesDir is the directory of a pipeline's pods where its configuration
	// and its files are: the configuration names a file as FilesDir/NAME.
	FilesDir = "/fluent-bit/etc/tpctl"
)

var fileNameRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// ReservedFileNames are the configuration's own file names in FilesDir.
var reservedFileNames = []string{"pipeline.yaml", "pipeline.conf"}

// ValidateFileName checks a name of spec.files as the CRD does.
func ValidateFileName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("file name is empty")
	case len(name) > MaxFileNameLength:
		return fmt.Errorf("file name %q: longer than %d characters", name, MaxFileNameLength)
	case !fileNameRE.MatchString(name):
		return fmt.Errorf("file name %q: only letters, digits, '-', '_' and '.' are allowed (no '/': every file lands in %s)", name, FilesDir)
	case name == "." || strings.Contains(name, ".."):
		return fmt.Errorf("file name %q: must not be '.' or contain '..'", name)
	case slices.Contains(reservedFileNames, name):
		return fmt.Errorf("file name %q: it is the configuration's own file name", name)
	}
	return nil
}

// ValidateFiles checks spec.files as the CRD does: names, the size of each
// file and of all together, and their number. It returns every problem.
func ValidateFiles(files map[string]FileContent) []string {
	var probs []string
	if len(files) > MaxFiles {
		probs = append(probs, fmt.Sprintf("%d files: a pipeline has at most %d", len(files), MaxFiles))
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	total := 0
	for _, name := range names {
		if err := ValidateFileName(name); err != nil {
			probs = append(probs, err.Error())
		}
		n := len(files[name])
		total += n
		if n > MaxFileBytes {
			probs = append(probs, fmt.Sprintf("file %q: %d bytes, more than the %d (256 KiB) a file may hold", name, n, MaxFileBytes))
		}
	}
	if total > MaxFilesBytes {
		probs = append(probs, fmt.Sprintf("files: %d bytes together, more than the %d (512 KiB) a pipeline's files may hold", total, MaxFilesBytes))
	}
	return probs
}
