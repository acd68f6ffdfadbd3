package manage

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// MaxSchedulingEntries bounds --node-selector, --toleration and
// --annotation, as the CRD does.
const MaxSchedulingEntries = 32

// reservedAnnotation matches the annotation keys the CRD refuses in
// spec.podAnnotations besides the operator's own.
var reservedAnnotation = regexp.MustCompile(`^([^/]*[.])?(kubernetes[.]io|k8s[.]io)/`)

// clearsAll reports whether a repeatable flag was given as a single empty
// value, which removes every entry.
func clearsAll(vals []string) bool { return len(vals) == 1 && strings.TrimSpace(vals[0]) == "" }

// ParseNodeSelector parses --node-selector KEY=VALUE entries: label keys
// and values. A single empty entry gives an empty map (remove all).
func ParseNodeSelector(vals []string) (map[string]string, error) {
	return parsePairs("node-selector", vals, func(k, v string) []string {
		return append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...)
	})
}

// ParseAnnotations parses --annotation KEY=VALUE entries for the pipeline's
// pods; keys of tpctl (telemetry.tpctl.dev/) and of Kubernetes
// (kubernetes.io/, k8s.io/ and their subdomains) are refused.
func ParseAnnotations(vals []string) (map[string]string, error) {
	return parsePairs("annotation", vals, func(k, v string) []string {
		probs := validation.IsQualifiedName(k)
		if strings.HasPrefix(k, v1alpha1.Group+"/") {
			probs = append(probs, "keys under "+v1alpha1.Group+"/ are tpctl's own")
		}
		if reservedAnnotation.MatchString(k) {
			probs = append(probs, "keys under kubernetes.io/ and k8s.io/ are reserved for Kubernetes")
		}
		if len(v) > 4096 {
			probs = append(probs, "the value is longer than 4096 bytes")
		}
		return probs
	})
}

func parsePairs(flag string, vals []string, check func(k, v string) []string) (map[string]string, error) {
	m := map[string]string{}
	if clearsAll(vals) {
		return m, nil
	}
	if len(vals) > MaxSchedulingEntries {
		return nil, fmt.Errorf("--%s: at most %d entries, got %d", flag, MaxSchedulingEntries, len(vals))
	}
	for _, s := range vals {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, s)
		}
		if probs := check(k, v); len(probs) > 0 {
			return nil, fmt.Errorf("--%s %q: %s", flag, s, strings.Join(probs, "; "))
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("--%s %q: key %q given twice", flag, s, k)
		}
		m[k] = v
	}
	return m, nil
}

// ParseTolerations parses --toleration entries in the syntax of kubectl
// taint, KEY[=VALUE]:EFFECT: with a value the toleration matches taints of
// that key and value (Equal), without one every taint of the key (Exists).
// EFFECT is NoSchedule, PreferNoSchedule or NoExecute. A single empty entry
// gives an empty list (remove all).
func ParseTolerations(vals []string) ([]corev1.Toleration, error) {
	out := []corev1.Toleration{}
	if clearsAll(vals) {
		return out, nil
	}
	if len(vals) > MaxSchedulingEntries {
		return nil, fmt.Errorf("--toleration: at most %d entries, got %d", MaxSchedulingEntries, len(vals))
	}
	effects := []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
	for _, s := range vals {
		kv, eff, ok := strings.Cut(strings.TrimSpace(s), ":")
		if !ok {
			return nil, fmt.Errorf("--toleration %q: want KEY[=VALUE]:EFFECT, as in dedicated=logs:NoSchedule", s)
		}
		i := slices.IndexFunc(effects, func(e corev1.TaintEffect) bool { return strings.EqualFold(string(e), eff) })
		if i < 0 {
			return nil, fmt.Errorf("--toleration %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", s, eff)
		}
		k, v, hasValue := strings.Cut(kv, "=")
		probs := validation.IsQualifiedName(k)
		if hasValue {
			probs = append(probs, validation.IsValidLabelValue(v)...)
		}
		if len(probs) > 0 {
			return nil, fmt.Errorf("--toleration %q: %s", s, strings.Join(probs, "; "))
		}
		t := corev1.Toleration{Key: k, Operator: corev1.TolerationOpExists, Effect: effects[i]}
		if hasValue {
			t.Operator, t.Value = corev1.TolerationOpEqual, v
		}
		out = append(out, t)
	}
	return out, nil
}

// TolerationText writes t as --toleration takes it (KEY[=VALUE]:EFFECT),
// or in a longer form for what that syntax cannot say.
func TolerationText(t corev1.Toleration) string {
	s := t.Key
	if t.Key == "" {
		s = "*"
	}
	if t.Operator != corev1.TolerationOpExists {
		s += "=" + t.Value
	}
	if t.Effect != "" {
		s += ":" + string(t.Effect)
	}
	if t.TolerationSeconds != nil {
		s += fmt.Sprintf(" (%ds)", *t.TolerationSeconds)
	}
	return s
}

// pairsText writes m as sorted KEY=VALUE entries.
func pairsText(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}
