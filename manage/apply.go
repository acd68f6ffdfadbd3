package manage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// FieldManager is the server-side apply field manager of `tpctl apply`.
const FieldManager = "tpctl"

// Budgets of an apply file: its size and its number of documents.
const (
	MaxApplyBytes     = 32 << 20
	MaxApplyDocuments = 500
)

// ApplyOptions tune ApplyPipeline and Apply.
type ApplyOptions struct {
	// DryRun sends server-side dry runs only: validated, nothing stored.
	DryRun bool
	// Force takes over fields another field manager set to another value
	// (`pipeline update`, the terminal UI, kubectl) instead of refusing.
	Force bool
}

// Applier is what Apply needs: *Client and managetest.Memory implement it.
type Applier interface {
	Namespace() string
	GetPipeline(ctx context.Context, name string) (*v1alpha1.Pipeline, error)
	ListInstances(ctx context.Context) ([]v1alpha1.CoreInstance, error)
	// ApplyPipeline sends p with server-side apply (field manager
	// FieldManager) and returns the object as stored, or as it would be
	// stored on a dry run.
	ApplyPipeline(ctx context.Context, p *v1alpha1.Pipeline, o ApplyOptions) (*v1alpha1.Pipeline, error)
}

var _ Applier = (*Client)(nil)

// Document is one pipeline of an apply file.
type Document struct {
	// Index is the document's position in the file, from 1.
	Index    int
	Pipeline *v1alpha1.Pipeline
}

// DocumentError is a document that cannot be applied.
type DocumentError struct {
	Index int
	Name  string // empty when the document names none
	// Input is true for errors in the file itself (found before anything
	// is sent); false for refusals of the API server.
	Input bool
	Err   error
}

func (e *DocumentError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("document %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("document %d (pipeline %q): %v", e.Index, e.Name, e.Err)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// ConflictError is a server-side apply that would change fields another
// field manager set.
type ConflictError struct {
	Name    string
	Message string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s; these fields were last set by another tool (`tpctl pipeline update`, the terminal UI, kubectl): "+
		"rerun with --force-conflicts to let the file win", e.Message)
}

// RefusedError is an apply that stopped before writing anything: Err
// holds one *DocumentError per document refused.
type RefusedError struct {
	Err error
}

func (e *RefusedError) Error() string { return e.Err.Error() + "\nnothing was changed" }

func (e *RefusedError) Unwrap() error { return e.Err }

// InputOnly reports whether every refusal is about the file itself (no
// API server refusal among them).
func (e *RefusedError) InputOnly() bool {
	var errs []error
	if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{e.Err}
	}
	for _, err := range errs {
		var de *DocumentError
		if !errors.As(err, &de) || !de.Input {
			return false
		}
	}
	return len(errs) > 0
}

// ReadDocuments reads a YAML (or JSON) stream of Pipeline objects, as
// `tpctl pipeline export` writes them; `pipeline get -o yaml` and `kubectl
// get -o yaml` output is accepted too: server-set metadata and status are
// dropped. Every document is checked before it returns; problems come back
// as a *RefusedError holding one *DocumentError per bad document. Empty documents are skipped
// but counted.
func ReadDocuments(r io.Reader) ([]Document, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxApplyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > MaxApplyBytes {
		return nil, fmt.Errorf("the file is larger than %d bytes", MaxApplyBytes)
	}
	yr := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []Document
	var errs []error
	seen := map[string]int{}
	for index := 1; ; index++ {
		raw, err := yr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, &DocumentError{Index: index, Input: true, Err: fmt.Errorf("read YAML: %w", err)})
			break
		}
		if isEmptyDocument(raw) {
			continue
		}
		if len(docs) >= MaxApplyDocuments {
			errs = append(errs, &DocumentError{Index: index, Input: true, Err: fmt.Errorf("more than %d documents", MaxApplyDocuments)})
			break
		}
		p, err := decodeDocument(raw)
		if err != nil {
			name := ""
			if p != nil {
				name = p.Name
			}
			errs = append(errs, &DocumentError{Index: index, Name: name, Input: true, Err: err})
			continue
		}
		if first, dup := seen[p.Name]; dup {
			errs = append(errs, &DocumentError{Index: index, Name: p.Name, Input: true,
				Err: fmt.Errorf("pipeline %q is also document %d; each pipeline may appear once", p.Name, first)})
			continue
		}
		seen[p.Name] = index
		docs = append(docs, Document{Index: index, Pipeline: p})
	}
	if len(errs) > 0 {
		return nil, &RefusedError{Err: errors.Join(errs...)}
	}
	if len(docs) == 0 {
		return nil, errors.New("no pipeline in the file")
	}
	return docs, nil
}

