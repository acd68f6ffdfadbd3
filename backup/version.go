package backup

import (
	"fmt"

	"github.com/tpctl/tpctl/internal/version"
)

// checkTpctlVersion refuses an archive written by a newer tpctl than the
// running one, or by a version that cannot be compared with it (a
// development build other than the running one).
func checkTpctlVersion(archive, running string) error {
	if archive == running {
		return nil
	}
	a, errA := version.Parse(archive)
	r, errR := version.Parse(running)
	if errA != nil || errR != nil {
		return &VersionError{What: "tpctl version", Archive: archive, Installed: running,
			Reason: "the versions cannot be compared; restore with the tpctl that wrote the archive"}
	}
	if a.Compare(r) > 0 {
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
	a, errA := version.ParseK3s(archive)
	i, errI := version.ParseK3s(installed)
	switch {
	case errA != nil || errI != nil:
		return &VersionError{What: "K3s version", Archive: archive, Installed: installed, Reason: "the versions cannot be compared"}
	case a.Compare(i) > 0:
		return &VersionError{What: "K3s version", Archive: archive, Installed: installed,
			Reason: "the datastore comes from a newer K3s; restoring it would be a downgrade"}
	case !a.SameMinor(i):
		return &VersionError{What: "K3s version", Archive: archive, Installed: installed,
			Reason: fmt.Sprintf("the datastore comes from Kubernetes %d.%d; install that K3s minor to restore it", a.Major(), a.Minor())}
	}
	return nil
}
