package manage

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// InstanceChange is a set of changes to a core instance. Nil fields are
// left as they are; an empty string clears a proxy.
type InstanceChange struct {
	HTTPProxy       *string
	HTTPSProxy      *string
	NoProxy         *string
	HealthCheck     *bool  // enable or disable the health-check pipeline
	HealthCheckPort *int32 // also enables the health check
}

// IsEmpty reports whether the change sets nothing.
func (c InstanceChange) IsEmpty() bool {
	return c.HTTPProxy == nil && c.HTTPSProxy == nil && c.NoProxy == nil && c.HealthCheck == nil && c.HealthCheckPort == nil
}

// Validate checks the values: proxies are http(s) URLs (or empty), the
// health-check port is in 1–65535, and a port is not set together with
// disabling the health check.
func (c InstanceChange) Validate() error {
	var probs []string
	for _, p := range []struct {
		name string
		v    *string
	}{{"http proxy", c.HTTPProxy}, {"https proxy", c.HTTPSProxy}} {
		if p.v == nil || *p.v == "" {
			continue
		}
		if err := ValidateProxyURL(*p.v); err != nil {
			probs = append(probs, p.name+": "+err.Error())
		}
	}
	if c.NoProxy != nil && strings.ContainsAny(*c.NoProxy, " \t\n") {
		probs = append(probs, "no proxy: a comma-separated list without spaces")
	}
	if c.HealthCheckPort != nil && (*c.HealthCheckPort < pipeline.MinPort || *c.HealthCheckPort > pipeline.MaxPort) {
		probs = append(probs, fmt.Sprintf("health-check port %d: want a number from 1 to 65535", *c.HealthCheckPort))
	}
	if c.HealthCheckPort != nil && c.HealthCheck != nil && !*c.HealthCheck {
		probs = append(probs, "a health-check port and disabling the health check exclude each other")
	}
	if len(probs) > 0 {
		return &InvalidError{Kind: v1alpha1.KindCoreInstance, Problems: probs}
	}
	return nil
}

// ValidateProxyURL checks a proxy address: an http or https URL with a host.
func ValidateProxyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http://host:port or https://host:port", s)
	}
	return nil
}

// ApplyTo writes the change into spec.
func (c InstanceChange) ApplyTo(spec *v1alpha1.CoreInstanceSpec) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&spec.HTTPProxy, c.HTTPProxy)
	set(&spec.HTTPSProxy, c.HTTPSProxy)
	set(&spec.NoProxy, c.NoProxy)
	if c.HealthCheck != nil {
		v := *c.HealthCheck
		spec.HealthCheck.Enabled = &v
	}
	if c.HealthCheckPort != nil {
		enabled := true
		spec.HealthCheck.Enabled = &enabled
		spec.HealthCheck.Port = *c.HealthCheckPort
	}
}

// ListInstances returns the namespace's core instances sorted by name.
func (c *Client) ListInstances(ctx context.Context) ([]v1alpha1.CoreInstance, error) {
	var list v1alpha1.CoreInstanceList
	if err := c.c.List(ctx, &list, client.InNamespace(c.namespace)); err != nil {
		return nil, apiError(fmt.Sprintf("list core instances in namespace %q", c.namespace), err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// GetInstance returns one core instance; a missing one is an
// *UnknownInstanceError listing those that exist.
func (c *Client) GetInstance(ctx context.Context, name string) (*v1alpha1.CoreInstance, error) {
	inst := &v1alpha1.CoreInstance{}
	if err := c.c.Get(ctx, c.key(name), inst); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, c.instanceNotFound(ctx, name)
		}
		return nil, apiError(fmt.Sprintf("get core instance %q", name), err)
	}
	return inst, nil
}

func (c *Client) instanceNotFound(ctx context.Context, name string) error {
	list, err := c.ListInstances(ctx)
	if err != nil {
		return &UnknownInstanceError{Name: name, Namespace: c.namespace}
	}
	_, err = ResolveInstance(name, c.namespace, list)
	if err == nil { // created in between
		err = &UnknownInstanceError{Name: name, Namespace: c.namespace}
	}
	return err
}

// UpdateInstance implements API.
func (c *Client) UpdateInstance(ctx context.Context, name string, ch InstanceChange, o WriteOptions) (*v1alpha1.CoreInstance, error) {
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	var out *v1alpha1.CoreInstance
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		inst, err := c.GetInstance(ctx, name)
		if err != nil {
			return err
		}
		ch.ApplyTo(&inst.Spec)
		sent := inst.DeepCopy()
		var opts []client.UpdateOption
		if o.DryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := c.c.Update(ctx, inst, opts...); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return apiError(fmt.Sprintf("update core instance %q", name), err)
		}
		out = inst
		if o.DryRun {
			out = sent
		}
		return nil
	})
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, apiError(fmt.Sprintf("update core instance %q", name), err)
		}
		return nil, err
	}
	return out, nil
}
