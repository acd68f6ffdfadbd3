package backup

import (
	"fmt"
	"strconv"
	"strings"
)

// version is a parsed "v1.33.4+k3s1" or "v0.4.0" (the build suffix number
// is k3s's release counter; 0 when absent).
type version struct {
	major, minor, patch, build int
	pre                        string
}

func parseVersion(s string) (version, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	var v version
	if i := strings.IndexByte(s, '+'); i >= 0 {
		b := s[i+1:]
		s = s[:i]
		// The release counter is the build's trailing digits ("k3s1" -> 1).
		digits := b[len(strings.TrimRightFunc(b, func(r rune) bool { return r >= '0' && r <= '9' })):]
		if digits != "" {
			n, err := strconv.Atoi(digits)
			if err != nil {
				return version{}, false
			}
			v.build = n
		}
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = s[i+1:]
		s = s[:i]
	}
	f := strings.Split(s, ".")
	if len(f) != 3 {
		return version{}, false
	}
	nums := []*int{&v.major, &v.minor, &v.patch}
	for i, p := range f {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return version{}, false
		}
		*nums[i] = n
	}
	return v, true
}

// compare orders versions by major, minor, patch, build; a pre-release
// sorts before its release, and two pre-releases by their text.
func (a version) compare(b version) int {
	for _, d := range [][2]int{{a.major, b.major}, {a.minor, b.minor}, {a.patch, b.patch}, {a.build, b.build}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	return strings.Compare(a.pre, b.pre)
}

// checkTpctlVersion refuses an archive written by a newer tpctl than the
// running one, or by a version that cannot be compared with it.
func checkTpctlVersion(archive, running string) error {
	if archive == running {
		return nil
	}
	a, okA := parseVersion(archive)
	r, okR := parseVersion(running)
	if !okA || !okR {
		return &VersionError{What: "tpctl version", Archive: archive, Installed: running,
			Reason: "the versions cannot be compared; restore with the tpctl that wrote the archive"}
	}
	if a.compare(r) > 0 {
		return &VersionError{What: "tpctl version", Archive: archive, Installed: running,
			Reason: "the archive was written by a newer tpctl; restore with that version"}
	}
	return nil
}

// checkK3sVersion refuses a datastore from a newer K3s (a downgrade) or from
// another minor (Kubernetes' storage migrates one minor at a time, with the
// API server of each).
func checkK3sVersion(archive, installed string) error {
	if archive == installed {
		return nil
	}
	a, okA := parseVersion(archive)
	i, okI := parseVersion(installed)
	switch {
	case !okA || !okI:
		return &VersionError{What: "K3s version", Archive: archive, Installed: installed, Reason: "the versions cannot be compared"}
	case a.compare(i) > 0:
		return &VersionError{What: "K3s version", Archive: archive, Installed: installed,
			Reason: "the datastore comes from a newer K3s; restoring it would be a downgrade"}
	case a.major != i.major || a.minor != i.minor:
		return &VersionError{What: "K3s version", Archive: archive, Installed: installed,
			Reason: fmt.Sprintf("the datastore comes from Kubernetes %d.%d; install that K3s minor to restore it", a.major, a.minor)}
	}
	return nil
}
