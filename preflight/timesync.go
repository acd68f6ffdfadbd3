package preflight

import (
	"context"
	"fmt"
	"strings"
)

// timeDaemons are the comm names of time-synchronisation daemons (comm is
// cut to 15 characters: "systemd-timesyncd" shows as "systemd-timesyn").
var timeDaemons = []string{"systemd-timesyn", "chronyd", "ntpd", "openntpd", "ntpsec", "ptp4l", "phc2sys"}

// timeSyncCheck is "TimeSync": certificates and the datastore's leases need
// a correct clock. The kernel's own flag (adjtimex) is the authority;
// systemd-timesyncd's marker file and running daemons explain its state.
func timeSyncCheck() Check {
	return checkFunc{name: "TimeSync", run: func(_ context.Context, h *Host, r Result) Result {
		var daemons []string
		for _, p := range h.running(timeDaemons...) {
			daemons = append(daemons, fmt.Sprintf("%s (pid %d)", p.Comm, p.PID))
		}
		synced, err := h.ClockSynced()
		if err == nil && synced {
			msg := "the kernel reports the clock as synchronised"
			if len(daemons) > 0 {
				msg += " by " + strings.Join(daemons, ", ")
			}
			return r.pass(msg)
		}
		if h.Exists("/run/systemd/timesync/synchronized") {
			return r.pass("systemd-timesyncd reports the clock as synchronised")
		}
		remedy := "enable time synchronisation (timedatectl set-ntp true, or install and start chrony)"
		if err != nil {
			return r.warn(fmt.Sprintf("cannot ask the kernel whether the clock is synchronised: %s", err), remedy)
		}
		if len(daemons) > 0 {
			return r.warn(fmt.Sprintf("the clock is not synchronised yet although %s is running", strings.Join(daemons, ", ")),
				"wait for the time daemon to synchronise, and check that it reaches its servers (timedatectl timesync-status, chronyc tracking)")
		}
		return r.warn("the clock is not synchronised and no time daemon (systemd-timesyncd, chronyd, ntpd) is running", remedy)
	}}
}
