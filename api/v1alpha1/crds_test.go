package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func crdByKind(t *testing.T, kind string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crds, err := v1alpha1.CRDs()
	require.NoError(t, err)
	for _, crd := range crds {
		if crd.Spec.Names.Kind == kind {
			return crd
		}
	}
	t.Fatalf("no CRD for kind %s", kind)
	return nil
}

func TestEmbeddedCRDsParse(t *testing.T) {
	crds, err := v1alpha1.CRDs()
	require.NoError(t, err)
	require.Len(t, crds, 2)
	assert.Equal(t, "coreinstances.telemetry.tpctl.dev", crds[0].Name)
	assert.Equal(t, "pipelines.telemetry.tpctl.dev", crds[1].Name)
	for _, crd := range crds {
		assert.Equal(t, v1alpha1.Group, crd.Spec.Group)
		assert.Equal(t, apiextensionsv1.NamespaceScoped, crd.Spec.Scope)
		require.Len(t, crd.Spec.Versions, 1)
		v := crd.Spec.Versions[0]
		assert.Equal(t, v1alpha1.Version, v.Name)
		assert.True(t, v.Served)
		assert.True(t, v.Storage)
		require.NotNil(t, v.Subresources)
		assert.NotNil(t, v.Subresources.Status, "status subresource")
		assert.Contains(t, crd.Spec.Names.Categories, "tpctl")
	}
	assert.Equal(t, []string{"ci"}, crds[0].Spec.Names.ShortNames)
	assert.Equal(t, []string{"pl"}, crds[1].Spec.Names.ShortNames)
}

func TestPipelineCRDCarriesValidation(t *testing.T) {
	crd := crdByKind(t, v1alpha1.KindPipeline)
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	assert.Equal(t, []string{"instance"}, spec.Required)

	ports := spec.Properties["ports"]
	require.NotNil(t, ports.MaxItems)
	assert.EqualValues(t, v1alpha1.MaxPortsPerPipeline, *ports.MaxItems)
	var rules []string
	for _, r := range ports.XValidations {
		rules = append(rules, r.Rule)
	}
	assert.Contains(t, rules, "self.all(p, self.exists_one(q, q.protocol == p.protocol && q.port == p.port))")
	assert.True(t, strings.HasPrefix(ports.XValidations[0].MessageExpression, "'duplicate backend %s/%d"), ports.XValidations[0].MessageExpression)

	item := ports.Items.Schema
	port := item.Properties["port"]
	require.NotNil(t, port.Minimum)
	require.NotNil(t, port.Maximum)
	assert.EqualValues(t, 1, *port.Minimum)
	assert.EqualValues(t, 65535, *port.Maximum)
	assert.Len(t, item.Properties["protocol"].Enum, 2)

	workload := spec.Properties["workload"]
	assert.Len(t, workload.Properties["kind"].Enum, 3)
	assert.EqualValues(t, 0, *workload.Properties["replicas"].Minimum)
	assert.Len(t, spec.Properties["serviceType"].Enum, 3)
	assert.Len(t, spec.Properties["config"].Properties["format"].Enum, 2)

	var columns []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		columns = append(columns, c.Name)
	}
	assert.Equal(t, []string{"Instance", "Kind", "Service", "Ports", "Ready", "Replicas", "Ports-Assigned", "Age"}, columns)
}

func TestCoreInstanceCRDDefaults(t *testing.T) {
	crd := crdByKind(t, v1alpha1.KindCoreInstance)
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	hc := spec.Properties["healthCheck"]
	assert.JSONEq(t, "2020", string(hc.Properties["port"].Default.Raw))
	assert.JSONEq(t, "true", string(hc.Properties["enabled"].Default.Raw))
	assert.JSONEq(t, `"TCP"`, string(hc.Properties["protocol"].Default.Raw))
	assert.JSONEq(t, `"LoadBalancer"`, string(spec.Properties["pipelineDefaults"].Properties["serviceType"].Default.Raw))
}

func TestCRDManifestsAreTheFiles(t *testing.T) {
	m, err := v1alpha1.CRDManifests()
	require.NoError(t, err)
	assert.Len(t, m, 2)
	for name, data := range m {
		assert.True(t, strings.HasPrefix(name, "telemetry.tpctl.dev_"), name)
		assert.Contains(t, string(data), "kind: CustomResourceDefinition")
	}
}
