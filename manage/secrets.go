package manage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// A pipeline's secrets live in a Secret of its own, v1alpha1.SecretsName,
// owned by the pipeline (Kubernetes deletes it with the pipeline). Its keys
// reach the pipeline container as environment variables, so ${NAME} works in
// the Fluent Bit configuration. Values are only ever written: nothing here
// returns, prints or logs one, and errors name keys, never values.
//
// Each change of the data gives the pipeline a new random
// v1alpha1.LabelSecretsRevision, which the operator copies onto the pod
// template: the pods roll. The operator itself never reads the Secret.

// KindSecret names the Secret in errors.
const KindSecret = "Secret"

// ManagedByTpctl is the app.kubernetes.io/managed-by value of the Secrets
// tpctl writes (the operator's objects say tpctl-operator).
const ManagedByTpctl = "tpctl"

// FieldManagerSecrets is the field manager of tpctl's writes of a
// pipeline's Secret and of its secrets-revision label (distinct from `tpctl
// apply`'s, so an apply, which never names that label, leaves it alone).
const FieldManagerSecrets = "tpctl-secrets"

// MaxSecretsBytes bounds the keys and values of one pipeline's Secret
// together, as the API server does (corev1.MaxSecretSize).
const MaxSecretsBytes = corev1.MaxSecretSize

// SecretKey is one key of a pipeline's Secret: its name and the size of its
// value in bytes, never the value.
type SecretKey struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// SecretChange sets and removes keys of a pipeline's Secret.
type SecretChange struct {
	// Set gives keys their values (new keys are added, others kept).
	Set map[string]string
	// Unset removes keys; each must exist.
	Unset []string
	// Revision is the revision the pipeline gets when the data changes;
	// empty means a new random one (NewSecretsRevision). A create passes
	// the one it already put on the pipeline, so its pods roll only once.
	Revision string
}

// IsEmpty reports whether the change sets and removes nothing.
func (c SecretChange) IsEmpty() bool { return len(c.Set) == 0 && len(c.Unset) == 0 }

// Validate checks names (valid environment variable names), values (no NUL
// byte, which no environment can hold) and that no key is both set and
// removed. Errors name the keys, never a value.
func (c SecretChange) Validate(pipelineName string) error {
	var probs []string
	for _, k := range sortedKeys(c.Set) {
		if err := ValidateSecretName(k); err != nil {
			probs = append(probs, err.Error())
		}
		if strings.IndexByte(c.Set[k], 0) >= 0 {
			probs = append(probs, fmt.Sprintf("the value of %s contains a NUL byte, which no environment variable can hold", k))
		}
	}
	for _, k := range c.Unset {
		if err := ValidateSecretName(k); err != nil {
			probs = append(probs, err.Error())
		}
		if _, ok := c.Set[k]; ok {
			probs = append(probs, fmt.Sprintf("%s is both set and removed", k))
		}
	}
	if len(probs) > 0 {
		return &InvalidError{Kind: KindSecret, Name: v1alpha1.SecretsName(pipelineName), Problems: probs}
	}
	return nil
}

// ValidateSecretName checks that name can be an environment variable of
// the pipeline: a C identifier (letters, digits and '_', not starting with a
// digit), which Fluent Bit's ${NAME} also accepts.
func ValidateSecretName(name string) error {
	if name == "" {
		return errors.New("a secret needs a name")
	}
	if errs := validation.IsCIdentifier(name); len(errs) > 0 {
		return fmt.Errorf("secret name %q is not a valid environment variable name: use letters, digits and '_', not starting with a digit", name)
	}
	return nil
}

// SecretKeyNotFoundError is a key to remove that the Secret does not hold.
type SecretKeyNotFoundError struct {
	Pipeline string
	Keys     []string
	Existing []string
}

func (e *SecretKeyNotFoundError) Error() string {
	msg := fmt.Sprintf("pipeline %q has no secret %s", e.Pipeline, strings.Join(e.Keys, ", "))
	if len(e.Existing) == 0 {
		return msg + " (it has none)"
	}
	return msg + "; existing: " + strings.Join(e.Existing, ", ")
}

