package ports

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

//go:embed tables/*.yaml
var builtinFS embed.FS

// Names of the built-in tables.
const (
	TableK3s               = "k3s"
	TableKubernetesCilium  = "kubernetes-cilium"
	TableTelemetryPipeline = "telemetry-pipeline"
	TableKuma              = "kuma"
	TableEventStreams      = "event-streams"
)

// BuiltinNames lists the built-in tables in catalog order.
func BuiltinNames() []string {
	return []string{TableK3s, TableKubernetesCilium, TableTelemetryPipeline, TableKuma, TableEventStreams}
}

// DefaultTables names the tables that apply when a selection names none: the
// node's own K3s ports and Telemetry Pipeline's. Select adds
// kubernetes-cilium to them when the condition cni=cilium is enabled.
func DefaultTables() []string {
	return []string{TableK3s, TableTelemetryPipeline}
}

// Builtin parses and returns the embedded tables in BuiltinNames order. Each
// file tables/NAME.yaml must hold the table NAME.
func Builtin() ([]Table, error) {
	return loadFS(builtinFS, "tables", BuiltinNames())
}

// loadFS reads dir/NAME.yaml for every name, and fails on files that are not
// listed, so that a table cannot be added without being ordered.
func loadFS(fsys fs.FS, dir string, names []string) ([]Table, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("list built-in port tables: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		if !contains(names, name) {
			errs = append(errs, fmt.Errorf("built-in port table file %s is not in the list of built-in tables", e.Name()))
		}
	}
	tables := make([]Table, 0, len(names))
	for _, name := range names {
		file := path.Join(dir, name+".yaml")
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("read built-in port table: %w", err))
			continue
		}
		t, err := Parse(data, file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.Name != name {
			errs = append(errs, fmt.Errorf("%s: holds table %q, want %q", file, t.Name, name))
			continue
		}
		tables = append(tables, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return tables, nil
}
