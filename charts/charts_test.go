package charts

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var kubeVersion = &common.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}

// render is `helm template` through the SDK: a client-only dry-run install.
func render(t *testing.T, name string, vals map[string]any, crds bool) string {
	t.Helper()
	ch, err := Load(name, "1.2.3")
	require.NoError(t, err)
	in := action.NewInstall(memConfig())
	in.DryRunStrategy, in.Replace, in.IncludeCRDs = action.DryRunClient, true, crds
	in.ReleaseName, in.Namespace, in.KubeVersion = "tp", "tpctl-system", kubeVersion
	out, err := in.Run(ch, vals)
	require.NoError(t, err)
	rel, ok := out.(*release.Release)
	require.True(t, ok, "Helm returned a %T", out)
	return rel.Manifest
}

// memConfig is a Helm configuration with an in-memory release store and a
// cluster client that only prints.
func memConfig() *action.Configuration {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	cfg.Releases = storage.Init(driver.NewMemory())
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
	cfg.Capabilities = common.DefaultCapabilities
	return cfg
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: rerun with -update")
	assert.Equal(t, string(want), got, "%s differs (rerun with -update after checking the change)", path)
}

func TestTemplateGolden(t *testing.T) {
	for _, tc := range []struct {
		golden, chart string
		vals          map[string]any
	}{
		{"operator-default", Operator, nil},
		{"operator-namespaced", Operator, map[string]any{
			"watchNamespaces": []any{"pipelines-a", "pipelines-b"}, "leaderElection": false,
			"reservedPorts": []any{"tcp/9100"}, "nodeConditions": []any{"cni=cilium"}, "verbose": true,
		}},
		{"core-instance-default", CoreInstance, nil},
		{"core-instance-proxies", CoreInstance, map[string]any{
			"name":             "edge",
			"proxy":            map[string]any{"httpProxy": "http://proxy:3128", "httpsProxy": "http://proxy:3128", "noProxy": "localhost,.svc,.cluster.local,10.42.0.0/16"},
			"healthCheck":      map[string]any{"port": 2999, "serviceType": "NodePort"},
			"pipelineDefaults": map[string]any{"serviceType": "ClusterIP", "image": "tpctl.test/sink:1", "args": []any{"--http", ":8080"}},
		}},
		{"core-instance-no-health", CoreInstance, map[string]any{"healthCheck": map[string]any{"enabled": false}}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			golden(t, tc.golden, render(t, tc.chart, tc.vals, false))
		})
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	ch, err := Load(CoreInstance, "")
	require.NoError(t, err)
	for _, vals := range []map[string]any{
		{"healthCheck": map[string]any{"port": 70000}},
		{"pipelineDefaults": map[string]any{"serviceType": "External"}},
		{"proxy": map[string]any{"ftpProxy": "x"}},
	} {
		in := action.NewInstall(memConfig())
		in.DryRunStrategy, in.ReleaseName, in.Namespace = action.DryRunClient, "tp", "ns"
		_, err := in.Run(ch, vals)
		assert.Error(t, err, "values %v", vals)
	}
}

func TestLint(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			l := lint.RunAll(name, nil, "tpctl-system", lint.WithKubeVersion(kubeVersion))
			for _, m := range l.Messages {
				assert.Less(t, m.Severity, support.WarningSev, "helm lint %s: %s", name, m.Error())
			}
			assert.Less(t, l.HighestSeverity, support.WarningSev)
		})
	}
}

