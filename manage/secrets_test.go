package manage

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

const sentinel = "s3nt1nel-VALUE-9f2c"

func TestParseDotenv(t *testing.T) {
	in := "# comment\n\nexport TOKEN=abc\nPLAIN = spaced value  # trailing comment\n" +
		"SINGLE='lit $HOME \\n #x'\nDOUBLE=\"a\\nb \\\"q\\\" \\$HOME\"\nEMPTY=\nDOLLAR=$OTHER\r\nHASH=a#b\n"
	got, err := ParseDotenv([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"TOKEN": "abc", "PLAIN": "spaced value", "SINGLE": `lit $HOME \n #x`,
		"DOUBLE": "a\nb \"q\" $HOME", "EMPTY": "", "DOLLAR": "$OTHER", "HASH": "a#b",
	}, got, "nothing is expanded; quotes and comments as documented")
}

func TestParseDotenvErrorsNameLinesNotValues(t *testing.T) {
	in := "GOOD=1\n" + sentinel + "\nbad-name=" + sentinel + "\nQ=\"" + sentinel + "\nGOOD=2\nT='" + sentinel + "' tail\n"
	_, err := ParseDotenv([]byte(in))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"line 2: not NAME=VALUE", `line 3: secret name "bad-name"`, "line 4 (Q): unclosed double quote",
		"line 5: GOOD is given twice", "line 6 (T): text after the closing quote"} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, sentinel)
}

func TestParseSecretsFileYAML(t *testing.T) {
	got, err := ParseSecretsFile("s.yaml", []byte("TOKEN: \"abc\"\nPASS: 'x: y'\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"TOKEN": "abc", "PASS": "x: y"}, got)

	got, err = ParseSecretsFile("s.yml", []byte("ON: yes\nN: 0123\nF: 1.50\nQ: \"a\\tb\"\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"ON": "yes", "N": "0123", "F": "1.50", "Q": "a\tb"}, got, "values and keys as written, not as YAML 1.1 reads them")

	_, err = ParseSecretsFile("s.yml", []byte("L: [\""+sentinel+"\"]\nNUL:\nbad-key: \""+sentinel+"\"\nOK: \""+sentinel+"\"\nOK: x\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 1: the value of L is not a single value")
	assert.Contains(t, err.Error(), `line 2: NUL has no value (write "" for an empty one)`)
	assert.Contains(t, err.Error(), `line 3: secret name "bad-key" is not a valid environment variable name`)
	assert.Contains(t, err.Error(), "line 5: OK is given twice")
	assert.NotContains(t, err.Error(), sentinel)

	_, err = ParseSecretsFile("s.json", []byte("{\"A\": \""+sentinel))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), sentinel, "a parse error does not quote the document")

	got, err = ParseSecretsFile("prod.env", []byte("A=1\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"A": "1"}, got)
}

func TestParseSecretArgs(t *testing.T) {
	env := map[string]string{"FROM_ENV": sentinel}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	got, err := ParseSecretArgs([]string{"A=x=y", "FROM_ENV", "EMPTY="}, lookup)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"A": "x=y", "FROM_ENV": sentinel, "EMPTY": ""}, got)

	_, err = ParseSecretArgs([]string{sentinel, "1BAD=" + sentinel, "UNSET", "A=1", "A=2"}, lookup)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "--secret #1 is neither NAME=VALUE nor the name of an environment variable (not shown")
	assert.Contains(t, msg, `--secret #2: secret name "1BAD" is not a valid environment variable name`)
	assert.Contains(t, msg, "--secret UNSET: no value given and no environment variable UNSET is set")
	assert.Contains(t, msg, "--secret A is given twice")
	assert.NotContains(t, msg, sentinel)

	_, err = ParseSecretArgs([]string{"X"}, nil)
	assert.ErrorContains(t, err, "no environment variable X is set")
}

func TestApplySecretChange(t *testing.T) {
	data := map[string][]byte{"A": []byte("1"), "B": []byte("22")}
	out, changed, err := ApplySecretChange("p", data, SecretChange{Set: map[string]string{"A": "1"}})
	require.NoError(t, err)
	assert.False(t, changed, "the same value is no change")
	assert.Equal(t, data, out)

	out, changed, err = ApplySecretChange("p", data, SecretChange{Set: map[string]string{"C": "333"}, Unset: []string{"A"}})
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, []SecretKey{{Name: "B", Size: 2}, {Name: "C", Size: 3}}, SecretKeys(out))
	assert.Len(t, data, 2, "the input is not modified")

	_, _, err = ApplySecretChange("p", data, SecretChange{Unset: []string{"Z", "Y"}})
	var nf *SecretKeyNotFoundError
	require.ErrorAs(t, err, &nf)
	assert.EqualError(t, err, `pipeline "p" has no secret Z, Y; existing: A, B`)

	_, _, err = ApplySecretChange("p", nil, SecretChange{Set: map[string]string{"BIG": strings.Repeat("x", MaxSecretsBytes)}})
	assert.ErrorContains(t, err, "a Secret holds at most 1048576")
}

func TestSecretChangeValidate(t *testing.T) {
	err := SecretChange{Set: map[string]string{"ok_1": "x", "a-b": sentinel, "NUL": "a\x00" + sentinel}, Unset: []string{"ok_1", "9x"}}.Validate("p")
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Equal(t, []string{
		"the value of NUL contains a NUL byte, which no environment variable can hold",
		`secret name "a-b" is not a valid environment variable name: use letters, digits and '_', not starting with a digit`,
		"ok_1 is both set and removed",
		`secret name "9x" is not a valid environment variable name: use letters, digits and '_', not starting with a digit`,
	}, inv.Problems)
	assert.NotContains(t, err.Error(), sentinel)
	assert.NoError(t, SecretChange{Set: map[string]string{"_A": ""}}.Validate("p"))
}

func TestClaimPipelineSecret(t *testing.T) {
	p := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: testNS, UID: "new"}, Spec: v1alpha1.PipelineSpec{Instance: "core"}}
	own := NewPipelineSecret(p, map[string][]byte{"A": []byte("1")})
	claimed, err := ClaimPipelineSecret(own, p)
	require.NoError(t, err)
	assert.False(t, claimed)

	old := p.DeepCopy()
	old.UID = "old"
	stale := NewPipelineSecret(old, map[string][]byte{"A": []byte(sentinel)})
	claimed, err = ClaimPipelineSecret(stale, p)
	require.NoError(t, err)
	assert.True(t, claimed)
	assert.Empty(t, stale.Data, "the old pipeline's values never reach the new one")
	assert.Equal(t, k8stypes.UID("new"), stale.OwnerReferences[0].UID)

	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "p-secrets", Namespace: testNS}}
	_, err = ClaimPipelineSecret(foreign, p)
	assert.ErrorContains(t, err, "is not labelled as pipeline p's")
	foreign.Labels = map[string]string{v1alpha1.LabelPipeline: "p"}
	_, err = ClaimPipelineSecret(foreign, p)
	assert.ErrorContains(t, err, "is not owned by the pipeline")
}

