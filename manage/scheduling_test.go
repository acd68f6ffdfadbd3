package manage

import (
	"fmt"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestParseTolerations(t *testing.T) {
	got, err := ParseTolerations([]string{"dedicated=logs:NoSchedule", "spot:noexecute", "example.com/gpu=:PreferNoSchedule"})
	require.NoError(t, err)
	assert.Equal(t, []corev1.Toleration{
		{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "logs", Effect: corev1.TaintEffectNoSchedule},
		{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: "example.com/gpu", Operator: corev1.TolerationOpEqual, Value: "", Effect: corev1.TaintEffectPreferNoSchedule},
	}, got)
	assert.Equal(t, "dedicated=logs:NoSchedule", TolerationText(got[0]))
	assert.Equal(t, "spot:NoExecute", TolerationText(got[1]))

	got, err = ParseTolerations([]string{""})
	require.NoError(t, err)
	assert.Empty(t, got, "'' removes all")

	for in, want := range map[string]string{
		"dedicated=logs":        `--toleration "dedicated=logs": want KEY[=VALUE]:EFFECT`,
		"dedicated:Sometimes":   `--toleration "dedicated:Sometimes": effect "Sometimes" is not NoSchedule, PreferNoSchedule or NoExecute`,
		"bad key!:NoSchedule":   `--toleration "bad key!:NoSchedule": name part must consist of`,
		"k=bad value:NoExecute": `--toleration "k=bad value:NoExecute": a valid label must be`,
	} {
		_, err := ParseTolerations([]string{in})
		assert.ErrorContains(t, err, want, in)
	}
}

func TestParseNodeSelectorAndAnnotations(t *testing.T) {
	m, err := ParseNodeSelector([]string{"disk=ssd", "kubernetes.io/arch=arm64"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"disk": "ssd", "kubernetes.io/arch": "arm64"}, m, "node labels may be Kubernetes' own")
	_, err = ParseNodeSelector([]string{"disk"})
	assert.EqualError(t, err, `--node-selector "disk": want KEY=VALUE`)
	_, err = ParseNodeSelector([]string{"disk=a", "disk=b"})
	assert.EqualError(t, err, `--node-selector "disk=b": key "disk" given twice`)

	m, err = ParseAnnotations([]string{"example.com/team=obs", "prometheus.io/scrape=true", "note=a=b c"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"example.com/team": "obs", "prometheus.io/scrape": "true", "note": "a=b c"}, m)
	for _, k := range []string{v1alpha1.Group + "/config-hash", "kubernetes.io/x", "node.k8s.io/x"} {
		_, err = ParseAnnotations([]string{k + "=v"})
		assert.ErrorContains(t, err, `--annotation "`+k+`=v": keys under`, k)
	}
	many := make([]string, MaxSchedulingEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf("k%d=v", i)
	}
	_, err = ParseAnnotations(many)
	assert.EqualError(t, err, "--annotation: at most 32 entries, got 33")
}

func TestSchedulingFlagsReplaceAndRemove(t *testing.T) {
	change := func(args ...string) PipelineChange {
		var pf PipelineFlags
		fs := pflag.NewFlagSet("update", pflag.ContinueOnError)
		pf.Register(fs, false)
		require.NoError(t, fs.Parse(args))
		c, err := pf.Change(fs, nil)
		require.NoError(t, err)
		require.False(t, c.IsEmpty())
		return c
	}
	var spec v1alpha1.PipelineSpec
	change("--node-selector", "disk=ssd", "--toleration", "spot:NoExecute", "--annotation", "a=1", "--annotation", "b=2").ApplyTo(&spec)
	assert.Equal(t, map[string]string{"disk": "ssd"}, spec.NodeSelector)
	assert.Len(t, spec.Tolerations, 1)
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, spec.PodAnnotations)

	change("--annotation", "c=3").ApplyTo(&spec)
	assert.Equal(t, map[string]string{"c": "3"}, spec.PodAnnotations, "replaces")
	assert.Equal(t, map[string]string{"disk": "ssd"}, spec.NodeSelector, "kept")

	change("--node-selector", "", "--toleration", "", "--annotation", "").ApplyTo(&spec)
	assert.Nil(t, spec.NodeSelector)
	assert.Nil(t, spec.Tolerations)
	assert.Nil(t, spec.PodAnnotations)
}
