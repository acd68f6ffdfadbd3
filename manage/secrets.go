package manage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	yamlv3 "go.yaml.in/yaml/v3"
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

// ParseSecretArgs reads --secret values: NAME=VALUE, or NAME alone, which
// takes the value of the environment variable NAME (lookupEnv; nil means an
// empty environment), keeping the value off the command line. Errors never
// show a value: an entry without '=' that is not a valid name is not shown
// at all, in case it is a value given by mistake.
func ParseSecretArgs(args []string, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for i, a := range args {
		name, value, hasValue := strings.Cut(a, "=")
		if !hasValue {
			if ValidateSecretName(name) != nil {
				errs = append(errs, fmt.Errorf("--secret #%d is neither NAME=VALUE nor the name of an environment variable (not shown, in case it is a value)", i+1))
				continue
			}
			v, ok := "", false
			if lookupEnv != nil {
				v, ok = lookupEnv(name)
			}
			if !ok {
				errs = append(errs, fmt.Errorf("--secret %s: no value given and no environment variable %s is set", name, name))
				continue
			}
			value = v
		}
		if err := ValidateSecretName(name); err != nil {
			errs = append(errs, fmt.Errorf("--secret #%d: %w", i+1, err))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("--secret %s is given twice", name))
			continue
		}
		out[name] = value
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadSecretsFile reads a secrets file ("-" reads stdin): YAML when its name
// ends in .yaml, .yml or .json, else .env lines (ParseDotenv).
func ReadSecretsFile(path string, stdin io.Reader) (map[string]string, error) {
	var data []byte
	var err error
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("read secrets from stdin: no stdin")
		}
		data, err = io.ReadAll(io.LimitReader(stdin, MaxSecretsBytes*2+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	return ParseSecretsFile(path, data)
}

// ParseSecretsFile parses a secrets file's content by its name (see
// ReadSecretsFile). Errors name lines and keys, never values.
func ParseSecretsFile(path string, data []byte) (map[string]string, error) {
	if len(data) > MaxSecretsBytes*2 {
		return nil, fmt.Errorf("secrets file %s: larger than %d bytes", path, MaxSecretsBytes*2)
	}
	var out map[string]string
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		out, err = parseSecretsYAML(data)
	default:
		out, err = ParseDotenv(data)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	return out, nil
}

// parseSecretsYAML reads a YAML (or JSON) map of names to scalar values.
// Each value is taken as the text written: YAML 1.1 would read yes, on or
// 0123 as something else, and keys such as N or ON as booleans, so nothing
// is resolved. A value that is no scalar, or null, is refused.
func parseSecretsYAML(data []byte) (map[string]string, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		// The parser's message may quote the document; name the problem only.
		return nil, errors.New("not a YAML map of NAME: value (it does not parse; the parser's message is withheld, as it could quote a value)")
	}
	if doc.Kind == 0 {
		return map[string]string{}, nil
	}
	if doc.Kind != yamlv3.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yamlv3.MappingNode {
		return nil, errors.New("not a YAML map of NAME: value")
	}
	m := doc.Content[0]
	out := make(map[string]string, len(m.Content)/2)
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yamlv3.ScalarNode {
			errs = append(errs, fmt.Errorf("line %d: a key must be a name", k.Line))
			continue
		}
		if err := ValidateSecretName(k.Value); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", k.Line, err))
			continue
		}
		if _, dup := out[k.Value]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s is given twice", k.Line, k.Value))
			continue
		}
		switch {
		case v.Kind != yamlv3.ScalarNode:
			errs = append(errs, fmt.Errorf("line %d: the value of %s is not a single value", k.Line, k.Value))
		case v.ShortTag() == "!!null" && v.Style == 0:
			errs = append(errs, fmt.Errorf(`line %d: %s has no value (write "" for an empty one)`, k.Line, k.Value))
		default:
			out[k.Value] = v.Value
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseDotenv reads .env lines: NAME=VALUE, with an optional "export "
// before the name; blank lines and lines starting with # are skipped. A
// value in single quotes is taken as written; one in double quotes may
// use \n, \t, \", \\ and \$; an unquoted one is trimmed and ends before a
// " #" comment. Nothing is expanded ($VAR stays as written). A name given
// twice, a line without '=' or an unclosed quote is an error naming the
// line, never its value.
func ParseDotenv(data []byte) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i, line := range lines {
		n := i + 1
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, rest, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: not NAME=VALUE", n))
			continue
		}
		if err := ValidateSecretName(name); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		value, err := dotenvValue(strings.TrimLeft(rest, " \t"))
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d (%s): %w", n, name, err))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s is given twice", n, name))
			continue
		}
		out[name] = value
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func dotenvValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	trailing := func(after string) error {
		after = strings.TrimSpace(after)
		if after != "" && !strings.HasPrefix(after, "#") {
			return errors.New("text after the closing quote")
		}
		return nil
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unclosed single quote (a value spans one line)")
		}
		return s[1 : 1+end], trailing(s[2+end:])
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '"':
				return b.String(), trailing(s[i+1:])
			case '\\':
				if i+1 >= len(s) {
					return "", errors.New("unclosed double quote (a value spans one line)")
				}
				i++
				switch e := s[i]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\', '$':
					b.WriteByte(e)
				default:
					return "", fmt.Errorf("unknown escape \\%c in double quotes", e)
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unclosed double quote (a value spans one line)")
	default:
		if i := strings.Index(s, " #"); i >= 0 {
			s = s[:i]
		}
		if i := strings.Index(s, "\t#"); i >= 0 {
			s = s[:i]
		}
		return strings.TrimSpace(s), nil
	}
}

// SecretFlags are --secret and --secrets-file of `pipeline create` and
// `update`.
type SecretFlags struct {
	Secrets []string
	File    string
}

// Register adds the flags to fs.
func (f *SecretFlags) Register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.Secrets, "secret", nil, "secret for the configuration's ${NAME}, as NAME=VALUE or NAME (the value of environment variable NAME); repeatable; stored in the pipeline's Secret, never printed")
	fs.StringVar(&f.File, "secrets-file", "", "file of secrets: .env lines NAME=VALUE, or a YAML map when it ends in .yaml/.yml/.json (- reads stdin)")
}

// Values returns the secrets the flags give (nil when neither is given).
// A name in both the file and --secret takes the --secret value.
func (f *SecretFlags) Values(fs *pflag.FlagSet, stdin io.Reader, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	if !fs.Changed("secret") && !fs.Changed("secrets-file") {
		return nil, nil
	}
	out := map[string]string{}
	if fs.Changed("secrets-file") {
		m, err := ReadSecretsFile(f.File, stdin)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	if fs.Changed("secret") {
		m, err := ParseSecretArgs(f.Secrets, lookupEnv)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
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