func TestClientChangePipelineSecrets(t *testing.T) {
	ctx := context.Background()
	p := NewPipeline(testNS, "p", "core", PipelineChange{})
	p.UID = "uid-p"
	c, raw := fakeClient(t, nil, instance("core"), p)

	keys, err := c.PipelineSecrets(ctx, "p")
	require.NoError(t, err)
	assert.Empty(t, keys)

	// A dry run stores nothing.
	_, err = c.ChangePipelineSecrets(ctx, "p", SecretChange{Set: map[string]string{"TOKEN": sentinel}}, WriteOptions{DryRun: true})
	require.NoError(t, err)
	keys, err = c.PipelineSecrets(ctx, "p")
	require.NoError(t, err)
	assert.Empty(t, keys)

	keys, err = c.ChangePipelineSecrets(ctx, "p", SecretChange{Set: map[string]string{"TOKEN": sentinel, "USER": "me"}}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []SecretKey{{Name: "TOKEN", Size: len(sentinel)}, {Name: "USER", Size: 2}}, keys)
	s := &corev1.Secret{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "p-secrets"}, s))
	assert.Equal(t, sentinel, string(s.Data["TOKEN"]))
	assert.Equal(t, "p", s.Labels[v1alpha1.LabelPipeline])
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, v1alpha1.KindPipeline, s.OwnerReferences[0].Kind)
	assert.Equal(t, k8stypes.UID("uid-p"), s.OwnerReferences[0].UID)
	rev1 := labelOf(t, raw, "p")
	assert.Len(t, rev1, 16)

	// The same value again: no new revision, no roll.
	_, err = c.ChangePipelineSecrets(ctx, "p", SecretChange{Set: map[string]string{"TOKEN": sentinel}}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, rev1, labelOf(t, raw, "p"))

	// A change rolls; a missing key is refused and changes nothing.
	keys, err = c.ChangePipelineSecrets(ctx, "p", SecretChange{Unset: []string{"USER"}}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []SecretKey{{Name: "TOKEN", Size: len(sentinel)}}, keys)
	rev2 := labelOf(t, raw, "p")
	assert.NotEqual(t, rev1, rev2)
	_, err = c.ChangePipelineSecrets(ctx, "p", SecretChange{Unset: []string{"NOPE"}}, WriteOptions{})
	assert.EqualError(t, err, `pipeline "p" has no secret NOPE; existing: TOKEN`)
	assert.Equal(t, rev2, labelOf(t, raw, "p"))

	_, err = c.ChangePipelineSecrets(ctx, "missing", SecretChange{Set: map[string]string{"A": "1"}}, WriteOptions{})
	var nf *NotFoundError
	assert.ErrorAs(t, err, &nf)
	_, err = c.PipelineSecrets(ctx, "missing")
	assert.ErrorAs(t, err, &nf)
}

