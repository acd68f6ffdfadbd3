package manage

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// AnnotationLastApplied is kubectl's client-side apply record; it holds a
// copy of an earlier object and is never exported.
const AnnotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// ExportedPipeline is a pipeline as export writes it and apply reads it:
// only what defines it. Fields the API server or the operator set (uid,
// resourceVersion, generation, creation time, managed fields, owner
// references, status) and metadata of tpctl's own (see IsInternalKey) are
// not part of it.
type ExportedPipeline struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Metadata   ExportedMeta          `json:"metadata"`
	Spec       v1alpha1.PipelineSpec `json:"spec"`
}

// ExportedMeta is the metadata an exported pipeline keeps.
type ExportedMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// IsInternalKey reports whether a label or annotation key is one that
// tpctl, the operator or kubectl set for themselves rather than one of the
// user's: keys of tpctl's API group (the health-check role, the node's
// host listeners) and kubectl's last-applied record.
func IsInternalKey(key string) bool {
	return strings.HasPrefix(key, v1alpha1.Group+"/") || key == AnnotationLastApplied
}

func userKeys(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if IsInternalKey(k) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// ExportPipeline returns what defines p. It refuses (rather than writes) a
// spec that holds a credential in plain text: an env value that is a URL
// with a password (move it to a Secret named in secretRefs or valueFrom).
func ExportPipeline(p *v1alpha1.Pipeline) (*ExportedPipeline, error) {
	if err := checkNoCredential(p); err != nil {
		return nil, err
	}
	spec := p.Spec.DeepCopy()
	return &ExportedPipeline{
		APIVersion: v1alpha1.GroupVersion.String(),
		Kind:       v1alpha1.KindPipeline,
		Metadata: ExportedMeta{
			Name: p.Name, Namespace: p.Namespace,
			Labels: userKeys(p.Labels), Annotations: userKeys(p.Annotations),
		},
		Spec: *spec,
	}, nil
}

// Pipeline returns the exported pipeline as an object to send.
func (e *ExportedPipeline) Pipeline() *v1alpha1.Pipeline {
	p := &v1alpha1.Pipeline{Spec: *e.Spec.DeepCopy()}
	p.APIVersion, p.Kind = e.APIVersion, e.Kind
	p.Name, p.Namespace = e.Metadata.Name, e.Metadata.Namespace
	p.Labels = copyMap(e.Metadata.Labels)
	p.Annotations = copyMap(e.Metadata.Annotations)
	return p
}

func copyMap(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// checkNoCredential refuses a spec whose env values carry a credential: a
// proxy variable with a user or password (ProxyHasCredentials), or any URL
// with a password.
func checkNoCredential(p *v1alpha1.Pipeline) error {
	for _, e := range p.Spec.Env {
		if hasURLPassword(e.Value) || (isProxyVar(e.Name) && ProxyHasCredentials(e.Value)) {
			return &InvalidError{Kind: v1alpha1.KindPipeline, Name: p.Name, Problems: []string{fmt.Sprintf(
				"spec.env %s holds a credential in plain text; it is not exported: keep it in a Secret (spec.secretRefs or env valueFrom) and export again", e.Name)}}
		}
	}
	return nil
}

func isProxyVar(name string) bool {
	switch strings.ToUpper(name) {
	case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY":
		return true
	}
	return false
}

func hasURLPassword(s string) bool {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return false
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.User == nil {
		return false
	}
	_, set := u.User.Password()
	return set
}

// ExportPipelines returns the named pipelines of a's namespace in the
// order named, or, when names is empty, every pipeline but the operator's
// own health-check pipelines, sorted by name. A named pipeline that does
// not exist is a *NotFoundError; naming a health-check pipeline is refused
// (its instance creates it).
func ExportPipelines(ctx context.Context, a API, names []string) ([]ExportedPipeline, error) {
	var ps []v1alpha1.Pipeline
	if len(names) == 0 {
		all, err := a.ListPipelines(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range all {
			if !IsHealthCheck(&p) {
				ps = append(ps, p)
			}
		}
	} else {
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			p, err := a.GetPipeline(ctx, n)
			if err != nil {
				return nil, err
			}
			if IsHealthCheck(p) {
				return nil, &InvalidError{Kind: v1alpha1.KindPipeline, Name: n, Problems: []string{
					"it is the health-check pipeline of core instance " + p.Spec.Instance + ", which the operator creates; it is not exported"}}
			}
			ps = append(ps, *p)
		}
	}
	if len(names) == 0 {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	}
	out := make([]ExportedPipeline, 0, len(ps))
	for i := range ps {
		e, err := ExportPipeline(&ps[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, nil
}

// MarshalExported renders one exported pipeline as YAML.
func MarshalExported(e *ExportedPipeline) ([]byte, error) {
	b, err := yaml.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode pipeline %q: %w", e.Metadata.Name, err)
	}
	return b, nil
}

// WriteExport writes pipelines as a multi-document YAML stream that
// `tpctl apply -f` reads back.
func WriteExport(w io.Writer, ps []ExportedPipeline) error {
	for i := range ps {
		b, err := MarshalExported(&ps[i])
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
