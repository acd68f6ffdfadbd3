// Package version parses and orders the versions tpctl compares: its own
// release (and its charts'), and K3s releases.
package version

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Release is a tpctl or chart version, "v0.4.0" or "0.4.0-rc.1": semantic
// versioning, the "v" optional.
type Release struct {
	v *semver.Version
}

// Parse reads a release version. A development build ("dev", a bare commit)
// is not one and returns an error: callers decide what an unknown version
// means to them.
func Parse(s string) (Release, error) {
	v, err := strict(s)
	if err != nil {
		return Release{}, fmt.Errorf("%q is not a release version (vMAJOR.MINOR.PATCH[-pre]): %w", s, err)
	}
	return Release{v: v}, nil
}

// Compare orders a and b, -1, 0 or 1, as semantic versioning says: a
// pre-release sorts before its release, pre-release identifiers compare
// numerically when numeric, and build metadata is ignored.
func (a Release) Compare(b Release) int { return a.v.Compare(b.v) }

// String returns the version as parsed.
func (a Release) String() string {
	if a.v == nil {
		return ""
	}
	return a.v.Original()
}

// K3s is a K3s release, "v1.36.3+k3s1": a Kubernetes version and K3s's
// release counter in its build metadata.
type K3s struct {
	v *semver.Version
	// Release is the N of "+k3sN"; 0 when there is none.
	Release int
}

// ParseK3s reads "v1.36.3+k3s1", or the output of `k3s --version`, whose
// first line is "k3s version v1.36.3+k3s1 (abcdef)". The "+k3sN" suffix is
// optional.
func ParseK3s(s string) (K3s, error) {
	f := strings.Fields(s)
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			s = f[i+1]
			break
		}
	}
	v, err := strict(s)
	if err != nil {
		return K3s{}, fmt.Errorf("%q is not a K3s version (vMAJOR.MINOR.PATCH+k3sN): %w", strings.TrimSpace(s), err)
	}
	k := K3s{v: v}
	if rest, ok := strings.CutPrefix(v.Metadata(), "k3s"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
			k.Release = n
		}
	}
	return k, nil
}

// Compare orders a and b, -1, 0 or 1: by Kubernetes version (semantic
// versioning, a pre-release before its release), then by the K3s release
// counter, which semantic versioning alone would ignore (v1.36.3+k3s2 comes
// after v1.36.3+k3s1).
func (a K3s) Compare(b K3s) int {
	if c := a.v.Compare(b.v); c != 0 {
		return c
	}
	switch {
	case a.Release < b.Release:
		return -1
	case a.Release > b.Release:
		return 1
	}
	return 0
}

// Major is the Kubernetes major version.
func (a K3s) Major() uint64 { return a.v.Major() }

// Minor is the Kubernetes minor version.
func (a K3s) Minor() uint64 { return a.v.Minor() }

// Patch is the Kubernetes patch version.
func (a K3s) Patch() uint64 { return a.v.Patch() }

// Prerelease is the pre-release part ("rc1" of v1.36.0-rc1+k3s1), or "".
func (a K3s) Prerelease() string { return a.v.Prerelease() }

// String returns the version as parsed, without the `k3s --version` text
// around it.
func (a K3s) String() string {
	if a.v == nil {
		return ""
	}
	return "v" + a.v.Original()
}

// SameMinor reports whether a and b are the same Kubernetes major.minor.
func (a K3s) SameMinor(b K3s) bool { return a.Major() == b.Major() && a.Minor() == b.Minor() }

// SkipsMinor reports whether going from from to to crosses more than one
// Kubernetes minor upward or changes the major version: Kubernetes
// upgrades one minor at a time.
func SkipsMinor(from, to K3s) bool {
	return from.Major() != to.Major() || to.Minor() > from.Minor()+1
}

// strict parses a semantic version with an optional leading "v".
func strict(s string) (*semver.Version, error) {
	return semver.StrictNewVersion(strings.TrimPrefix(strings.TrimSpace(s), "v"))
}