func isEmptyDocument(raw []byte) bool {
	for _, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

// decodeDocument decodes one document strictly (unknown fields and
// duplicate keys are errors) into the pipeline apply sends. It returns the
// pipeline, when it could be read, with an error so the name can be given.
func decodeDocument(raw []byte) (*v1alpha1.Pipeline, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("not a YAML object: %w", err)
	}
	named := &v1alpha1.Pipeline{}
	named.Name = head.Metadata.Name
	if head.Kind != v1alpha1.KindPipeline || head.APIVersion != v1alpha1.GroupVersion.String() {
		what := fmt.Sprintf("kind %q of apiVersion %q", head.Kind, head.APIVersion)
		if head.Kind == "" {
			what = "a document without a kind"
		}
		return named, fmt.Errorf("%s cannot be applied: only %s %s objects can", what, v1alpha1.GroupVersion, v1alpha1.KindPipeline)
	}
	var p v1alpha1.Pipeline
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		return named, fmt.Errorf("decode: %w", err)
	}
	if p.Name == "" {
		return nil, errors.New("metadata.name is missing")
	}
	if IsHealthCheck(&p) {
		return named, fmt.Errorf("it carries the label %s=%s of an instance's health-check pipeline, which the operator creates", v1alpha1.LabelRole, v1alpha1.RoleHealthCheck)
	}
	e, err := exportSpec(&p)
	if err != nil {
		return named, err
	}
	return e.Pipeline(), nil
}

// exportSpec is ExportPipeline without the credential check: a file may
// carry what its author chose.
func exportSpec(p *v1alpha1.Pipeline) (*ExportedPipeline, error) {
	return &ExportedPipeline{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindPipeline,
		Metadata: ExportedMeta{Name: p.Name, Namespace: p.Namespace, Labels: userKeys(p.Labels), Annotations: userKeys(p.Annotations)},
		Spec:     *p.Spec.DeepCopy(),
	}, nil
}

// DocumentsNamespace returns the namespace to apply docs in: flag (the -n
// value) when given, else the one the documents name (all the same), else
// "" (the kubeconfig's). A document naming another namespace than flag, or
// documents naming different ones, are refused.
func DocumentsNamespace(docs []Document, flag string) (string, error) {
	ns, from := flag, 0
	var errs []error
	for _, d := range docs {
		dn := d.Pipeline.Namespace
		switch {
		case dn == "" || dn == ns:
		case ns == "":
			ns, from = dn, d.Index
		case from == 0:
			errs = append(errs, &DocumentError{Index: d.Index, Name: d.Pipeline.Name, Input: true,
				Err: fmt.Errorf("it names namespace %q but -n is %q; edit the file or drop -n", dn, flag)})
		default:
			errs = append(errs, &DocumentError{Index: d.Index, Name: d.Pipeline.Name, Input: true,
				Err: fmt.Errorf("it names namespace %q but document %d names %q; apply one namespace at a time (-n)", dn, from, ns)})
		}
	}
	if len(errs) > 0 {
		return "", &RefusedError{Err: errors.Join(errs...)}
	}
	return ns, nil
}

// ApplyAction is what apply did, or would do, to one pipeline.
type ApplyAction string

const (
	ActionCreated   ApplyAction = "created"
	ActionUpdated   ApplyAction = "updated"
	ActionUnchanged ApplyAction = "unchanged"
)

// ApplyResult is the outcome for one document.
type ApplyResult struct {
	Document  int         `json:"document"`
	Name      string      `json:"name"`
	Namespace string      `json:"namespace"`
	Action    ApplyAction `json:"action"`
	// Diff is a unified diff of the pipeline as exported, from the cluster
	// to the file (from nothing for a created one); empty when unchanged.
	Diff string `json:"diff,omitempty"`
	// Pipeline is the object as stored (or as it would be on a dry run).
	Pipeline *v1alpha1.Pipeline `json:"-"`
}

