package preflight

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/tpctl/tpctl/preflight/ports"
)

// portCheck yields "Port-<Key>" for every selected catalog row: fail when a
// socket another program owns clashes with the row, naming that program.
// Sockets held by the K3s tpctl installed (its binary, or the binaries it
// unpacks below <data dir>/data/) are not conflicts.
type portCheck struct {
	rows    []ports.Row
	dataDir string
}

func (portCheck) Name() string { return "Ports" }

func (c portCheck) Run(_ context.Context, h *Host) []Result {
	if len(c.rows) == 0 {
		return nil
	}
	tbl, err := h.Sockets()
	if err != nil {
		return []Result{{Name: c.Name(), Severity: Warn,
			Message: fmt.Sprintf("cannot read the socket tables, %d ports not checked: %s", len(c.rows), err),
			Remedy:  "check by hand that the ports are free (ss -lntup)"}}
	}
	ii, _ := h.installInfo()
	ours := func(s ports.Socket) bool {
		if ii == nil || !ii.ByTpctl || s.Exe == "" {
			return false
		}
		if ii.K3sBinary != "" && s.Exe == ii.K3sBinary {
			return true
		}
		return strings.HasPrefix(s.Exe, path.Join(c.dataDir, "data")+"/")
	}
	h.listeners = foreignListeners(tbl, c.rows, ours, h.ephemeralFrom())
	out := make([]Result, 0, len(c.rows))
	for _, row := range c.rows {
		r := Result{Name: "Port-" + row.Key()}
		var clash, own []string
		for _, s := range tbl.Conflicts(row) {
			if ours(s) {
				own = append(own, s.String())
			} else {
				clash = append(clash, s.String())
			}
		}
		where := "on all interfaces"
		if row.Binding == ports.BindLocalhost {
			where = "on loopback"
		}
		switch {
		case len(clash) > 0:
			out = append(out, r.fail(fmt.Sprintf("%s; %s needs it %s", strings.Join(clash, "; "), row.Component, where),
				fmt.Sprintf("stop or reconfigure the program holding %s (ss -lntup lists the listeners)", row.Spec())))
		case len(own) > 0:
			out = append(out, r.pass(fmt.Sprintf("%s free for %s: held by the K3s tpctl installed", row.Spec(), row.Component)))
		default:
			out = append(out, r.pass(fmt.Sprintf("%s free for %s %s", row.Spec(), row.Component, where)))
		}
	}
	return out
}