// ApplySecretChange returns data with ch applied (data is not modified) and
// whether anything changed. A key to remove that data lacks is a
// *SecretKeyNotFoundError; a result larger than MaxSecretsBytes an
// *InvalidError.
func ApplySecretChange(pipelineName string, data map[string][]byte, ch SecretChange) (map[string][]byte, bool, error) {
	var missing []string
	for _, k := range ch.Unset {
		if _, ok := data[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, false, &SecretKeyNotFoundError{Pipeline: pipelineName, Keys: missing, Existing: keyNames(data)}
	}
	out := make(map[string][]byte, len(data)+len(ch.Set))
	for k, v := range data {
		out[k] = v
	}
	changed := false
	for k, v := range ch.Set {
		if old, ok := out[k]; !ok || !bytes.Equal(old, []byte(v)) {
			changed = true
		}
		out[k] = []byte(v)
	}
	for _, k := range ch.Unset {
		delete(out, k)
		changed = true
	}
	size := 0
	for k, v := range out {
		size += len(k) + len(v)
	}
	if size > MaxSecretsBytes {
		return nil, false, &InvalidError{Kind: KindSecret, Name: v1alpha1.SecretsName(pipelineName), Problems: []string{
			fmt.Sprintf("the secrets would take %d bytes; a Secret holds at most %d", size, MaxSecretsBytes)}}
	}
	return out, changed, nil
}

// SecretKeys lists data's keys with the sizes of their values, by name.
func SecretKeys(data map[string][]byte) []SecretKey {
	out := make([]SecretKey, 0, len(data))
	for _, k := range keyNames(data) {
		out = append(out, SecretKey{Name: k, Size: len(data[k])})
	}
	return out
}

func keyNames(data map[string][]byte) []string {
	out := make([]string, 0, len(data))
	for k := range data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckSecretsAllowed refuses secrets for an instance's health-check
// pipeline: the operator creates and manages it.
func CheckSecretsAllowed(p *v1alpha1.Pipeline) error {
	if IsHealthCheck(p) {
		return &InvalidError{Kind: v1alpha1.KindPipeline, Name: p.Name, Problems: []string{
			"it is the health-check pipeline of core instance " + p.Spec.Instance + ", which the operator manages; it takes no secrets"}}
	}
	return nil
}

// NewSecretsRevision returns a random revision token (16 hex digits).
func NewSecretsRevision() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on the platforms Go supports.
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

// NewPipelineSecret returns the Secret of pipeline p holding data: labelled
// with the pipeline and instance, owned by p (not as controller: the
// operator does not manage it).
func NewPipelineSecret(p *v1alpha1.Pipeline, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: KindSecret},
		ObjectMeta: metav1.ObjectMeta{
			Name: v1alpha1.SecretsName(p.Name), Namespace: p.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelPipeline:         p.Name,
				v1alpha1.LabelInstance:         p.Spec.Instance,
				"app.kubernetes.io/managed-by": ManagedByTpctl,
			},
			OwnerReferences: []metav1.OwnerReference{pipelineOwner(p)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

func pipelineOwner(p *v1alpha1.Pipeline) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindPipeline, Name: p.Name, UID: p.UID}
}

// ClaimPipelineSecret checks that an existing Secret s is p's: it carries
// p's pipeline label and an owner reference to p. One owned by an earlier
// pipeline of the same name (deleted, its Secret not yet collected) is taken
// over with its data dropped, so that no value of the old pipeline reaches
// the new one; it reports whether it did. Any other Secret of that name is
// refused: tpctl does not write over a Secret it did not create.
func ClaimPipelineSecret(s *corev1.Secret, p *v1alpha1.Pipeline) (bool, error) {
	refuse := func(why string) error {
		return &InvalidError{Kind: KindSecret, Name: s.Name, Problems: []string{fmt.Sprintf(
			"a Secret of that name exists in namespace %q and %s; tpctl keeps pipeline %q's secrets in it and does not write over another one: rename or delete it",
			s.Namespace, why, p.Name)}}
	}
	if s.Labels[v1alpha1.LabelPipeline] != p.Name {
		return false, refuse("is not labelled as pipeline " + p.Name + "'s")
	}
	var ours, stale bool
	for _, o := range s.OwnerReferences {
		if o.Kind != v1alpha1.KindPipeline || o.Name != p.Name {
			continue
		}
		if o.UID == p.UID {
			ours = true
		} else {
			stale = true
		}
	}
	switch {
	case ours:
		return false, nil
	case stale:
		fresh := NewPipelineSecret(p, map[string][]byte{})
		s.Labels, s.OwnerReferences, s.Data, s.StringData = fresh.Labels, fresh.OwnerReferences, fresh.Data, nil
		return true, nil
	default:
		return false, refuse("is not owned by the pipeline")
	}
}

// PipelineSecrets implements API: the keys of the pipeline's Secret with
// the sizes of their values (none when it has no Secret).
func (c *Client) PipelineSecrets(ctx context.Context, name string) ([]SecretKey, error) {
	p, err := c.GetPipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	s := &corev1.Secret{}
	switch err := c.c.Get(ctx, c.key(v1alpha1.SecretsName(name)), s); {
	case apierrors.IsNotFound(err):
		return []SecretKey{}, nil
	case err != nil:
		return nil, apiError(fmt.Sprintf("get Secret %q", v1alpha1.SecretsName(name)), err)
	}
	if _, err := ClaimPipelineSecret(s.DeepCopy(), p); err != nil {
		return nil, err
	}
	return SecretKeys(s.Data), nil
}

// ChangePipelineSecrets implements API. It creates the Secret when the
// pipeline has none, writes the change (retrying on conflicts) and, when
// the data changed, gives the pipeline the change's revision (a new one
// when empty) so its pods roll. It returns the keys after the change.
func (c *Client) ChangePipelineSecrets(ctx context.Context, name string, ch SecretChange, o WriteOptions) ([]SecretKey, error) {
	if err := ch.Validate(name); err != nil {
		return nil, err
	}
	p, err := c.GetPipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := CheckSecretsAllowed(p); err != nil {
		return nil, err
	}
	secretName := v1alpha1.SecretsName(name)
	var keys []SecretKey
	changed, tookOver := false, false
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &corev1.Secret{}
		exists := true
		switch err := c.c.Get(ctx, c.key(secretName), s); {
		case apierrors.IsNotFound(err):
			exists = false
			s = NewPipelineSecret(p, nil)
		case err != nil:
			return apiError(fmt.Sprintf("get Secret %q", secretName), err)
		}
		claimed := false
		if exists {
			var err error
			if claimed, err = ClaimPipelineSecret(s, p); err != nil {
				return err
			}
		}
		data, dataChanged, err := ApplySecretChange(name, s.Data, ch)
		if err != nil {
			return err
		}
		keys = SecretKeys(data)
		changed, tookOver = dataChanged || claimed, claimed
		if !changed && exists {
			return nil
		}
		s.Data = data
		if !exists {
			err = c.c.Create(ctx, s, append(writeOpts(o), client.FieldOwner(FieldManagerSecrets))...)
		} else {
			opts := []client.UpdateOption{client.FieldOwner(FieldManagerSecrets)}
			if o.DryRun {
				opts = append(opts, client.DryRunAll)
			}
			err = c.c.Update(ctx, s, opts...)
		}
		changed = true
		// Another writer, or the collector removing a stale Secret: start over.
		if apierrors.IsConflict(err) || (!exists && apierrors.IsAlreadyExists(err)) || (exists && apierrors.IsNotFound(err)) {
			return apierrors.NewConflict(corev1.Resource("secrets"), secretName, err)
		}
		if err != nil {
			return apiError(fmt.Sprintf("write Secret %q", secretName), err)
		}
		return nil
	})
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, apiError(fmt.Sprintf("write Secret %q", secretName), err)
		}
		return nil, err
	}
	rev := ch.Revision
	if rev == "" || tookOver {
		// Pods may have started with the old pipeline's values meanwhile:
		// they roll even on a create.
		rev = NewSecretsRevision()
	}
	// A pipeline whose label was removed gets one even when the data stays.
	current := p.Labels[v1alpha1.LabelSecretsRevision]
	if (changed && current != rev) || current == "" {
		if err := c.setSecretsRevision(ctx, name, rev, o); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// setSecretsRevision labels the pipeline with rev by a merge patch of that
// one label (no conflict with other writers of the pipeline).
func (c *Client) setSecretsRevision(ctx context.Context, name, rev string, o WriteOptions) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, v1alpha1.LabelSecretsRevision, rev)
	p := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace}}
	opts := []client.PatchOption{client.FieldOwner(FieldManagerSecrets)}
	if o.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.c.Patch(ctx, p, client.RawPatch(types.MergePatchType, []byte(patch)), opts...); err != nil {
		if apierrors.IsNotFound(err) {
			return c.pipelineNotFound(ctx, name)
		}
		return apiError(fmt.Sprintf("roll pipeline %q to its new secrets", name), err)
	}
	return nil
}

