package systemd

import (
	"context"
	"fmt"
)

// Manager is what the installer needs from systemd. Every call is bounded by
// its context: starting a Type=notify unit blocks until the service says it
// is ready, which for K3s means a running node.
type Manager interface {
	Reload(ctx context.Context) error
	EnableAndStart(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	StopAndDisable(ctx context.Context, unit string) error
	// ResetFailed is `systemctl reset-failed unit`; a unit systemd does
	// not know is not failed.
	ResetFailed(ctx context.Context, unit string) error
	State(ctx context.Context, unit string) (UnitState, error)
}

// UnitState is a unit's state as systemd reports it.
type UnitState struct {
	Name          string `json:"name"`
	LoadState     string `json:"loadState"`     // loaded, not-found, masked, …
	ActiveState   string `json:"activeState"`   // active, activating, failed, inactive, …
	SubState      string `json:"subState"`      // running, start, dead, …
	UnitFileState string `json:"unitFileState"` // enabled, disabled, …
	FragmentPath  string `json:"fragmentPath,omitempty"`
	MainPID       uint32 `json:"mainPID,omitempty"`
	NRestarts     uint32 `json:"nRestarts"`
	Result        string `json:"result,omitempty"` // success, exit-code, …
}

// Installed reports whether systemd knows a unit file for it.
func (s UnitState) Installed() bool { return s.LoadState == "loaded" }

// Active reports whether the unit is up.
func (s UnitState) Active() bool { return s.ActiveState == "active" }

// Enabled reports whether the unit starts at boot.
func (s UnitState) Enabled() bool {
	return s.UnitFileState == "enabled" || s.UnitFileState == "enabled-runtime"
}

func (s UnitState) String() string {
	return fmt.Sprintf("%s: %s/%s (%s), %s", s.Name, s.ActiveState, s.SubState, s.LoadState, s.UnitFileState)
}

// JobError is a systemd job that did not end in "done".
type JobError struct {
	Verb, Unit, Result string
}

func (e *JobError) Error() string {
	why := map[string]string{
		"canceled":   "the job was cancelled",
		"timeout":    "the job timed out",
		"failed":     "the unit failed",
		"dependency": "a unit it depends on failed",
		"skipped":    "the job did not apply to the unit's state",
	}[e.Result]
	if why == "" {
		why = "result " + e.Result
	}
	return fmt.Sprintf("%s %s: %s (see `journalctl -u %s`)", e.Verb, e.Unit, why, e.Unit)
}

// jobResult turns a job's result into an error.
func jobResult(verb, unit, result string) error {
	if result == "done" {
		return nil
	}
	return &JobError{Verb: verb, Unit: unit, Result: result}
}

// waitJob waits for a job's result on ch, or for ctx. ch must be buffered
// so that systemd's signal is never blocked once nobody waits.
func waitJob(ctx context.Context, verb, unit string, ch <-chan string) error {
	select {
	case r := <-ch:
		return jobResult(verb, unit, r)
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}

// stateFromProperties reads the unit and service properties systemd returns.
func stateFromProperties(unit string, props, svc map[string]any) UnitState {
	str := func(m map[string]any, k string) string {
		v, _ := m[k].(string)
		return v
	}
	u32 := func(m map[string]any, k string) uint32 {
		v, _ := m[k].(uint32)
		return v
	}
	return UnitState{
		Name:          unit,
		LoadState:     str(props, "LoadState"),
		ActiveState:   str(props, "ActiveState"),
		SubState:      str(props, "SubState"),
		UnitFileState: str(props, "UnitFileState"),
		FragmentPath:  str(props, "FragmentPath"),
		MainPID:       u32(svc, "MainPID"),
		NRestarts:     u32(svc, "NRestarts"),
		Result:        str(svc, "Result"),
	}
}
