package installer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tpctl/tpctl/charts"
)

// A release step's undo is an uninstall step that says what it does.
var (
	_ Undoer        = (*releaseStep)(nil)
	_ UndoDescriber = (*releaseStep)(nil)
)

// UndoDescribe says what uninstall does with the release.
func (s *releaseStep) UndoDescribe() string {
	what := fmt.Sprintf("Helm uninstall of release %s/%s", s.namespace, s.release)
	if s.chart == charts.CoreInstance {
		if s.r.env.keepData {
			return fmt.Sprintf("nothing: release %s/%s, its CoreInstance and every Pipeline stay with the kept data", s.namespace, s.release)
		}
		what += ", then delete its CoreInstance and every Pipeline of it"
	}
	if s.chart == charts.Operator {
		if s.r.env.keepData {
			what += "; the tpctl CRDs stay with the kept data"
		} else {
			what += ", then delete the tpctl CRDs (" + strings.Join(TpctlCRDs(), ", ") + ") and with them every CoreInstance and Pipeline"
		}
	}
	return what + "; skipped when the API server cannot be reached"
}

// Undone: the release is gone (and, for the operator when the data goes,
// the CRDs too), or the API cannot be reached (K3s does not run: the
// release goes with the cluster's data, or stays with the kept data).
func (s *releaseStep) Undone(ctx context.Context) (bool, error) {
	s.note = ""
	if s.chart == charts.CoreInstance && s.r.env.keepData {
		s.note = fmt.Sprintf("release %s/%s, its CoreInstance and every Pipeline stay with the kept data", s.namespace, s.release)
		return true, nil
	}
	if err := s.r.reachable(ctx); err != nil {
		s.note = "the API server cannot be reached (" + err.Error() + "); "
		if s.r.env.keepData {
			s.note += "the release stays in the kept data dir"
		} else {
			s.note += "the release goes with the cluster's data"
		}
		return true, nil
	}
	h, err := s.helm(nil, false)
	if err != nil {
		return false, err
	}
	cur, err := h.Current(ctx)
	if err != nil || cur != nil {
		return false, err
	}
	if s.chart == charts.CoreInstance {
		api, err := s.r.api()
		if err != nil {
			return false, err
		}
		names, err := api.ReleaseInstances(ctx, s.namespace, s.release)
		if err != nil || len(names) > 0 {
			return false, err
		}
	}
	if s.chart == charts.Operator && !s.r.env.keepData {
		api, err := s.r.api()
		if err != nil {
			return false, err
		}
		crds, err := api.CRDs(ctx)
		if err != nil || len(crds) > 0 {
			return false, err
		}
	}
	return true, nil
}

// Undo uninstalls the release. When the cluster's data goes as well, a
// failure is a warning: the release goes with the data.
func (s *releaseStep) Undo(ctx context.Context, ev Events) error {
	h, err := s.helm(ev, false)
	if err != nil {
		return err
	}
	deleteCRDs := s.chart == charts.Operator && !s.r.env.keepData
	err = h.Uninstall(ctx, deleteCRDs)
	var instances []string
	if err == nil && s.chart == charts.CoreInstance {
		instances, err = s.deleteInstances(ctx, ev)
	}
	if err != nil {
		if s.r.env.keepData || ctx.Err() != nil {
			return err
		}
		logf(ev, true, "uninstall release %s/%s: %s; it goes with the cluster's data", s.namespace, s.release, err)
		summarize(ev, "release %s/%s left to the data dir's removal", s.namespace, s.release)
		return nil
	}
	switch {
	case len(instances) > 0:
		summarize(ev, "release %s/%s removed, and CoreInstance %s with every Pipeline of it", s.namespace, s.release, strings.Join(instances, ", "))
	case deleteCRDs:
		summarize(ev, "release %s/%s and the tpctl CRDs removed", s.namespace, s.release)
	default:
		summarize(ev, "release %s/%s removed", s.namespace, s.release)
	}
	return nil
}

// deleteInstances deletes the CoreInstances the core-instance release made
// (Helm keeps them when the release goes) and every Pipeline of them, and
// waits until they are gone, at most the Helm timeout. It returns them.
func (s *releaseStep) deleteInstances(ctx context.Context, ev Events) ([]string, error) {
	api, err := s.r.api()
	if err != nil {
		return nil, err
	}
	names, err := api.ReleaseInstances(ctx, s.namespace, s.release)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	limit := s.r.Timeout
	if limit <= 0 {
		limit = DefaultHelmTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, name := range names {
		ev.Emit(Event{Type: EventProgress, Message: fmt.Sprintf("deleting CoreInstance %s/%s and every Pipeline of it", s.namespace, name)})
		for {
			left, err := api.DeleteInstance(ctx, s.namespace, name)
			if err != nil {
				return nil, err
			}
			if left == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("CoreInstance %s/%s and its pipelines: %d object(s) still there after %s: %w", s.namespace, name, left, limit, ctx.Err())
			case <-time.After(s.r.env.Poll):
			}
		}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.namespace + "/" + n
	}
	return out, nil
}

// restrictedNamespaceLabels enforce, warn about and audit the restricted
// Pod Security Standard (latest version) in a namespace.
func restrictedNamespaceLabels() map[string]string {
	out := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		out["pod-security.kubernetes.io/"+mode] = "restricted"
		out["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	return out
}
