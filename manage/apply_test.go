package manage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

const twoPipelines = `# pipelines of the tp namespace
---
apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata:
  name: syslog
  namespace: tp
spec:
  instance: core
  ports:
  - protocol: UDP
    port: 5140
---
apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata:
  name: fwd
spec:
  ports:
  - port: 24224
    protocol: TCP
  serviceType: NodePort
`

func readDocs(t *testing.T, text string) []manage.Document {
	t.Helper()
	docs, err := manage.ReadDocuments(strings.NewReader(text))
	require.NoError(t, err)
	return docs
}

func apply(t *testing.T, m *managetest.Memory, text string, o manage.ApplyOptions) []manage.ApplyResult {
	t.Helper()
	res, err := manage.Apply(context.Background(), m, readDocs(t, text), o)
	require.NoError(t, err)
	return res
}

func actions(rs []manage.ApplyResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name+" "+string(r.Action))
	}
	return out
}

func TestApplyCreatesThenIsUnchanged(t *testing.T) {
	m := newStore(t)
	res := apply(t, m, twoPipelines, manage.ApplyOptions{})
	assert.Equal(t, []string{"syslog created", "fwd created"}, actions(res))
	assert.Equal(t, []int{2, 3}, []int{res[0].Document, res[1].Document}, "documents counted from 1, the comment-only one included")
	fwd := m.Pipeline("fwd")
	require.NotNil(t, fwd)
	assert.Equal(t, "core", fwd.Spec.Instance, "the only instance is used when none is named")
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, fwd.Spec.ServiceType)
	rv := fwd.ResourceVersion

	res = apply(t, m, twoPipelines, manage.ApplyOptions{})
	assert.Equal(t, []string{"syslog unchanged", "fwd unchanged"}, actions(res))
	assert.Empty(t, res[0].Diff)
	assert.Equal(t, rv, m.Pipeline("fwd").ResourceVersion, "an unchanged pipeline is not written")
}

func TestApplyUpdatesWithADiffAndDryRunWritesNothing(t *testing.T) {
	m := newStore(t)
	apply(t, m, twoPipelines, manage.ApplyOptions{})
	before := m.Pipeline("fwd")
	changed := strings.Replace(twoPipelines, "serviceType: NodePort", "serviceType: ClusterIP", 1)

	res := apply(t, m, changed, manage.ApplyOptions{DryRun: true})
	assert.Equal(t, []string{"syslog unchanged", "fwd updated"}, actions(res))
	assert.Contains(t, res[1].Diff, "-  serviceType: NodePort\n+  serviceType: ClusterIP\n")
	assert.Contains(t, res[1].Diff, "--- cluster/tp/fwd\n+++ file/tp/fwd\n")
	assert.Equal(t, before, m.Pipeline("fwd"), "a dry run writes nothing")

	// A dry run on an empty cluster writes nothing either, and shows the
	// whole pipeline as added.
	empty := newStore(t)
	res = apply(t, empty, twoPipelines, manage.ApplyOptions{DryRun: true})
	assert.Equal(t, []string{"syslog created", "fwd created"}, actions(res))
	assert.Contains(t, res[0].Diff, "+  name: syslog\n")
	assert.Nil(t, empty.Pipeline("syslog"))

	res = apply(t, m, changed, manage.ApplyOptions{})
	assert.Equal(t, []string{"syslog unchanged", "fwd updated"}, actions(res))
	after := m.Pipeline("fwd")
	assert.Equal(t, v1alpha1.ServiceTypeClusterIP, after.Spec.ServiceType)
	assert.Equal(t, before.Generation+1, after.Generation)
	assert.Equal(t, []string{"syslog unchanged", "fwd unchanged"}, actions(apply(t, m, changed, manage.ApplyOptions{})))
}