// Apply creates or updates the pipelines of docs. It first checks every
// document without writing (namespace, core instance, ValidatePipeline,
// not a health-check pipeline), then sends each one as a server-side dry
// run, so the API server's validation (the CRD's rules) and field
// ownership conflicts show before anything is stored; any problem returns
// a *RefusedError (one *DocumentError per document) and nothing was
// changed. Then, unless
// o.DryRun, it applies each created or changed pipeline; unchanged ones are
// not written. Results follow the documents' order.
func Apply(ctx context.Context, a Applier, docs []Document, o ApplyOptions) ([]ApplyResult, error) {
	ns := a.Namespace()
	instances, err := a.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	type item struct {
		doc  Document
		want *v1alpha1.Pipeline
		live *v1alpha1.Pipeline
	}
	items := make([]item, 0, len(docs))
	var errs []error
	for _, d := range docs {
		p := d.Pipeline.DeepCopy()
		fail := func(input bool, err error) {
			errs = append(errs, &DocumentError{Index: d.Index, Name: p.Name, Input: input, Err: err})
		}
		if p.Namespace != "" && p.Namespace != ns {
			fail(true, fmt.Errorf("it names namespace %q, not %q", p.Namespace, ns))
			continue
		}
		p.Namespace = ns
		live, err := a.GetPipeline(ctx, p.Name)
		var nf *NotFoundError
		switch {
		case errors.As(err, &nf):
			live = nil
		case err != nil:
			fail(false, err)
			continue
		}
		if live != nil && IsHealthCheck(live) {
			fail(true, fmt.Errorf("it is the health-check pipeline of core instance %q, which the operator manages", live.Spec.Instance))
			continue
		}
		if p.Spec.Instance == "" && live != nil {
			p.Spec.Instance = live.Spec.Instance
		}
		inst, err := ResolveInstance(p.Spec.Instance, ns, instances)
		if err != nil {
			fail(true, err)
			continue
		}
		p.Spec.Instance = inst
		if err := ValidatePipeline(p, nil); err != nil {
			fail(true, err)
			continue
		}
		items = append(items, item{doc: d, want: p, live: live})
	}
	if len(errs) > 0 {
		return nil, &RefusedError{Err: errors.Join(errs...)}
	}
	results := make([]ApplyResult, 0, len(items))
	for _, it := range items {
		got, err := a.ApplyPipeline(ctx, it.want, ApplyOptions{DryRun: true, Force: o.Force})
		if err != nil {
			errs = append(errs, &DocumentError{Index: it.doc.Index, Name: it.want.Name, Err: err})
			continue
		}
		r := ApplyResult{Document: it.doc.Index, Name: it.want.Name, Namespace: ns, Pipeline: got}
		before := ""
		if it.live != nil {
			before = exportText(it.live)
		}
		after := exportText(got)
		switch {
		case it.live == nil:
			r.Action = ActionCreated
		case before == after:
			r.Action = ActionUnchanged
		default:
			r.Action = ActionUpdated
		}
		if r.Action != ActionUnchanged {
			r.Diff = udiff.Unified("cluster/"+ns+"/"+r.Name, "file/"+ns+"/"+r.Name, before, after)
		} else if it.live != nil {
			r.Pipeline = it.live
		}
		results = append(results, r)
	}
	if len(errs) > 0 {
		return nil, &RefusedError{Err: errors.Join(errs...)}
	}
	if o.DryRun {
		return results, nil
	}
	for i, r := range results {
		if r.Action == ActionUnchanged {
			continue
		}
		got, err := a.ApplyPipeline(ctx, items[i].want, o)
		if err != nil {
			done := appliedNames(results[:i])
			return results[:i], fmt.Errorf("%w (applied before it: %s)", &DocumentError{Index: r.Document, Name: r.Name, Err: err}, done)
		}
		results[i].Pipeline = got
	}
	return results, nil
}

func appliedNames(rs []ApplyResult) string {
	var names []string
	for _, r := range rs {
		if r.Action != ActionUnchanged {
			names = append(names, r.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// exportText is p as export writes it, for comparing and diffing.
func exportText(p *v1alpha1.Pipeline) string {
	e, _ := exportSpec(p)
	b, err := MarshalExported(e)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// ApplyPipeline implements Applier with server-side apply: the object
// holds only what the file defines (see ExportedPipeline), so fields the
// file leaves out keep what other tools set.
func (c *Client) ApplyPipeline(ctx context.Context, p *v1alpha1.Pipeline, o ApplyOptions) (*v1alpha1.Pipeline, error) {
	e, err := exportSpec(p)
	if err != nil {
		return nil, err
	}
	e.Metadata.Namespace = c.namespace
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode pipeline %q: %w", p.Name, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("encode pipeline %q: %w", p.Name, err)
	}
	opts := []client.ApplyOption{client.FieldOwner(FieldManager)}
	if o.Force {
		opts = append(opts, client.ForceOwnership)
	}
	if o.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), opts...); err != nil {
		if apierrors.IsConflict(err) {
			return nil, &ConflictError{Name: p.Name, Message: apiError(fmt.Sprintf("apply pipeline %q", p.Name), err).Error()}
		}
		return nil, apiError(fmt.Sprintf("apply pipeline %q", p.Name), err)
	}
	out := &v1alpha1.Pipeline{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("decode pipeline %q: %w", p.Name, err)
	}
	return out, nil
}
