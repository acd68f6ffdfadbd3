package manage

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestCreatePipelinePicksTheOnlyInstance(t *testing.T) {
	ctx := context.Background()
	c, raw := fakeClient(t, nil, instance("core"))
	ports := []v1alpha1.PipelinePort{tcp(5170)}
	p := NewPipeline("ignored", "a", "", PipelineChange{Ports: &ports, ServiceType: ptr.To(v1alpha1.ServiceTypeNodePort)})
	got, err := c.CreatePipeline(ctx, p, nil, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, "core", got.Spec.Instance)
	assert.Equal(t, testNS, got.Namespace, "the client's namespace wins")

	stored := &v1alpha1.Pipeline{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "a"}, stored))
	assert.Equal(t, []v1alpha1.PipelinePort{tcp(5170)}, stored.Spec.Ports)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, stored.Spec.ServiceType)
}

func TestCreatePipelineInstanceErrors(t *testing.T) {
	ctx := context.Background()
	p := NewPipeline(testNS, "a", "edge", PipelineChange{})

	c, _ := fakeClient(t, nil, instance("core"), instance("backup"))
	_, err := c.CreatePipeline(ctx, p, nil, WriteOptions{})
	var ui *UnknownInstanceError
	require.ErrorAs(t, err, &ui)
	assert.EqualError(t, err, `core instance "edge" not found in namespace "tp"; existing: backup, core`)

	_, err = c.CreatePipeline(ctx, NewPipeline(testNS, "a", "", PipelineChange{}), nil, WriteOptions{})
	assert.EqualError(t, err, `namespace "tp" has several core instances (backup, core): choose one with --instance`)

	empty, _ := fakeClient(t, nil)
	_, err = empty.CreatePipeline(ctx, p, nil, WriteOptions{})
	assert.EqualError(t, err, `core instance "edge" not found: no core instance exists in namespace "tp" (is tpctl installed, and is this the right namespace?)`)
}

func TestCreatePipelineDuplicateBackendNamesBothEntries(t *testing.T) {
	c, raw := fakeClient(t, nil, instance("core"))
	texts := []string{"tcp/5170", "udp/5170", "5170"}
	ports, err := ParsePorts(texts)
	var dup *DuplicateBackendError
	require.ErrorAs(t, err, &dup)
	assert.Nil(t, ports)
	assert.Equal(t, PortRef{Index: 0, Text: "tcp/5170"}, dup.First)
	assert.Equal(t, PortRef{Index: 2, Text: "5170"}, dup.Second)
	assert.Contains(t, err.Error(), `duplicate backend tcp/5170: port 1 (tcp/5170) and port 3 (5170) both use it`)

	// The same check guards a create built without ParsePorts.
	list := []v1alpha1.PipelinePort{tcp(80), udp(80), tcp(80)}
	_, err = c.CreatePipeline(context.Background(), NewPipeline(testNS, "a", "core", PipelineChange{Ports: &list}), nil, WriteOptions{})
	require.ErrorAs(t, err, &dup)
	assert.Contains(t, err.Error(), "port 1 (tcp/80) and port 3 (tcp/80)")
	var all v1alpha1.PipelineList
	require.NoError(t, raw.List(context.Background(), &all))
	assert.Empty(t, all.Items, "nothing was written")
}

func TestCreatePipelineValidatesNameAndConfig(t *testing.T) {
	c, _ := fakeClient(t, nil, instance("core"))
	cfg := v1alpha1.PipelineConfig{Format: v1alpha1.ConfigFormatClassic,
		Content: "[INPUT]\n    Name forward\n[INPUT]\n    Name forward\n"}
	_, err := c.CreatePipeline(context.Background(), NewPipeline(testNS, "Bad_Name", "core", PipelineChange{Config: &cfg}), nil, WriteOptions{})
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Len(t, inv.Problems, 2)
	assert.Contains(t, inv.Problems[0], `name "Bad_Name"`)
	assert.Contains(t, inv.Problems[1], "inputs[0] forward")
	assert.Contains(t, inv.Problems[1], "inputs[1] forward")
}

func TestCreatePipelineAlreadyExistsAndDryRun(t *testing.T) {
	ctx := context.Background()
	c, raw := fakeClient(t, nil, instance("core"), assigned("a", "", false, tcp(1)))
	_, err := c.CreatePipeline(ctx, NewPipeline(testNS, "a", "core", PipelineChange{}), nil, WriteOptions{})
	var ae *AlreadyExistsError
	require.ErrorAs(t, err, &ae)
	assert.EqualError(t, err, `pipeline "a" already exists in namespace "tp" (change it with `+"`tpctl pipeline update a`)")

	sent, err := c.CreatePipeline(ctx, NewPipeline(testNS, "b", "", PipelineChange{}), nil, WriteOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, "b", sent.Name)
	assert.Equal(t, "core", sent.Spec.Instance)
	assert.Empty(t, sent.ResourceVersion, "a dry run returns what was sent")
	err = raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "b"}, &v1alpha1.Pipeline{})
	assert.True(t, apierrors.IsNotFound(err), "a dry run stores nothing: %v", err)
}

func TestCreatePipelineShowsTheServersReason(t *testing.T) {
	gk := schema.GroupKind{Group: v1alpha1.Group, Kind: v1alpha1.KindPipeline}
	funcs := &interceptor.Funcs{Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
		return apierrors.NewInvalid(gk, "a", field.ErrorList{
			field.Invalid(field.NewPath("spec", "ports"), "array", "duplicate backend tcp/80: each protocol/port may appear once")})
	}}
	c, _ := fakeClient(t, funcs, instance("core"))
	_, err := c.CreatePipeline(context.Background(), NewPipeline(testNS, "a", "core", PipelineChange{}), nil, WriteOptions{})
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "Invalid", string(ae.Reason))
	assert.Contains(t, err.Error(), `create pipeline "a": the API server refused it (Invalid, 422)`)
	assert.Contains(t, err.Error(), "duplicate backend tcp/80: each protocol/port may appear once")
	assert.True(t, apierrors.IsInvalid(err), "the original error stays reachable")
}

