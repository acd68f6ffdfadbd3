package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// WaitCondition is what --wait waits for.
type WaitCondition string

const (
	// WaitPorts: the operator assigned every port of the current generation.
	WaitPorts WaitCondition = "ports"
	// WaitReady: the pipeline's workload is available for the current
	// generation (implies WaitPorts).
	WaitReady WaitCondition = "ready"
)

// ParseWaitCondition accepts "ports" or "ready".
func ParseWaitCondition(s string) (WaitCondition, error) {
	switch WaitCondition(strings.ToLower(s)) {
	case WaitPorts:
		return WaitPorts, nil
	case WaitReady, "":
		return WaitReady, nil
	}
	return "", fmt.Errorf("wait for %q: want ports or ready", s)
}

// WaitError is a wait that ended without the condition: a timeout, or a
// condition the operator reports as failed. Pipeline is the last state seen.
type WaitError struct {
	Name      string
	Condition WaitCondition
	Reason    string // why it stopped: the operator's reason, or "timeout"
	Message   string
	Pipeline  *v1alpha1.Pipeline
	Err       error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("wait for pipeline %q (%s): %s: %s", e.Name, e.Condition, e.Reason, e.Message)
}

func (e *WaitError) Unwrap() error { return e.Err }

// CheckWait reports whether p satisfies cond for its current generation. A
// non-nil error is a condition the operator reports as failed for good
// (invalid ports or configuration, no frontend left, no such instance).
func CheckWait(p *v1alpha1.Pipeline, cond WaitCondition) (bool, error) {
	ports := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	if ports == nil || ports.ObservedGeneration != p.Generation {
		return false, nil
	}
	if ports.Status != metav1.ConditionTrue {
		if cond == WaitPorts || ports.Reason != v1alpha1.ReasonPortsExhausted {
			return false, &WaitError{Name: p.Name, Condition: cond, Reason: ports.Reason, Message: ports.Message, Pipeline: p}
		}
	}
	if cond == WaitPorts {
		return true, nil
	}
	ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.ObservedGeneration != p.Generation {
		return false, nil
	}
	if ready.Status == metav1.ConditionTrue {
		return true, nil
	}
	switch ready.Reason {
	case v1alpha1.ReasonInvalidPorts, v1alpha1.ReasonInvalidConfig, v1alpha1.ReasonInstanceNotFound:
		return false, &WaitError{Name: p.Name, Condition: cond, Reason: ready.Reason, Message: ready.Message, Pipeline: p}
	}
	return false, nil
}

// WaitPipeline polls the pipeline every interval until cond holds, the
// operator reports a failure, or ctx ends (a *WaitError with reason
// "timeout" carrying the last Ready/PortsAssigned condition).
func (c *Client) WaitPipeline(ctx context.Context, name string, cond WaitCondition, interval time.Duration) (*v1alpha1.Pipeline, error) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	var last *v1alpha1.Pipeline
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := c.GetPipeline(ctx, name)
		switch {
		case err == nil:
			last = p
			done, werr := CheckWait(p, cond)
			if werr != nil {
				return p, werr
			}
			if done {
				return p, nil
			}
		case ctx.Err() == nil:
			var nf *NotFoundError
			if errors.As(err, &nf) {
				return nil, err
			}
			// Other errors (a restarting API server) are retried until the deadline.
		}
		select {
		case <-ctx.Done():
			return last, timeoutError(name, cond, last, ctx.Err())
		case <-t.C:
		}
	}
}

func timeoutError(name string, cond WaitCondition, p *v1alpha1.Pipeline, err error) error {
	e := &WaitError{Name: name, Condition: cond, Reason: "timeout", Pipeline: p, Err: err,
		Message: "the operator has not reported on this generation yet (is the operator running?)"}
	if p == nil {
		e.Message = "the pipeline could not be read"
		return e
	}
	typ := v1alpha1.ConditionReady
	if cond == WaitPorts {
		typ = v1alpha1.ConditionPortsAssigned
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, typ); c != nil && c.ObservedGeneration == p.Generation {
		e.Message = fmt.Sprintf("last %s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
	}
	return e
}
