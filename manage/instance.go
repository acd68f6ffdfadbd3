package manage

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// ValidateProxyURL checks a proxy address: an http or https URL with a
// host. Its errors never repeat credentials the address carries.
func ValidateProxyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", RedactProxyURL(s))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http://host:port or https://host:port", RedactProxyURL(s))
	}
	return nil
}

// ProxyHasCredentials reports whether a proxy URL carries a user name or
// password (anything before an @ in its authority).
func ProxyHasCredentials(s string) bool {
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		rest = s
	}
	authority, _, _ := strings.Cut(rest, "/")
	return strings.Contains(authority, "@")
}

// RedactProxyURL replaces the credentials of a proxy URL with "***".
func RedactProxyURL(s string) string {
	if !ProxyHasCredentials(s) {
		return s
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	out := "***@" + authority[strings.LastIndex(authority, "@")+1:]
	if ok {
		out = scheme + "://" + out
	}
	if hasPath {
		out += "/" + path
	}
	return out
}

// ProxySecretName names the Secret that holds the proxy URLs of an instance
// whose proxies carry credentials.
func ProxySecretName(instance string) string { return instance + "-proxy" }

// ProxyText describes one proxy of an instance for display: the URL, with
// any credentials redacted, or where it is kept when it is in a Secret.
// key is v1alpha1.ProxySecretKeyHTTP or ProxySecretKeyHTTPS.
func ProxyText(spec *v1alpha1.CoreInstanceSpec, key string) string {
	v := spec.HTTPProxy
	if key == v1alpha1.ProxySecretKeyHTTPS {
		v = spec.HTTPSProxy
	}
	if v == "" && spec.ProxySecretRef != nil {
		return "in Secret " + spec.ProxySecretRef.Name + " (key " + key + ")"
	}
	if v == "" {
		return "-"
	}
	return RedactProxyURL(v)
}

// RedactInstance returns a copy of inst whose proxies carry no credentials
// (an instance written before they moved into a Secret may still have some).
func RedactInstance(inst *v1alpha1.CoreInstance) *v1alpha1.CoreInstance {
	inst = inst.DeepCopy()
	inst.Spec.HTTPProxy = RedactProxyURL(inst.Spec.HTTPProxy)
	inst.Spec.HTTPSProxy = RedactProxyURL(inst.Spec.HTTPSProxy)
	if inst.Annotations != nil {
		// kubectl's last-applied configuration repeats the spec.
		delete(inst.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	}
	return inst
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
		if err := c.applyProxies(ctx, inst, ch, o); err != nil {
			return err
		}
		rest := ch
		rest.HTTPProxy, rest.HTTPSProxy = nil, nil // applied above
		rest.ApplyTo(&inst.Spec)
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

// applyProxies writes the proxy part of ch into inst. Proxies without
// credentials stay in the spec. When either carries credentials, both go
// into the Secret ProxySecretName (owned by the instance, so it goes with
// it) and the spec names that Secret instead: pipeline pods then read them
// through secretKeyRef, and the credentials appear in no resource other
// than the Secret. A Secret no longer needed is deleted. An existing Secret
// of that name is changed only when it belongs to the instance (an owner
// reference, or the label telemetry.tpctl.dev/instance the core-instance
// chart sets).
func (c *Client) applyProxies(ctx context.Context, inst *v1alpha1.CoreInstance, ch InstanceChange, o WriteOptions) error {
	if ch.HTTPProxy == nil && ch.HTTPSProxy == nil {
		return nil
	}
	httpP, httpsP := inst.Spec.HTTPProxy, inst.Spec.HTTPSProxy
	if ref := inst.Spec.ProxySecretRef; ref != nil {
		sec := &corev1.Secret{}
		err := c.c.Get(ctx, c.key(ref.Name), sec)
		switch {
		case err == nil:
			httpP, httpsP = string(sec.Data[v1alpha1.ProxySecretKeyHTTP]), string(sec.Data[v1alpha1.ProxySecretKeyHTTPS])
		case !apierrors.IsNotFound(err):
			return apiError(fmt.Sprintf("read the proxy Secret %q of core instance %q", ref.Name, inst.Name), err)
		}
	}
	if ch.HTTPProxy != nil {
		httpP = *ch.HTTPProxy
	}
	if ch.HTTPSProxy != nil {
		httpsP = *ch.HTTPSProxy
	}
	name := ProxySecretName(inst.Name)
	if !ProxyHasCredentials(httpP) && !ProxyHasCredentials(httpsP) {
		inst.Spec.HTTPProxy, inst.Spec.HTTPSProxy = httpP, httpsP
		if ref := inst.Spec.ProxySecretRef; ref != nil && ref.Name == name {
			var opts []client.DeleteOption
			if o.DryRun {
				opts = append(opts, client.DryRunAll)
			}
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace}}
			if err := c.c.Delete(ctx, sec, opts...); client.IgnoreNotFound(err) != nil {
				return apiError(fmt.Sprintf("delete the proxy Secret %q", name), err)
			}
		}
		inst.Spec.ProxySecretRef = nil
		return nil
	}
	data := map[string][]byte{}
	if httpP != "" {
		data[v1alpha1.ProxySecretKeyHTTP] = []byte(httpP)
	}
	if httpsP != "" {
		data[v1alpha1.ProxySecretKeyHTTPS] = []byte(httpsP)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "tpctl", v1alpha1.Group + "/instance": inst.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindCoreInstance,
				Name: inst.Name, UID: inst.UID}}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	existing := &corev1.Secret{}
	err := c.c.Get(ctx, c.key(name), existing)
	switch {
	case apierrors.IsNotFound(err):
		var opts []client.CreateOption
		if o.DryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := c.c.Create(ctx, sec, opts...); err != nil {
			return apiError(fmt.Sprintf("create the proxy Secret %q", name), err)
		}
	case err != nil:
		return apiError(fmt.Sprintf("read the proxy Secret %q", name), err)
	default:
		if !hasOwnerUID(existing, inst.UID) && existing.Labels[v1alpha1.Group+"/instance"] != inst.Name {
			return fmt.Errorf("Secret %s/%s exists and does not belong to core instance %q: not changed", c.namespace, name, inst.Name)
		}
		existing.Data, existing.Type = data, corev1.SecretTypeOpaque
		var opts []client.UpdateOption
		if o.DryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := c.c.Update(ctx, existing, opts...); err != nil {
			return apiError(fmt.Sprintf("update the proxy Secret %q", name), err)
		}
	}
	inst.Spec.HTTPProxy, inst.Spec.HTTPSProxy = "", ""
	inst.Spec.ProxySecretRef = &corev1.LocalObjectReference{Name: name}
	return nil
}

func hasOwnerUID(obj metav1.Object, uid types.UID) bool {
	for _, r := range obj.GetOwnerReferences() {
		if r.UID == uid {
			return true
		}
	}
	return false
}