func TestUpdatePipelineKeepsUnchangedFields(t *testing.T) {
	ctx := context.Background()
	c, raw := fakeClient(t, nil, instance("core"), assigned("a", v1alpha1.ServiceTypeNodePort, false, tcp(5170)))
	got, err := c.UpdatePipeline(ctx, "a", PipelineChange{Image: ptr.To("fluent/fluent-bit:4.0")}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, got.Spec.ServiceType, "updating the image keeps the Service type")
	stored := &v1alpha1.Pipeline{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "a"}, stored))
	assert.Equal(t, "fluent/fluent-bit:4.0", stored.Spec.Image)
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, stored.Spec.ServiceType)
	assert.Equal(t, []v1alpha1.PipelinePort{tcp(5170)}, stored.Spec.Ports)

	_, err = c.UpdatePipeline(ctx, "a", PipelineChange{ServiceType: ptr.To(v1alpha1.ServiceTypeClusterIP)}, WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "a"}, stored))
	assert.Equal(t, v1alpha1.ServiceTypeClusterIP, stored.Spec.ServiceType)
	assert.Equal(t, "fluent/fluent-bit:4.0", stored.Spec.Image, "changing the Service type keeps the image")
}

func TestUpdatePipelineRetriesConflicts(t *testing.T) {
	conflicts := 2
	gr := schema.GroupResource{Group: v1alpha1.Group, Resource: v1alpha1.ResourcePipeline}
	funcs := &interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		if conflicts > 0 {
			conflicts--
			return apierrors.NewConflict(gr, obj.GetName(), errors.New("the object has been modified"))
		}
		return c.Update(ctx, obj, opts...)
	}}
	c, _ := fakeClient(t, funcs, instance("core"), assigned("a", "", false, tcp(1)))
	got, err := c.UpdatePipeline(context.Background(), "a", PipelineChange{Replicas: ptr.To(int32(3))}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), got.Spec.ReplicaCount())
	assert.Zero(t, conflicts)
}

func TestUpdatePipelineDryRunAndValidation(t *testing.T) {
	ctx := context.Background()
	c, raw := fakeClient(t, nil, instance("core"), assigned("a", "", false, tcp(1)))
	ports := []v1alpha1.PipelinePort{tcp(9), tcp(9)}
	_, err := c.UpdatePipeline(ctx, "a", PipelineChange{Ports: &ports, PortTexts: []string{"9", "tcp/9"}}, WriteOptions{})
	assert.ErrorContains(t, err, "port 1 (9) and port 2 (tcp/9)")

	sent, err := c.UpdatePipeline(ctx, "a", PipelineChange{WorkloadKind: ptr.To(v1alpha1.WorkloadStatefulSet)}, WriteOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.WorkloadStatefulSet, sent.Spec.Workload.Kind)
	stored := &v1alpha1.Pipeline{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "a"}, stored))
	assert.Empty(t, stored.Spec.Workload.Kind, "a dry run stores nothing")
}

func TestGetAndDeletePipelineNotFoundListsExisting(t *testing.T) {
	ctx := context.Background()
	c, raw := fakeClient(t, nil, instance("core"), assigned("b", "", false), assigned("a", "", false))
	_, err := c.GetPipeline(ctx, "zz")
	var nf *NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.EqualError(t, err, `pipeline "zz" not found in namespace "tp"; existing: a, b`)

	_, err = c.DeletePipeline(ctx, "a", WriteOptions{DryRun: true})
	require.NoError(t, err)
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "a"}, &v1alpha1.Pipeline{}), "dry run keeps it")
	gone, err := c.DeletePipeline(ctx, "a", WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, "a", gone.Name)
	list, err := c.ListPipelines(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "b", list[0].Name)
}

func TestInstanceOperations(t *testing.T) {
	ctx := context.Background()
	inst := instance("core")
	inst.Spec.HTTPSProxy = "http://old:3128"
	c, raw := fakeClient(t, nil, inst)

	_, err := c.GetInstance(ctx, "edge")
	assert.EqualError(t, err, `core instance "edge" not found in namespace "tp"; existing: core`)

	got, err := c.UpdateInstance(ctx, "core", InstanceChange{HTTPProxy: ptr.To("http://proxy:3128"), HealthCheckPort: ptr.To(int32(2030))}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, "http://proxy:3128", got.Spec.HTTPProxy)
	stored := &v1alpha1.CoreInstance{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core"}, stored))
	assert.Equal(t, "http://old:3128", stored.Spec.HTTPSProxy, "unset flags keep their values")
	assert.Equal(t, int32(2030), stored.Spec.HealthCheckPort())
	assert.True(t, stored.Spec.HealthCheckEnabled())

	_, err = c.UpdateInstance(ctx, "core", InstanceChange{HTTPSProxy: ptr.To(""), HealthCheck: ptr.To(false)}, WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core"}, stored))
	assert.Empty(t, stored.Spec.HTTPSProxy, "an empty value clears a proxy")
	assert.False(t, stored.Spec.HealthCheckEnabled())

	_, err = c.UpdateInstance(ctx, "core", InstanceChange{HTTPProxy: ptr.To("proxy:3128"), HealthCheckPort: ptr.To(int32(70000))}, WriteOptions{})
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Len(t, inv.Problems, 2)
	assert.Contains(t, err.Error(), "want http://host:port")
	assert.Contains(t, err.Error(), "health-check port 70000")
}
