// Package systemd renders unit files with go-systemd's unit package and
// manages units over D-Bus (Manager). The installer writes the K3s unit with
// Render and starts it through a Manager; tests use the pure parts here and
// the booted-container host test exercises the D-Bus implementation.
package systemd

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// ManagedKey marks a unit file written by tpctl. systemd ignores keys that
// start with "X-", so the marker costs nothing at run time.
const ManagedKey = "X-Tpctl-Managed"

// header is the comment above every unit tpctl writes.
const header = "# Written by tpctl. Changes are overwritten by `tpctl install`;\n# `tpctl uninstall` removes this file.\n"

// Opt builds one unit option.
func Opt(section, name, value string) *unit.UnitOption {
	return unit.NewUnitOption(section, name, value)
}

// Render serialises opts (section order as first seen, option order kept)
// under tpctl's header, and adds the managed marker to [Unit].
func Render(opts []*unit.UnitOption) ([]byte, error) {
	all := make([]*unit.UnitOption, 0, len(opts)+1)
	marked := false
	for _, o := range opts {
		if o.Section == "" || o.Name == "" {
			return nil, fmt.Errorf("render unit: option %q=%q has no section or name", o.Name, o.Value)
		}
		if strings.ContainsAny(o.Value, "\n\r") {
			return nil, fmt.Errorf("render unit: option %s.%s holds a line break", o.Section, o.Name)
		}
		all = append(all, o)
		if !marked && o.Section == "Unit" {
			// Keep the marker inside [Unit], after its first option.
			all = append(all, Opt("Unit", ManagedKey, "true"))
			marked = true
		}
	}
	if !marked {
		all = append([]*unit.UnitOption{Opt("Unit", ManagedKey, "true")}, all...)
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	if _, err := io.Copy(&buf, unit.Serialize(all)); err != nil {
		return nil, fmt.Errorf("render unit: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse reads a unit file into options.
func Parse(content []byte) ([]*unit.UnitOption, error) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("parse unit file: %w", err)
	}
	return opts, nil
}

// IsManaged reports whether a unit file carries tpctl's marker. A file that
// does not parse is not tpctl's.
func IsManaged(content []byte) bool {
	opts, err := Parse(content)
	if err != nil {
		return false
	}
	for _, o := range opts {
		if o.Section == "Unit" && o.Name == ManagedKey && o.Value == "true" {
			return true
		}
	}
	return false
}

// Values returns every value of section.name, in file order.
func Values(opts []*unit.UnitOption, section, name string) []string {
	var out []string
	for _, o := range opts {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}
