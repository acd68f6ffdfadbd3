package manage

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/pipeline"
)

// PortRef names one entry of a pipeline's port list: its position and the
// text it was given as (a --port value, a line of the port editor).
type PortRef struct {
	Index int
	Text  string
}

func (r PortRef) String() string {
	return fmt.Sprintf("port %d (%s)", r.Index+1, r.Text)
}

// DuplicateBackendError is a backend (protocol, port) listed twice in one
// pipeline. Both entries are named.
type DuplicateBackendError struct {
	Port          pipeline.Port
	First, Second PortRef
}

func (e *DuplicateBackendError) Error() string {
	return fmt.Sprintf("duplicate backend %s: %s and %s both use it; each protocol/port may appear once in a pipeline (TCP and UDP may share a number)",
		e.Port, e.First, e.Second)
}

// InvalidError is a pipeline or instance that fails validation before
// anything is sent. Problems lists each one.
type InvalidError struct {
	Kind, Name string
	Problems   []string
}

func (e *InvalidError) Error() string {
	what := strings.ToLower(e.Kind)
	if e.Name != "" {
		what += fmt.Sprintf(" %q", e.Name)
	}
	return fmt.Sprintf("invalid %s: %s", what, strings.Join(e.Problems, "; "))
}

// UnknownInstanceError is a core instance that does not exist. Existing
// lists the instances that do, so the message can name them.
type UnknownInstanceError struct {
	Name      string // empty when none was named and none or several exist
	Namespace string
	Existing  []string
}

func (e *UnknownInstanceError) Error() string {
	switch {
	case e.Name == "" && len(e.Existing) > 1:
		return fmt.Sprintf("namespace %q has several core instances (%s): choose one with --instance",
			e.Namespace, strings.Join(e.Existing, ", "))
	case len(e.Existing) == 0:
		what := "no core instance"
		if e.Name != "" {
			what = fmt.Sprintf("core instance %q not found: no core instance", e.Name)
		}
		return fmt.Sprintf("%s exists in namespace %q (is tpctl installed, and is this the right namespace?)", what, e.Namespace)
	default:
		return fmt.Sprintf("core instance %q not found in namespace %q; existing: %s",
			e.Name, e.Namespace, strings.Join(e.Existing, ", "))
	}
}

// NotFoundError is a pipeline or instance that does not exist.
type NotFoundError struct {
	Kind, Name, Namespace string
	Existing              []string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s %q not found in namespace %q", strings.ToLower(e.Kind), e.Name, e.Namespace)
	switch n := len(e.Existing); {
	case n == 0:
		return msg + " (it has none)"
	case n > maxListed:
		return msg + "; existing: " + strings.Join(e.Existing[:maxListed], ", ") + fmt.Sprintf(", … (%d in all)", n)
	default:
		return msg + "; existing: " + strings.Join(e.Existing, ", ")
	}
}

const maxListed = 10

// AlreadyExistsError is a create of a name that is taken.
type AlreadyExistsError struct {
	Kind, Name, Namespace string
}

func (e *AlreadyExistsError) Error() string {
	return fmt.Sprintf("%s %q already exists in namespace %q (change it with `tpctl %s update %s`)",
		strings.ToLower(e.Kind), e.Name, e.Namespace, strings.ToLower(e.Kind), e.Name)
}

// APIError is a request the API server refused. Reason and Message are the
// server's; Causes are its field-level details.
type APIError struct {
	Op      string // "create pipeline \"a\""
	Reason  metav1.StatusReason
	Code    int32
	Message string
	Causes  []string
	Err     error
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: the API server refused it (%s", e.Op, e.Reason)
	if e.Code != 0 {
		msg += fmt.Sprintf(", %d", e.Code)
	}
	msg += "): " + e.Message
	for _, c := range e.Causes {
		if !strings.Contains(e.Message, c) {
			msg += "; " + c
		}
	}
	return msg
}

func (e *APIError) Unwrap() error { return e.Err }

// apiError turns an error of the API server into an *APIError naming op,
// keeping other errors (network, context) wrapped as they are.
func apiError(op string, err error) error {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return fmt.Errorf("%s: %w", op, err)
	}
	s := st.Status()
	out := &APIError{Op: op, Reason: s.Reason, Code: s.Code, Message: s.Message, Err: err}
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			text := c.Message
			if c.Field != "" {
				text = c.Field + ": " + text
			}
			out.Causes = append(out.Causes, text)
		}
	}
	return out
}