func TestClientRefusesAForeignSecret(t *testing.T) {
	ctx := context.Background()
	p := NewPipeline(testNS, "p", "core", PipelineChange{})
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "p-secrets", Namespace: testNS}, Data: map[string][]byte{"X": []byte("theirs")}}
	c, raw := fakeClient(t, nil, instance("core"), p, foreign)
	_, err := c.ChangePipelineSecrets(ctx, "p", SecretChange{Set: map[string]string{"A": "1"}}, WriteOptions{})
	assert.ErrorContains(t, err, "does not write over another one")
	_, err = c.PipelineSecrets(ctx, "p")
	assert.ErrorContains(t, err, "does not write over another one")
	s := &corev1.Secret{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "p-secrets"}, s))
	assert.Equal(t, map[string][]byte{"X": []byte("theirs")}, s.Data)
	assert.Empty(t, labelOf(t, raw, "p"))
}

func TestCreatePipelineWithSecretsLabelsOnce(t *testing.T) {
	ctx := context.Background()
	c, raw := fakeClient(t, nil, instance("core"))
	p := NewPipeline(testNS, "p", "", PipelineChange{})
	got, keys, err := CreatePipelineWithSecrets(ctx, c, p, nil, map[string]string{"TOKEN": sentinel}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []SecretKey{{Name: "TOKEN", Size: len(sentinel)}}, keys)
	rev := got.Labels[v1alpha1.LabelSecretsRevision]
	require.NotEmpty(t, rev, "created with the revision: its first pods wait for the Secret")
	assert.Equal(t, rev, labelOf(t, raw, "p"), "storing the Secret does not roll the new pods")
	s := &corev1.Secret{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "p-secrets"}, s))
	assert.Equal(t, sentinel, string(s.Data["TOKEN"]))

	// Invalid secrets: nothing is created.
	_, _, err = CreatePipelineWithSecrets(ctx, c, NewPipeline(testNS, "q", "", PipelineChange{}), nil, map[string]string{"a-b": "x"}, WriteOptions{})
	assert.ErrorContains(t, err, `"a-b" is not a valid environment variable name`)
	assert.Error(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "q"}, &v1alpha1.Pipeline{}))
}

func labelOf(t *testing.T, raw client.Client, name string) string {
	t.Helper()
	p := &v1alpha1.Pipeline{}
	require.NoError(t, raw.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, p))
	return p.Labels[v1alpha1.LabelSecretsRevision]
}

// A Secret left by an earlier pipeline of the same name is taken over with
// its values dropped, and the pods roll even on a create (they may have
// started with the old values).
func TestClientTakesOverAStaleSecretAndRolls(t *testing.T) {
	ctx := context.Background()
	old := NewPipeline(testNS, "p", "core", PipelineChange{})
	old.UID = "old-uid"
	stale := NewPipelineSecret(old, map[string][]byte{"OLD": []byte(sentinel)})
	c, raw := fakeClient(t, nil, instance("core"), stale)
	got, keys, err := CreatePipelineWithSecrets(ctx, c, NewPipeline(testNS, "p", "", PipelineChange{}), nil, map[string]string{"NEW": "1"}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []SecretKey{{Name: "NEW", Size: 1}}, keys)
	s := &corev1.Secret{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "p-secrets"}, s))
	assert.Equal(t, map[string][]byte{"NEW": []byte("1")}, s.Data)
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, got.UID, s.OwnerReferences[0].UID)
	assert.NotEqual(t, got.Labels[v1alpha1.LabelSecretsRevision], labelOf(t, raw, "p"), "a new revision rolls pods that read the old values")
}

func TestNoSecretsForTheHealthCheckPipeline(t *testing.T) {
	hc := NewPipeline(testNS, "core-health", "core", PipelineChange{})
	hc.Labels = map[string]string{v1alpha1.LabelRole: v1alpha1.RoleHealthCheck}
	c, raw := fakeClient(t, nil, instance("core"), hc)
	_, err := c.ChangePipelineSecrets(context.Background(), "core-health", SecretChange{Set: map[string]string{"A": "1"}}, WriteOptions{})
	assert.ErrorContains(t, err, "which the operator manages; it takes no secrets")
	assert.Empty(t, labelOf(t, raw, "core-health"))
	assert.Error(t, raw.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: "core-health-secrets"}, &corev1.Secret{}))
}
