package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// serverValidator runs the same steps the API server runs on a custom
// resource: defaulting, OpenAPI schema validation, then CEL rules. It is built
// from the embedded CRD, so it tests what the chart installs.
type serverValidator struct {
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func newServerValidator(t *testing.T, kind string) *serverValidator {
	t.Helper()
	crd := crdByKind(t, kind)
	var internal apiextensions.CustomResourceDefinition
	require.NoError(t, apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, &internal, nil))
	internal.Status.StoredVersions = []string{v1alpha1.Version} // set by the server on create
	// The CRD itself must pass the API server's checks, including CEL
	// compilation and the estimated cost limits.
	errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), &internal)
	require.Empty(t, errs.ToAggregate(), "CRD %s is not accepted", crd.Name)

	// A single-version CRD keeps its schema at spec.validation internally.
	var schema *apiextensions.JSONSchemaProps
	if internal.Spec.Validation != nil {
		schema = internal.Spec.Validation.OpenAPIV3Schema
	} else {
		schema = internal.Spec.Versions[0].Schema.OpenAPIV3Schema
	}
	structural, err := structuralschema.NewStructural(schema)
	require.NoError(t, err)
	sv, _, err := apiservervalidation.NewSchemaValidator(schema)
	require.NoError(t, err)
	return &serverValidator{structural: structural, schema: sv,
		cel: cel.NewValidator(structural, true, celconfig.PerCallLimit)}
}

// validate returns the error messages for obj (YAML), as `kubectl apply`
// would print them, after applying defaults. old is the stored object for
// updates, or "".
func (v *serverValidator) validate(t *testing.T, obj, old string) []string {
	t.Helper()
	decode := func(s string) map[string]any {
		if s == "" {
			return nil
		}
		// Decode as the API server does: JSON numbers without a fraction
		// become int64, which CEL's int type needs.
		data, err := yaml.YAMLToJSON([]byte(s))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, utiljson.Unmarshal(data, &m))
		structuraldefaulting.Default(m, v.structural)
		return m
	}
	o, oldObj := decode(obj), decode(old)
	errs := apiservervalidation.ValidateCustomResource(nil, o, v.schema)
	var oldAny any
	if oldObj != nil {
		oldAny = oldObj
	}
	celErrs, _ := v.cel.Validate(context.Background(), nil, v.structural, o, oldAny, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

const pipelineHead = `apiVersion: telemetry.tpctl.dev/v1alpha1
kind: Pipeline
metadata: {name: p, namespace: default}
`

func TestPipelineRejectedByServerRules(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindPipeline)
	tests := []struct {
		name string
		spec string
		want []string // substrings, one per expected error; nil = accepted
	}{
		{name: "minimal", spec: "instance: core"},
		{name: "seed: TCP 1850 and TCP 1851", spec: "instance: core\nports: [{port: 1850}, {port: 1851, protocol: TCP}]"},
		{name: "seed: TCP 1600 and UDP 1600 in one pipeline", spec: "instance: core\nports: [{port: 1600}, {port: 1600, protocol: UDP}]"},
		{
			name: "seed: TCP 1850 twice",
			spec: "instance: core\nports: [{port: 1850}, {port: 1851}, {port: 1850, protocol: TCP}]",
			want: []string{"duplicate backend TCP/1850: each protocol/port may appear once in a pipeline (TCP and UDP may share a number)"},
		},
		{name: "missing instance", spec: "ports: []", want: []string{"spec.instance: Required value"}},
		{name: "port 0", spec: "instance: core\nports: [{port: 0}]", want: []string{"should be greater than or equal to 1"}},
		{name: "port 65536", spec: "instance: core\nports: [{port: 65536}]", want: []string{"should be less than or equal to 65535"}},
		{name: "bad protocol", spec: "instance: core\nports: [{port: 1, protocol: SCTP}]", want: []string{"Too long: may not be more than 3 bytes", `Unsupported value: "SCTP"`}},
		{name: "bad service type", spec: "instance: core\nserviceType: ExternalName", want: []string{`Unsupported value: "ExternalName"`}},
		{name: "bad workload kind", spec: "instance: core\nworkload: {kind: Job}", want: []string{`Unsupported value: "Job"`}},
		{name: "negative replicas", spec: "instance: core\nworkload: {replicas: -1}", want: []string{"should be greater than or equal to 0"}},
		{name: "DaemonSet with replicas", spec: "instance: core\nworkload: {kind: DaemonSet, replicas: 2}", want: []string{"replicas cannot be set for a DaemonSet"}},
		{name: "bad format", spec: "instance: core\nconfig: {format: toml}", want: []string{`Unsupported value: "toml"`}},
		{name: "name syntax", spec: "instance: core\nports: [{port: 1, name: Web_1}]", want: []string{"should match"}},
		{name: "name without letter", spec: "instance: core\nports: [{port: 1, name: '123'}]", want: []string{"a port name needs at least one letter"}},
		{name: "reserved name", spec: "instance: core\nports: [{port: 81, name: tcp-80}]", want: []string{"names of the form tcp-N or udp-N are reserved"}},
		{name: "own reserved name", spec: "instance: core\nports: [{port: 80, name: tcp-80}]"},
		{name: "duplicate names", spec: "instance: core\nports: [{port: 1, name: web}, {port: 2, name: web}]", want: []string{"port names must be unique within a pipeline"}},
		{name: "scheduling", spec: "instance: core\nnodeSelector: {disk: ssd}\ntolerations: [{key: dedicated, operator: Equal, value: logs, effect: NoSchedule}]\npodAnnotations: {example.com/team: obs, prometheus.io/scrape: 'true'}"},
		{name: "own annotation", spec: "instance: core\npodAnnotations: {telemetry.tpctl.dev/config-hash: x}", want: []string{"annotations under telemetry.tpctl.dev/ are the operator's own"}},
		{name: "kubernetes annotation", spec: "instance: core\npodAnnotations: {kubernetes.io/psp: x}", want: []string{"reserved for Kubernetes"}},
		{name: "kubernetes subdomain annotation", spec: "instance: core\npodAnnotations: {node.k8s.io/x: z}", want: []string{"reserved for Kubernetes"}},
		{name: "long selector value", spec: "instance: core\nnodeSelector: {disk: " + strings.Repeat("s", 64) + "}", want: []string{"a node selector key is at most 317 characters and its value at most 63"}},
		{name: "too many annotations", spec: "instance: core\npodAnnotations: {" + manyPairs(33) + "}", want: []string{"must have at most 32 items"}},
		{name: "too many tolerations", spec: "instance: core\ntolerations: [" + strings.TrimSuffix(strings.Repeat("{key: a}, ", 33), ", ") + "]", want: []string{"must have at most 32 items"}},
		{
			name: "too many ports",
			spec: "instance: core\nports: [" + manyPorts(65) + "]",
			want: []string{"must have at most 64 items"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := v.validate(t, pipelineHead+"spec:\n  "+strings.ReplaceAll(tc.spec, "\n", "\n  ")+"\n", "")
			require.Len(t, got, len(tc.want), "errors: %q", got)
			for i, w := range tc.want {
				assert.Contains(t, got[i], w)
			}
		})
	}
}