func TestCRDsInSync(t *testing.T) {
	want, err := v1alpha1.CRDManifests()
	require.NoError(t, err)
	entries, err := os.ReadDir(filepath.Join(Operator, "crds"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		got, err := os.ReadFile(filepath.Join(Operator, "crds", e.Name()))
		require.NoError(t, err)
		assert.Equal(t, string(want[e.Name()]), string(got),
			"charts/tp-operator/crds/%s differs from api/v1alpha1/crds: copy it (cp api/v1alpha1/crds/*.yaml charts/tp-operator/crds/)", e.Name())
	}
	assert.Len(t, names, len(want), "every generated CRD is in the chart")
}

func TestRenderedOperator(t *testing.T) {
	out := render(t, Operator, nil, true)
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	kinds := map[string]int{}
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		if raw == nil {
			continue
		}
		kind, _ := raw["kind"].(string)
		kinds[kind]++
		data, err := yaml.ToJSON([]byte(mustJSON(t, raw)))
		require.NoError(t, err)
		switch kind {
		case "Deployment":
			var d appsv1.Deployment
			require.NoError(t, jsonUnmarshal(data, &d))
			c := d.Spec.Template.Spec.Containers[0]
			assert.Equal(t, "tpctl.local/tpctl-operator:1.2.3", c.Image, "the image tag is the chart's appVersion")
			assert.Equal(t, "IfNotPresent", string(c.ImagePullPolicy))
			assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
			assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
			assert.Equal(t, "ALL", string(c.SecurityContext.Capabilities.Drop[0]))
			assert.True(t, *d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
			assert.Equal(t, int64(65532), *d.Spec.Template.Spec.SecurityContext.RunAsUser)
			assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		case "ClusterRole", "Role":
			var r rbacv1.ClusterRole
			require.NoError(t, jsonUnmarshal(data, &r))
			for _, rule := range r.Rules {
				for _, v := range append(append(rule.Verbs, rule.Resources...), rule.APIGroups...) {
					assert.NotEqual(t, "*", v, "least privilege: no wildcards in %s", r.Name)
				}
				assert.NotContains(t, rule.Resources, "secrets", "the operator never reads Secrets")
				if len(rule.Resources) == 1 && rule.Resources[0] == "leases" {
					assert.ElementsMatch(t, []string{"get", "create", "update"}, rule.Verbs, "leader election")
					continue
				}
				assert.NotContains(t, rule.Verbs, "update", "server-side apply needs patch, not update")
			}
		}
	}
	assert.Equal(t, 2, kinds["CustomResourceDefinition"])
	assert.Equal(t, 1, kinds["Deployment"])
	assert.Equal(t, 1, kinds["ServiceAccount"])
	assert.Equal(t, 1, kinds["ClusterRole"])
}

func TestArchive(t *testing.T) {
	for _, name := range Names() {
		a, err := Archive(name, "1.2.3")
		require.NoError(t, err)
		b, err := Archive(name, "1.2.3")
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "archives are reproducible")
		ch, err := loader.LoadArchive(bytes.NewReader(a))
		require.NoError(t, err)
		assert.Equal(t, name, ch.Name())
		assert.Equal(t, "1.2.3", ch.Metadata.Version)
		assert.Equal(t, "1.2.3", ch.Metadata.AppVersion)
		if name == Operator {
			assert.Len(t, ch.CRDObjects(), 2)
		}
	}
	dir := t.TempDir()
	pkgs, err := Package("1.2.3", dir)
	require.NoError(t, err)
	require.Len(t, pkgs, 2)
	assert.Equal(t, filepath.Join(dir, "tp-operator-1.2.3.tgz"), pkgs[0].Path)
	assert.Len(t, pkgs[0].SHA256, 64)
	_, err = Archive("nope", "1.2.3")
	assert.Error(t, err)
	_, err = Package("", dir)
	assert.Error(t, err)
}

func TestSemVer(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":        "1.2.3",
		"1.2.3-rc.1":    "1.2.3-rc.1",
		"be72aee-dirty": "0.0.0-be72aee-dirty",
		"v1.2.3-4-gabc": "1.2.3-4-gabc",
		"":              "0.0.0-dev",
		"01.2.3":        "0.0.0-01-2-3",
		"dev+x/y":       "0.0.0-dev-x-y",
	} {
		assert.Equal(t, want, SemVer(in), in)
	}
}

func FuzzSemVer(f *testing.F) {
	for _, s := range []string{"v1.2.3", "be72aee-dirty", "", "1.2.3-", "1..2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := SemVer(s)
		if !isRelease(v) {
			t.Fatalf("SemVer(%q) = %q: not a SemVer version", s, v)
		}
		if len(v) > 128 || strings.ContainsAny(v, "+/:") {
			t.Fatalf("SemVer(%q) = %q: not an image tag", s, v)
		}
		if SemVer(v) != v {
			t.Fatalf("SemVer is not idempotent on %q", v)
		}
	})
}

// The CoreInstance owns every pipeline of the instance: Helm must never
// delete it when the release goes (uninstall --keep-data, recovery of a
// stuck release), whatever the values.
func TestCoreInstanceIsKeptByHelm(t *testing.T) {
	for _, vals := range []map[string]any{nil, {"name": "edge", "healthCheck": map[string]any{"enabled": false}}} {
		manifests := releaseutil.SplitManifests(render(t, CoreInstance, vals, false))
		require.Len(t, manifests, 1)
		for _, m := range manifests {
			var head releaseutil.SimpleHead
			require.NoError(t, sigsyaml.Unmarshal([]byte(m), &head))
			require.Equal(t, "CoreInstance", head.Kind)
			require.NotNil(t, head.Metadata)
			assert.Equal(t, kube.KeepPolicy, head.Metadata.Annotations[kube.ResourcePolicyAnno], "values %v", vals)
		}
	}
}

// The operator is told which packaged K3s components hold node ports:
// traefik by default, none when the value is empty (an explicit empty flag,
// since the operator's own default is traefik).
func TestOperatorPackagedComponents(t *testing.T) {
	out := render(t, Operator, nil, false)
	assert.Contains(t, out, "- --packaged-component=traefik\n")
	out = render(t, Operator, map[string]any{"packagedComponents": []any{}}, false)
	assert.Contains(t, out, "- --packaged-component=\n")
	assert.NotContains(t, out, "--packaged-component=traefik")
}
