// Package cli holds what every tpctl command shares: exit codes, the usage-error
// type and the output-format flag. It holds no command logic.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
	"sigs.k8s.io/yaml"
)

// Exit codes of the tpctl binary. They are part of its documented interface.
const (
	ExitOK        = 0 // success
	ExitError     = 1 // the operation failed
	ExitUsage     = 2 // bad flags, arguments or input files; nothing was changed
	ExitPreflight = 3 // preflight found at least one failing check
	ExitInterrupt = 130
)

// UsageError marks an error caused by how tpctl was called.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// CodeError carries a specific exit code with its error.
type CodeError struct {
	Code int
	Err  error
}

func (e *CodeError) Error() string { return e.Err.Error() }
func (e *CodeError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitError
}

// Format is an output format chosen with -o.
type Format string

const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// ParseFormat validates a -o value against the formats a command supports.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	if s == "" {
		return Table, nil
	}
	names := make([]string, 0, len(allowed))
	for _, f := range allowed {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
		names = append(names, string(f))
	}
	return "", Usagef("unknown output format %q (want one of: %s)", s, strings.Join(names, ", "))
}

// Encode writes v as JSON (indented) or YAML.
func Encode(w io.Writer, f Format, v any) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		return fmt.Errorf("format %q cannot encode data", f)
	}
}

// IsTerminal reports whether f is a terminal. /dev/null is a character
// device but not a terminal, so the mode bits are not enough.
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// ColorEnabled reports whether coloured output is wanted on f: a TTY, NO_COLOR
// unset, and TERM not "dumb".
func ColorEnabled(f *os.File) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	return IsTerminal(f)
}