func TestBadDocumentsAreRefusedWithNothingChanged(t *testing.T) {
	good := `apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: good}
spec: {instance: core}
`
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", `document 2 (pipeline "x"): kind "ConfigMap" of apiVersion "v1" cannot be applied`},
		{"no kind", "metadata: {name: x}\n", "document 2 (pipeline \"x\"): a document without a kind cannot be applied"},
		{"unknown field", "apiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: x}\nspec: {instance: core, prots: []}\n", `document 2 (pipeline "x"): decode:`},
		{"no name", "apiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nspec: {instance: core}\n", "document 2: metadata.name is missing"},
		{"duplicate", good, `document 2 (pipeline "good"): pipeline "good" is also document 1`},
		{"health check", "apiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: hc, labels: {telemetry.tpctl.dev/role: health-check}}\nspec: {instance: core}\n", `document 2 (pipeline "hc"): it carries the label`},
		{"not YAML", "a: [b\n", "document 2: not a YAML object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := manage.ReadDocuments(strings.NewReader(good + "---\n" + tc.doc))
			require.Error(t, err)
			assert.Nil(t, docs)
			assert.Contains(t, err.Error(), tc.want)
			var de *manage.DocumentError
			require.ErrorAs(t, err, &de)
			assert.True(t, de.Input)
		})
	}
	_, err := manage.ReadDocuments(strings.NewReader("# nothing\n---\n"))
	require.ErrorContains(t, err, "no pipeline in the file")

	// Documents that read well but fail validation: every one is reported,
	// and the valid ones are not written either.
	m := newStore(t)
	bad := good + `---
apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: Bad_Name}
spec: {instance: core}
---
apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: dup}
spec:
  instance: core
  ports: [{protocol: TCP, port: 5170}, {protocol: TCP, port: 5170}]
---
apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: lost}
spec: {instance: other}
`
	_, err = manage.Apply(context.Background(), m, readDocs(t, bad), manage.ApplyOptions{})
	require.Error(t, err)
	for _, want := range []string{`document 2 (pipeline "Bad_Name"): invalid pipeline`, `document 3 (pipeline "dup"): duplicate backend tcp/5170`,
		`document 4 (pipeline "lost"): core instance "other" not found`} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Nil(t, m.Pipeline("good"), "nothing was written")

	// A server-side refusal in the dry run (here: the instance cannot
	// change) also stops every write.
	syslog := twoPipelines[:strings.Index(twoPipelines, "---\napiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: fwd")]
	apply(t, m, syslog, manage.ApplyOptions{})
	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: manageMeta("other")})
	moved := strings.Replace(syslog, "instance: core", "instance: other", 1)
	_, err = manage.Apply(context.Background(), m, readDocs(t, moved+"---\n"+good), manage.ApplyOptions{})
	require.ErrorContains(t, err, `document 2 (pipeline "syslog"): invalid pipeline "syslog": spec.instance: instance is immutable`)
	assert.Nil(t, m.Pipeline("good"), "the valid document after it was not applied")
	assert.Equal(t, "core", m.Pipeline("syslog").Spec.Instance)
	var de *manage.DocumentError
	require.ErrorAs(t, err, &de)
	assert.False(t, de.Input)
}

func TestApplyRefusesANamespaceMismatch(t *testing.T) {
	docs := readDocs(t, twoPipelines)
	got, err := manage.DocumentsNamespace(docs, "")
	require.NoError(t, err)
	assert.Equal(t, "tp", got, "the namespace the file names")
	got, err = manage.DocumentsNamespace(docs, "tp")
	require.NoError(t, err)
	assert.Equal(t, "tp", got)
	_, err = manage.DocumentsNamespace(docs, "prod")
	require.ErrorContains(t, err, `document 2 (pipeline "syslog"): it names namespace "tp" but -n is "prod"`)

	mixed := readDocs(t, twoPipelines+"---\napiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: c, namespace: other}\nspec: {instance: core}\n")
	_, err = manage.DocumentsNamespace(mixed, "")
	require.ErrorContains(t, err, `document 4 (pipeline "c"): it names namespace "other" but document 2 names "tp"`)

	// Apply itself refuses a document of another namespace than its client's.
	m := managetest.NewMemory("prod")
	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: manageMeta("core")})
	_, err = manage.Apply(context.Background(), m, docs, manage.ApplyOptions{})
	require.ErrorContains(t, err, `it names namespace "tp", not "prod"`)
	assert.Nil(t, m.Pipeline("fwd"))
}

func manageMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func TestRefusalsSayNothingChangedAndWhetherTheFileIsAtFault(t *testing.T) {
	_, err := manage.ReadDocuments(strings.NewReader("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"))
	var re *manage.RefusedError
	require.ErrorAs(t, err, &re)
	assert.True(t, re.InputOnly())
	assert.True(t, strings.HasSuffix(err.Error(), "\nnothing was changed"))

	m := newStore(t)
	m.Fail(managetest.OpApply, errors.New("admission webhook said no"))
	_, err = manage.Apply(context.Background(), m, readDocs(t, twoPipelines), manage.ApplyOptions{DryRun: true})
	require.ErrorAs(t, err, &re)
	assert.False(t, re.InputOnly(), "a refusal by the server is not a usage error")
	assert.Contains(t, err.Error(), "nothing was changed")
}

// failingWrites fails the real (not dry-run) apply of one pipeline.
type failingWrites struct {
	*managetest.Memory
	name string
}

func (f failingWrites) ApplyPipeline(ctx context.Context, p *v1alpha1.Pipeline, o manage.ApplyOptions) (*v1alpha1.Pipeline, error) {
	if !o.DryRun && p.Name == f.name {
		return nil, errors.New("connection reset")
	}
	return f.Memory.ApplyPipeline(ctx, p, o)
}

func TestApplyNamesWhatWasAppliedWhenAWriteFails(t *testing.T) {
	m := newStore(t)
	res, err := manage.Apply(context.Background(), failingWrites{m, "fwd"}, readDocs(t, twoPipelines), manage.ApplyOptions{})
	require.Error(t, err)
	assert.Equal(t, `document 3 (pipeline "fwd"): connection reset (applied before it: syslog)`, err.Error())
	var re *manage.RefusedError
	assert.False(t, errors.As(err, &re), "something was changed: not a refusal")
	assert.Equal(t, []string{"syslog created"}, actions(res))
	assert.NotNil(t, m.Pipeline("syslog"))
	assert.Nil(t, m.Pipeline("fwd"))
}

func TestApplyAcceptsAnObjectAsGetPrintsIt(t *testing.T) {
	got := `apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata:
  name: fwd
  namespace: tp
  uid: 0b5a
  resourceVersion: "812"
  generation: 4
  creationTimestamp: "2025-01-01T00:00:00Z"
  managedFields: [{manager: tpctl, operation: Update}]
  labels: {team: ops}
  annotations:
    telemetry.tpctl.dev/host-listeners: tcp/22=sshd
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec: {instance: core, ports: [{protocol: TCP, port: 24224}]}
status: {portSummary: tcp/24224, readyReplicas: 1}
`
	docs := readDocs(t, got)
	p := docs[0].Pipeline
	assert.Empty(t, p.UID)
	assert.Empty(t, p.ResourceVersion)
	assert.Zero(t, p.Generation)
	assert.True(t, p.CreationTimestamp.IsZero())
	assert.Nil(t, p.ManagedFields)
	assert.Nil(t, p.Annotations, "tpctl's and kubectl's annotations are not the user's")
	assert.Equal(t, map[string]string{"team": "ops"}, p.Labels)
	assert.Equal(t, v1alpha1.PipelineStatus{}, p.Status)

	m := newStore(t)
	assert.Equal(t, []string{"fwd created"}, actions(apply(t, m, got, manage.ApplyOptions{})))
	assert.Empty(t, m.Pipeline("fwd").Status.PortSummary, "status is never applied")
}
