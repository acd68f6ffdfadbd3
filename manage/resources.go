package manage

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Maximum requests and limits of a pipeline container, as the CRD allows.
var (
	MaxCPU    = resource.MustParse("64")
	MaxMemory = resource.MustParse("64Gi")
)

// ResourceChange sets one resource (cpu or memory) of the pipeline
// container: its request and limit, each nil for none. A change replaces
// both, so `--cpu 250m` after `--cpu 250m:1` drops the limit.
type ResourceChange struct {
	Request *resource.Quantity
	Limit   *resource.Quantity
}

// ParseResource parses the value of --cpu or --memory, REQUEST[:LIMIT]:
// "250m" is a request, "250m:1" a request and a limit, ":1" a limit only
// and "" neither (removes both). Each quantity must be above zero and at
// most max, and the request at most the limit. Errors name the flag.
func ParseResource(flag, s string, max resource.Quantity) (ResourceChange, error) {
	var rc ResourceChange
	req, lim, hasLim := strings.Cut(strings.TrimSpace(s), ":")
	if hasLim && strings.TrimSpace(lim) == "" {
		return rc, fmt.Errorf("--%s %q: empty limit after ':' (give REQUEST, REQUEST:LIMIT or :LIMIT)", flag, s)
	}
	parse := func(what, v string) (*resource.Quantity, error) {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, nil
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %s %q is not a quantity (such as %s)", flag, s, what, v, example(flag))
		}
		if q.Sign() <= 0 {
			return nil, fmt.Errorf("--%s %q: %s must be above zero", flag, s, what)
		}
		if q.Cmp(max) > 0 {
			return nil, fmt.Errorf("--%s %q: %s may be at most %s", flag, s, what, max.String())
		}
		return &q, nil
	}
	var err error
	if rc.Request, err = parse("request", req); err != nil {
		return ResourceChange{}, err
	}
	if rc.Limit, err = parse("limit", lim); err != nil {
		return ResourceChange{}, err
	}
	if rc.Request != nil && rc.Limit != nil && rc.Request.Cmp(*rc.Limit) > 0 {
		return ResourceChange{}, fmt.Errorf("--%s %q: the request may not be above the limit", flag, s)
	}
	return rc, nil
}

func example(flag string) string {
	if flag == "memory" {
		return "128Mi or 1Gi"
	}
	return "250m or 2"
}

// applyResource writes rc for name into r, removing what rc leaves nil.
func (rc ResourceChange) applyTo(r *corev1.ResourceRequirements, name corev1.ResourceName) {
	set := func(l *corev1.ResourceList, q *resource.Quantity) {
		if q == nil {
			if *l != nil {
				delete(*l, name)
				if len(*l) == 0 {
					*l = nil
				}
			}
			return
		}
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = q.DeepCopy()
	}
	set(&r.Requests, rc.Request)
	set(&r.Limits, rc.Limit)
}

// ResourcesText describes the cpu and memory of r as "cpu 250m (limit 1),
// memory 128Mi", or "-" when nothing is set.
func ResourcesText(r corev1.ResourceRequirements) string {
	var parts []string
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		switch {
		case hasReq && hasLim:
			parts = append(parts, fmt.Sprintf("%s %s (limit %s)", name, req.String(), lim.String()))
		case hasReq:
			parts = append(parts, fmt.Sprintf("%s %s", name, req.String()))
		case hasLim:
			parts = append(parts, fmt.Sprintf("%s limit %s", name, lim.String()))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
