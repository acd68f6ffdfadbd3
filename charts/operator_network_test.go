package charts

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// renderedOperator returns the Deployment and the NetworkPolicies of the
// operator chart rendered with vals.
func renderedOperator(t *testing.T, vals map[string]any) (*appsv1.Deployment, []networkingv1.NetworkPolicy) {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(render(t, Operator, vals, false)), 4096)
	var dep *appsv1.Deployment
	var pols []networkingv1.NetworkPolicy
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		data, err := yaml.ToJSON([]byte(mustJSON(t, raw)))
		require.NoError(t, err)
		switch raw["kind"] {
		case "Deployment":
			dep = &appsv1.Deployment{}
			require.NoError(t, jsonUnmarshal(data, dep))
		case "NetworkPolicy":
			var p networkingv1.NetworkPolicy
			require.NoError(t, jsonUnmarshal(data, &p))
			pols = append(pols, p)
		}
	}
	require.NotNil(t, dep)
	return dep, pols
}

func TestOperatorNetworkDefaults(t *testing.T) {
	dep, pols := renderedOperator(t, nil)
	c := dep.Spec.Template.Spec.Containers[0]
	assert.Contains(t, c.Args, "--metrics-bind-address=127.0.0.1:8080", "unauthenticated metrics stay on loopback")
	for _, p := range c.Ports {
		assert.NotEqual(t, "metrics", p.Name)
	}
	require.Len(t, pols, 2)
	deny := pols[0]
	assert.Equal(t, "tpctl-system", deny.Namespace)
	assert.Empty(t, deny.Spec.PodSelector.MatchLabels, "default deny selects every pod of the namespace")
	assert.ElementsMatch(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, deny.Spec.PolicyTypes)
	assert.Empty(t, deny.Spec.Ingress)
	assert.Empty(t, deny.Spec.Egress)
	allow := pols[1]
	assert.Equal(t, dep.Spec.Selector.MatchLabels, allow.Spec.PodSelector.MatchLabels)
	require.Len(t, allow.Spec.Egress, 1)
	var egress []int32
	for _, p := range allow.Spec.Egress[0].Ports {
		egress = append(egress, p.Port.IntVal)
	}
	assert.Equal(t, []int32{6443, 443}, egress, "only the API server")
	require.Len(t, allow.Spec.Ingress, 1, "only the probes")
	assert.Equal(t, int32(8081), allow.Spec.Ingress[0].Ports[0].Port.IntVal)

	// Metrics served to the network are admitted from the named peers only.
	dep, pols = renderedOperator(t, map[string]any{"metricsBindAddress": "0.0.0.0",
		"networkPolicy": map[string]any{"enabled": true, "apiServerPorts": []any{6443},
			"metricsFrom": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"name": "monitoring"}}}}}})
	assert.Contains(t, dep.Spec.Template.Spec.Containers[0].Args, "--metrics-bind-address=0.0.0.0:8080")
	require.Len(t, pols[1].Spec.Ingress, 2)
	assert.Equal(t, "monitoring", pols[1].Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["name"])

	_, pols = renderedOperator(t, map[string]any{"networkPolicy": map[string]any{"enabled": false}})
	assert.Empty(t, pols)
}

// Proxy credentials given to the core-instance chart land in a Secret, never
// in the CoreInstance.
func TestCoreInstanceProxyCredentialsInASecret(t *testing.T) {
	const sentinel = "Sentinel-Pw-91ab"
	out := render(t, CoreInstance, map[string]any{"proxy": map[string]any{
		"httpProxy": "http://bob:" + sentinel + "@proxy:3128", "httpsProxy": "http://proxy:3129", "noProxy": "localhost"}}, false)
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	kinds := map[string]map[string]any{}
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		kinds[raw["kind"].(string)] = raw
	}
	require.Contains(t, kinds, "Secret")
	require.Contains(t, kinds, "CoreInstance")
	sec := kinds["Secret"]
	assert.Equal(t, "tp-proxy", sec["metadata"].(map[string]any)["name"])
	assert.Equal(t, "http://bob:"+sentinel+"@proxy:3128", sec["stringData"].(map[string]any)["httpProxy"])
	spec := kinds["CoreInstance"]["spec"].(map[string]any)
	assert.Equal(t, map[string]any{"name": "tp-proxy"}, spec["proxySecretRef"], "the release is named tp")
	assert.NotContains(t, spec, "httpProxy")
	assert.Equal(t, "localhost", spec["noProxy"])
	assert.NotContains(t, mustJSON(t, kinds["CoreInstance"]), sentinel)

	// Without credentials the URLs stay in the spec.
	out = render(t, CoreInstance, map[string]any{"proxy": map[string]any{"httpProxy": "http://proxy:3128"}}, false)
	assert.NotContains(t, out, "kind: Secret")
	assert.Contains(t, out, `httpProxy: "http://proxy:3128"`)
}

// By default the operator may write only in the namespace of the install's
// core instance; cluster-wide it only lists and watches Services.
func TestOperatorRBACIsNamespacedByDefault(t *testing.T) {
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(render(t, Operator, nil, false)), 4096)
	var clusterRules, defaultRules []rbacv1.PolicyRule
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		data, err := yaml.ToJSON([]byte(mustJSON(t, raw)))
		require.NoError(t, err)
		switch raw["kind"] {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			require.NoError(t, jsonUnmarshal(data, &r))
			clusterRules = append(clusterRules, r.Rules...)
		case "Role":
			var r rbacv1.Role
			require.NoError(t, jsonUnmarshal(data, &r))
			if r.Namespace == "default" {
				defaultRules = append(defaultRules, r.Rules...)
			}
		}
	}
	assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}}}, clusterRules)
	assert.NotEmpty(t, defaultRules, "a Role in the core instance's namespace")

	dep, _ := renderedOperator(t, nil)
	assert.Contains(t, dep.Spec.Template.Spec.Containers[0].Args, "--namespace=default")
}