func TestDuplicateBackendMessage(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindPipeline)
	got := v.validate(t, pipelineHead+"spec:\n  instance: core\n  ports: [{port: 5170, protocol: UDP}, {port: 5170}, {port: 5170, protocol: UDP}]\n", "")
	assert.Equal(t, []string{`spec.ports: Invalid value: duplicate backend UDP/5170: each protocol/port may appear once in a pipeline (TCP and UDP may share a number)`}, got)
}

func TestPipelineInstanceIsImmutable(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindPipeline)
	got := v.validate(t, pipelineHead+"spec: {instance: other}\n", pipelineHead+"spec: {instance: core}\n")
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "instance is immutable")
	assert.Empty(t, v.validate(t, pipelineHead+"spec: {instance: core, image: x}\n", pipelineHead+"spec: {instance: core}\n"))
}

func TestServerDefaults(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindCoreInstance)
	obj := map[string]any{"apiVersion": "telemetry.tpctl.dev/v1alpha1", "kind": "CoreInstance", "spec": map[string]any{}}
	structuraldefaulting.Default(obj, v.structural)
	spec := obj["spec"].(map[string]any)
	assert.Equal(t, map[string]any{"enabled": true, "port": int64(2020), "protocol": "TCP"}, spec["healthCheck"])
	assert.Equal(t, map[string]any{"serviceType": "LoadBalancer"}, spec["pipelineDefaults"])

	pv := newServerValidator(t, v1alpha1.KindPipeline)
	pl := map[string]any{"spec": map[string]any{"instance": "core", "ports": []any{map[string]any{"port": int64(5170)}}}}
	structuraldefaulting.Default(pl, pv.structural)
	pspec := pl["spec"].(map[string]any)
	assert.Equal(t, true, pspec["autoDetectPorts"])
	assert.Equal(t, map[string]any{"kind": "Deployment"}, pspec["workload"])
	assert.Equal(t, map[string]any{"format": "yaml"}, pspec["config"])
	assert.Equal(t, "TCP", pspec["ports"].([]any)[0].(map[string]any)["protocol"])
}

func manyPorts(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("{port: %d}", 1000+i)
	}
	return strings.Join(parts, ", ")
}

func manyPairs(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("k%d: v", i)
	}
	return strings.Join(parts, ", ")
}

func pipelineNamed(name, spec string) string {
	return "apiVersion: telemetry.tpctl.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: " + name + ", namespace: default}\nspec:\n  " +
		strings.ReplaceAll(spec, "\n", "\n  ") + "\n"
}