// CreatePipelineWithSecrets creates p and then its Secret holding secrets.
// The pipeline is created already labelled with the revision the Secret
// gets, and its pods wait for the Secret (see the operator), so they start
// with the secrets and do not roll a second time. A dry run checks the
// secrets and the pipeline only: the Secret needs the created pipeline as
// its owner. If the Secret cannot be written after the pipeline was
// created, the error says so; the pipeline stays.
func CreatePipelineWithSecrets(ctx context.Context, a API, p *v1alpha1.Pipeline, texts []string, secrets map[string]string, o WriteOptions) (*v1alpha1.Pipeline, []SecretKey, error) {
	if len(secrets) == 0 {
		got, err := a.CreatePipeline(ctx, p, texts, o)
		return got, nil, err
	}
	ch := SecretChange{Set: secrets, Revision: NewSecretsRevision()}
	if err := ch.Validate(p.Name); err != nil {
		return nil, nil, err
	}
	data, _, err := ApplySecretChange(p.Name, nil, ch)
	if err != nil {
		return nil, nil, err
	}
	p = p.DeepCopy()
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[v1alpha1.LabelSecretsRevision] = ch.Revision
	got, err := a.CreatePipeline(ctx, p, texts, o)
	if err != nil {
		return nil, nil, err
	}
	if o.DryRun {
		return got, SecretKeys(data), nil
	}
	keys, err := a.ChangePipelineSecrets(ctx, got.Name, ch, o)
	if err != nil {
		return got, nil, fmt.Errorf("pipeline %q was created but its secrets were not stored (its pods wait for them): %w; store them with `tpctl pipeline secret set %s …`", got.Name, err, got.Name)
	}
	return got, keys, nil
}

// WriteSecretKeys writes a table of secret names and sizes, each line
// starting with indent.
func WriteSecretKeys(w io.Writer, keys []SecretKey, indent string) error {
	if len(keys) == 0 {
		_, err := fmt.Fprintln(w, indent+"none")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, indent+"NAME\tSIZE")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s%s\t%d bytes\n", indent, k.Name, k.Size)
	}
	return tw.Flush()
}
