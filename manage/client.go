package manage

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Client performs the operations on one namespace through a
// controller-runtime client.
type Client struct {
	c         client.WithWatch
	namespace string
}

var _ API = (*Client)(nil)

// NewScheme returns a scheme with the Kubernetes types and the tpctl API.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register Kubernetes types: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register tpctl types: %w", err)
	}
	return s, nil
}

// New connects to the API server of cfg and works in namespace.
func New(cfg *rest.Config, namespace string) (*Client, error) {
	s, err := NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client for %s: %w", cfg.Host, err)
	}
	return NewWithClient(c, namespace), nil
}

// NewWithClient wraps an existing client (tests pass a fake one).
func NewWithClient(c client.WithWatch, namespace string) *Client {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Client{c: c, namespace: namespace}
}

// Namespace implements API.
func (c *Client) Namespace() string { return c.namespace }

func (c *Client) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: c.namespace, Name: name}
}

func writeOpts(o WriteOptions) []client.CreateOption {
	if o.DryRun {
		return []client.CreateOption{client.DryRunAll}
	}
	return nil
}

// ListPipelines returns the namespace's pipelines sorted by name.
func (c *Client) ListPipelines(ctx context.Context) ([]v1alpha1.Pipeline, error) {
	var list v1alpha1.PipelineList
	if err := c.c.List(ctx, &list, client.InNamespace(c.namespace)); err != nil {
		return nil, apiError(fmt.Sprintf("list pipelines in namespace %q", c.namespace), err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// GetPipeline returns one pipeline; a missing one is a *NotFoundError
// listing the pipelines that exist.
func (c *Client) GetPipeline(ctx context.Context, name string) (*v1alpha1.Pipeline, error) {
	p := &v1alpha1.Pipeline{}
	if err := c.c.Get(ctx, c.key(name), p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, c.pipelineNotFound(ctx, name)
		}
		return nil, apiError(fmt.Sprintf("get pipeline %q", name), err)
	}
	return p, nil
}

func (c *Client) pipelineNotFound(ctx context.Context, name string) error {
	e := &NotFoundError{Kind: v1alpha1.KindPipeline, Name: name, Namespace: c.namespace}
	if list, err := c.ListPipelines(ctx); err == nil {
		for _, p := range list {
			e.Existing = append(e.Existing, p.Name)
		}
	}
	return e
}

// CreatePipeline implements API. An empty spec.instance is filled in when
// the namespace has exactly one core instance.
func (c *Client) CreatePipeline(ctx context.Context, p *v1alpha1.Pipeline, texts []string, o WriteOptions) (*v1alpha1.Pipeline, error) {
	p = p.DeepCopy()
	p.Namespace = c.namespace
	instances, err := c.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	inst, err := ResolveInstance(p.Spec.Instance, c.namespace, instances)
	if err != nil {
		return nil, err
	}
	p.Spec.Instance = inst
	if err := ValidatePipeline(p, texts); err != nil {
		return nil, err
	}
	sent := p.DeepCopy()
	if err := c.c.Create(ctx, p, writeOpts(o)...); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, &AlreadyExistsError{Kind: v1alpha1.KindPipeline, Name: p.Name, Namespace: c.namespace}
		}
		return nil, apiError(fmt.Sprintf("create pipeline %q", p.Name), err)
	}
	if o.DryRun {
		return sent, nil
	}
	return p, nil
}

// ResolveInstance checks that name is one of instances; an empty name picks
// the only instance there is. Otherwise it returns an *UnknownInstanceError
// that lists the existing ones.
func ResolveInstance(name, namespace string, instances []v1alpha1.CoreInstance) (string, error) {
	names := make([]string, 0, len(instances))
	for _, i := range instances {
		if i.Name == name && name != "" {
			return name, nil
		}
		names = append(names, i.Name)
	}
	sort.Strings(names)
	if name == "" && len(names) == 1 {
		return names[0], nil
	}
	return "", &UnknownInstanceError{Name: name, Namespace: namespace, Existing: names}
}

// UpdatePipeline implements API. It retries on write conflicts, applying
// the change to the newest object each time. With DryRun it returns the
// object that would be sent.
func (c *Client) UpdatePipeline(ctx context.Context, name string, ch PipelineChange, o WriteOptions) (*v1alpha1.Pipeline, error) {
	var out *v1alpha1.Pipeline
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.GetPipeline(ctx, name)
		if err != nil {
			return err
		}
		if err := ch.Apply(p); err != nil {
			return err
		}
		if err := ValidatePipeline(p, ch.PortTexts); err != nil {
			return err
		}
		sent := p.DeepCopy()
		var opts []client.UpdateOption
		if o.DryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := c.c.Update(ctx, p, opts...); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return apiError(fmt.Sprintf("update pipeline %q", name), err)
		}
		out = p
		if o.DryRun {
			out = sent
		}
		return nil
	})
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, apiError(fmt.Sprintf("update pipeline %q", name), err)
		}
		return nil, err
	}
	return out, nil
}

// DeletePipeline implements API and returns the pipeline as it was.
func (c *Client) DeletePipeline(ctx context.Context, name string, o WriteOptions) (*v1alpha1.Pipeline, error) {
	p, err := c.GetPipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	var opts []client.DeleteOption
	if o.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.c.Delete(ctx, p, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, c.pipelineNotFound(ctx, name)
		}
		return nil, apiError(fmt.Sprintf("delete pipeline %q", name), err)
	}
	return p, nil
}