func instanceNamed(name, spec string) string {
	return "apiVersion: telemetry.tpctl.dev/v1alpha1\nkind: CoreInstance\nmetadata: {name: " + name + ", namespace: default}\nspec:\n  " +
		strings.ReplaceAll(spec, "\n", "\n  ") + "\n"
}

// Names, sizes, proxies and image references are checked by the API
// server, before any controller reads them.
func TestInputsBoundedByServerRules(t *testing.T) {
	pv := newServerValidator(t, v1alpha1.KindPipeline)
	iv := newServerValidator(t, v1alpha1.KindCoreInstance)
	long := func(n int) string { return "p" + strings.Repeat("a", n-1) }
	tests := []struct {
		name string
		v    *serverValidator
		obj  string
		want []string
	}{
		{"pipeline name of 54", pv, pipelineNamed(long(54), "instance: core"), nil},
		{"pipeline name of 55", pv, pipelineNamed(long(55), "instance: core"), []string{"a pipeline name has at most 54 characters"}},
		{"pipeline name with a dot", pv, pipelineNamed("a.b", "instance: core"), []string{"must be a DNS label"}},
		{"pipeline name starting with a digit", pv, pipelineNamed("1a", "instance: core"), []string{"must be a DNS label"}},
		{"instance of 63", pv, pipelineNamed("p", "instance: "+long(63)), nil},
		{"instance of 64", pv, pipelineNamed("p", "instance: "+long(64)), []string{"Too long: may not be more than 63"}},
		{"instance not a DNS label", pv, pipelineNamed("p", "instance: Core_1"), []string{"spec.instance: Invalid value"}},
		{"replicas 100", pv, pipelineNamed("p", "instance: core\nworkload: {replicas: 100}"), nil},
		{"replicas 101", pv, pipelineNamed("p", "instance: core\nworkload: {replicas: 101}"), []string{"less than or equal to 100"}},
		{"cpu 64 memory 64Gi", pv, pipelineNamed("p", "instance: core\nresources: {limits: {cpu: 64, memory: 64Gi}, requests: {cpu: 500m, memory: 1Gi}}"), nil},
		{"cpu 65", pv, pipelineNamed("p", "instance: core\nresources: {limits: {cpu: '65'}}"), []string{"limits: cpu may be at most 64"}},
		{"memory 1Ti request", pv, pipelineNamed("p", "instance: core\nresources: {requests: {memory: 1Ti}}"), []string{"requests: cpu may be at most 64 and memory at most 64Gi"}},
		{"image with tag", pv, pipelineNamed("p", "instance: core\nimage: cr.fluentbit.io/fluent/fluent-bit:4.0.3"), nil},
		{"image with registry port and digest", pv, pipelineNamed("p", "instance: core\nimage: registry.local:5000/team/fb@sha256:"+strings.Repeat("a", 64)), nil},
		{"image with a space", pv, pipelineNamed("p", "instance: core\nimage: 'fluent bit'"), []string{"spec.image: Invalid value"}},
		{"image with uppercase path", pv, pipelineNamed("p", "instance: core\nimage: repo/Fluent"), []string{"spec.image: Invalid value"}},
		{"image too long", pv, pipelineNamed("p", "instance: core\nimage: "+strings.Repeat("a", 513)), []string{"Too long: may not be more than 512"}},
		{"instance name of 47", iv, instanceNamed(long(47), "{}"), nil},
		{"instance name of 48", iv, instanceNamed(long(48), "{}"), []string{"an instance name has at most 47 characters"}},
		{"proxies", iv, instanceNamed("core", "httpProxy: http://proxy.example:3128\nhttpsProxy: https://10.0.0.1:3129\nnoProxy: localhost,.svc"), nil},
		{"proxy with credentials", iv, instanceNamed("core", "httpsProxy: http://bob:secret@proxy.example:3128"), []string{"must not carry credentials"}},
		{"proxy not a URL", iv, instanceNamed("core", "httpProxy: proxy.example:3128"), []string{"must be an http, https or socks5 URL"}},
		{"proxy of another scheme", iv, instanceNamed("core", "httpProxy: ftp://proxy.example"), []string{"must be an http, https or socks5 URL"}},
		{"noProxy with a space", iv, instanceNamed("core", "noProxy: 'a, b'"), []string{"spec.noProxy: Invalid value"}},
		{"proxy Secret", iv, instanceNamed("core", "proxySecretRef: {name: core-proxy}\nnoProxy: localhost"), nil},
		{"proxy Secret and URL", iv, instanceNamed("core", "proxySecretRef: {name: core-proxy}\nhttpProxy: http://p:1"), []string{"set either proxySecretRef or httpProxy/httpsProxy"}},
		{"default image of an instance", iv, instanceNamed("core", "pipelineDefaults: {image: 'bad image'}"), []string{"spec.pipelineDefaults.image: Invalid value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.v.validate(t, tc.obj, "")
			require.Len(t, got, len(tc.want), "errors: %q", got)
			for i, w := range tc.want {
				assert.Contains(t, got[i], w)
			}
		})
	}
}
