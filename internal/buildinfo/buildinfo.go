// Package buildinfo carries the version information stamped into the binary at
// link time (see the Makefile) and falls back to what the Go toolchain recorded.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/tpctl/tpctl/internal/buildinfo.Version=…".
var (
	Version = ""
	Commit  = ""
	Date    = ""
	// Variant is set by scripts/release: "release", or "release-nopayload"
	// for a release built without the K3s artifacts. Empty in other builds.
	Variant = ""
)

// Info is the version report of this binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date,omitempty"`
	Dirty     bool   `json:"dirty,omitempty"`
	Variant   string `json:"variant,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the stamped values, completed from the module's build info.
func Get() Info {
	in := Info{
		Version:   Version,
		Commit:    Commit,
		Date:      Date,
		Variant:   Variant,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Dirty = in.Dirty || s.Value == "true"
			}
		}
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	return in
}
