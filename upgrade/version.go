package upgrade

import (
	"fmt"
	"strconv"
	"strings"
)

// k3sVersion is a K3s release: v1.36.3+k3s1.
type k3sVersion struct {
	major, minor, patch, k3s int
}

// parseK3s reads "v1.36.3+k3s1" (also the first line of `k3s --version`:
// "k3s version v1.36.3+k3s1 (abcdef)"); the "+k3sN" suffix is optional.
func parseK3s(s string) (k3sVersion, error) {
	f := strings.Fields(s)
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			s = f[i+1]
			break
		}
	}
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	var v k3sVersion
	core, build, _ := strings.Cut(s, "+")
	core, _, _ = strings.Cut(core, "-") // a pre-release orders with its release
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("%q is not a K3s version (vMAJOR.MINOR.PATCH+k3sN)", s)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("%q is not a K3s version (vMAJOR.MINOR.PATCH+k3sN)", s)
		}
		nums[i] = n
	}
	v.major, v.minor, v.patch = nums[0], nums[1], nums[2]
	if rest, ok := strings.CutPrefix(build, "k3s"); ok {
		if n, err := strconv.Atoi(rest); err == nil {
			v.k3s = n
		}
	}
	return v, nil
}

// compare orders two K3s versions: -1, 0 or 1.
func (v k3sVersion) compare(o k3sVersion) int {
	for _, d := range [][2]int{{v.major, o.major}, {v.minor, o.minor}, {v.patch, o.patch}, {v.k3s, o.k3s}} {
		switch {
		case d[0] < d[1]:
			return -1
		case d[0] > d[1]:
			return 1
		}
	}
	return 0
}

// semVer is a tpctl or chart version: vMAJOR.MINOR.PATCH[-pre][+build].
type semVer struct {
	major, minor, patch int
	pre                 string
}

// parseSemVer reads a release version; "dev" and other builds without one
// are not versions (ok false).
func parseSemVer(s string) (semVer, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "+")
	core, pre, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return semVer{}, false
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return semVer{}, false
		}
		n[i] = x
	}
	return semVer{major: n[0], minor: n[1], patch: n[2], pre: pre}, true
}

// compare orders two versions: -1, 0 or 1 (a pre-release sorts before its
// release; pre-releases compare as strings).
func (v semVer) compare(o semVer) int {
	for _, d := range [][2]int{{v.major, o.major}, {v.minor, o.minor}, {v.patch, o.patch}} {
		switch {
		case d[0] < d[1]:
			return -1
		case d[0] > d[1]:
			return 1
		}
	}
	switch {
	case v.pre == o.pre:
		return 0
	case v.pre == "":
		return 1
	case o.pre == "":
		return -1
	case v.pre < o.pre:
		return -1
	}
	return 1
}
