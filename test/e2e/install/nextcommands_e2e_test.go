//go:build e2e

package install

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tpctl/tpctl/installer"
)

var summaryCommandRE = regexp.MustCompile("`((?:tpctl|kubectl) [^`]*)`")

// nextCommandsSucceed: every command the install's summary tells the user
// to run next succeeds as printed, right after install returned. Templates
// (NAME, FILE) and commands that change the node or need a terminal
// (uninstall, install, tui) are left to the tests that run them.
func (e *e2e) nextCommandsSucceed(t *testing.T, r tpctlRun) {
	t.Helper()
	ctx := e.ctx(t, 3*time.Minute)
	seen := map[string]bool{}
	for _, ev := range r.events {
		if ev.Type != installer.EventLog {
			continue
		}
		for _, m := range summaryCommandRE.FindAllStringSubmatch(ev.Message, -1) {
			cmd := m[1]
			if seen[cmd] {
				continue
			}
			seen[cmd] = true
			args := strings.Fields(cmd)
			switch {
			case strings.ContainsAny(cmd, "[]") || regexp.MustCompile(`\b[A-Z]{3,}\b`).MatchString(cmd):
				t.Logf("next command %q is a template: the pipeline tests run it filled in", cmd)
				continue
			case args[0] == "tpctl" && (args[1] == "uninstall" || args[1] == "install" || args[1] == "tui"):
				t.Logf("next command %q changes the node or needs a terminal: its own tests run it", cmd)
				continue
			}
			if args[0] == "tpctl" {
				args[0] = tpctlBin
			}
			out, err := e.h.Exec(ctx, args...)
			if assert.NoError(t, err, "the summary's next command %q fails: %s", cmd, out) {
				t.Logf("next command %q succeeded", cmd)
			}
		}
	}
	assert.NotEmpty(t, seen, "the install summary names no command to run next")
}
