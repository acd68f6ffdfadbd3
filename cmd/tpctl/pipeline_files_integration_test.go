//go:build integration

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/testenv"
	"github.com/tpctl/tpctl/operator"
)

// On the real API server with the operator: files given to create land in
// the pipeline's ConfigMap beside the configuration, which the pods mount
// whole in /fluent-bit/etc/tpctl; a change of a file changes the ConfigMap
// and rolls the pods (the template's config hash); the CRD refuses what
// tpctl refuses, so kubectl cannot store it either; export and apply carry
// the files; the largest configuration with the largest files still fits
// in one ConfigMap.
func TestPipelineFilesAgainstTheOperator(t *testing.T) {
	ctx := context.Background()
	env := testenv.StartEnv(ctx, t, testenv.EnvOptions{})
	get := func(name string, obj client.Object) error {
		return env.Raw.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, obj)
	}
	cfg := mgmtFile(t, "parse.conf", "[SERVICE]\n    parsers_file /fluent-bit/etc/tpctl/parsers.conf\n[INPUT]\n    Name tcp\n    Port 2410\n")
	parsers := mgmtFile(t, "parsers.conf", "[PARSER]\n    Name json\n    Format json\n")
	lua := mgmtFile(t, "filter.lua", "function f(tag, ts, r) return 1, ts, r end\n")
	r := tpctl(t, env, "pipeline", "create", "--name", "files", "--config-file", cfg, "--service-type", "ClusterIP",
		"--file", parsers, "--file", "f.lua="+lua, "--wait=ports", "--timeout", "30s")
	require.NoError(t, r.err, r.errOut)

	cm := &corev1.ConfigMap{}
	eventually(t, "the ConfigMap holds the configuration and the files", func(c *assert.CollectT) {
		if !assert.NoError(c, get("files-config", cm)) {
			return
		}
		assert.Equal(c, map[string]string{
			"pipeline.conf": "[SERVICE]\n    parsers_file /fluent-bit/etc/tpctl/parsers.conf\n[INPUT]\n    Name tcp\n    Port 2410\n",
			"parsers.conf":  "[PARSER]\n    Name json\n    Format json\n",
			"f.lua":         "function f(tag, ts, r) return 1, ts, r end\n",
		}, cm.Data)
	})
	template := func(c *assert.CollectT) corev1.PodTemplateSpec {
		d := &appsv1.Deployment{}
		if !assert.NoError(c, get("files", d)) {
			return corev1.PodTemplateSpec{}
		}
		return d.Spec.Template
	}
	var hash1 string
	eventually(t, "the pods mount the whole ConfigMap in /fluent-bit/etc/tpctl", func(c *assert.CollectT) {
		tpl := template(c)
		if !assert.Len(c, tpl.Spec.Containers, 1) {
			return
		}
		var mounted bool
		for _, m := range tpl.Spec.Containers[0].VolumeMounts {
			if m.MountPath == "/fluent-bit/etc/tpctl" {
				mounted = m.SubPath == ""
				for _, v := range tpl.Spec.Volumes {
					if v.Name == m.Name && v.ConfigMap != nil {
						assert.Equal(c, "files-config", v.ConfigMap.Name)
						assert.Empty(c, v.ConfigMap.Items, "every key is a file")
					}
				}
			}
		}
		assert.True(c, mounted)
		hash1 = tpl.Annotations[operator.AnnotationConfigHash]
		assert.NotEmpty(c, hash1)
	})

	r = tpctl(t, env, "pipeline", "get", "files")
	require.NoError(t, r.err, r.errOut)
	assert.Regexp(t, `parsers\.conf\s+39 bytes\s+/fluent-bit/etc/tpctl/parsers\.conf`, r.out)
	assert.Regexp(t, `f\.lua\s+43 bytes\s+/fluent-bit/etc/tpctl/f\.lua`, r.out)

	// A dry run changes nothing; a change of a file rolls the pods.
	newParsers := mgmtFile(t, "p2.conf", "[PARSER]\n    Name logfmt\n    Format logfmt\n")
	r = tpctl(t, env, "pipeline", "update", "files", "--file", "parsers.conf="+newParsers, "--dry-run")
	require.NoError(t, r.err, r.errOut)
	p := &v1alpha1.Pipeline{}
	require.NoError(t, get("files", p))
	assert.Equal(t, v1alpha1.FileContent("[PARSER]\n    Name json\n    Format json\n"), p.Spec.Files["parsers.conf"])
	r = tpctl(t, env, "pipeline", "update", "files", "--file", "parsers.conf="+newParsers)
	require.NoError(t, r.err, r.errOut)
	var hash2 string
	eventually(t, "the new file reaches the ConfigMap and the pod template", func(c *assert.CollectT) {
		if assert.NoError(c, get("files-config", cm)) {
			assert.Equal(c, "[PARSER]\n    Name logfmt\n    Format logfmt\n", cm.Data["parsers.conf"])
		}
		hash2 = template(c).Annotations[operator.AnnotationConfigHash]
		assert.NotEqual(c, hash1, hash2)
	})
	r = tpctl(t, env, "pipeline", "update", "files", "--remove-file", "f.lua")
	require.NoError(t, r.err, r.errOut)
	eventually(t, "a removed file leaves the ConfigMap and rolls the pods", func(c *assert.CollectT) {
		if assert.NoError(c, get("files-config", cm)) {
			assert.NotContains(c, cm.Data, "f.lua")
			assert.Len(c, cm.Data, 2)
		}
		assert.NotEqual(c, hash2, template(c).Annotations[operator.AnnotationConfigHash])
	})

	// kubectl cannot store what tpctl refuses: the API server checks the
	// same limits.
	require.NoError(t, get("files", p))
	for name, files := range map[string]map[string]v1alpha1.FileContent{
		"a file over 256 KiB":   {"big.pem": v1alpha1.FileContent(strings.Repeat("x", v1alpha1.MaxFileBytes+1))},
		"the configuration key": {"pipeline.conf": "x"},
		"a path":                {"a/b": "x"},
		"over 512 KiB together": {
			"a": v1alpha1.FileContent(strings.Repeat("x", v1alpha1.MaxFileBytes)),
			"b": v1alpha1.FileContent(strings.Repeat("x", v1alpha1.MaxFileBytes)), "c": "x",
		},
	} {
		bad := p.DeepCopy()
		bad.Spec.Files = files
		err := env.Raw.Update(ctx, bad)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "spec.files", name)
	}

	// Export and apply carry the files.
	r = tpctl(t, env, "pipeline", "export", "files")
	require.NoError(t, r.err, r.errOut)
	exported := r.out
	assert.Contains(t, exported, "files:")
	r = tpctl(t, env, "pipeline", "delete", "files", "--yes")
	require.NoError(t, r.err, r.errOut)
	eventually(t, "the pipeline is gone", func(c *assert.CollectT) {
		assert.Error(c, get("files", &v1alpha1.Pipeline{}))
	})
	r = tpctl(t, env, "apply", "-f", mgmtFile(t, "files.yaml", exported))
	require.NoError(t, r.err, r.errOut)
	eventually(t, "the applied pipeline's ConfigMap holds its file", func(c *assert.CollectT) {
		if assert.NoError(c, get("files-config", cm)) {
			assert.Equal(c, "[PARSER]\n    Name logfmt\n    Format logfmt\n", cm.Data["parsers.conf"])
		}
	})

	// The largest configuration with the largest files fits in one
	// ConfigMap (at most 1 MiB of data).
	bigCfg := mgmtFile(t, "big.conf", "[INPUT]\n    Name tcp\n    Port 2411\n#"+strings.Repeat("x", v1alpha1.MaxConfigBytes-37)+"\n")
	half := mgmtFile(t, "half", strings.Repeat("y", v1alpha1.MaxFileBytes))
	r = tpctl(t, env, "pipeline", "create", "--name", "full", "--config-file", bigCfg, "--service-type", "ClusterIP",
		"--file", "a="+half, "--file", "b="+half)
	require.NoError(t, r.err, r.errOut)
	eventually(t, "the full ConfigMap is stored", func(c *assert.CollectT) {
		if assert.NoError(c, get("full-config", cm)) {
			total := 0
			for _, v := range cm.Data {
				total += len(v)
			}
			assert.Equal(c, v1alpha1.MaxConfigBytes+v1alpha1.MaxFilesBytes, total)
		}
	})
}
