package manage

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

const proxySentinel = "Sentinel-Pw-0c1d"

func TestProxyCredentialsAreRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"http://proxy:3128":                       "http://proxy:3128",
		"http://bob:" + proxySentinel + "@p:3128": "http://***@p:3128",
		"https://bob@p:1/path":                    "https://***@p:1/path",
		"bob:" + proxySentinel + "@p:3128":        "***@p:3128",
		"http://a@b:" + proxySentinel + "@p:1":    "http://***@p:1",
		"http://p:1/x@y":                          "http://p:1/x@y",
	} {
		assert.Equal(t, want, RedactProxyURL(in), in)
	}
	assert.True(t, ProxyHasCredentials("http://u:p@h:1"))
	assert.False(t, ProxyHasCredentials("http://h:1/a@b"))

	for _, bad := range []string{"ftp://bob:" + proxySentinel + "@p:21", "http://bob:" + proxySentinel + "@", "%zz://u:" + proxySentinel + "@p"} {
		err := InstanceChange{HTTPSProxy: &bad}.Validate()
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), proxySentinel)
	}

	inst := instance("core")
	inst.Spec.HTTPProxy = "http://bob:" + proxySentinel + "@p:3128"
	inst.Spec.NoProxy = "localhost"
	var out bytes.Buffer
	require.NoError(t, WriteInstance(&out, inst))
	require.NoError(t, WriteInstances(&out, []v1alpha1.CoreInstance{*inst}))
	data, err := yaml.Marshal(RedactInstance(inst))
	require.NoError(t, err)
	out.Write(data)
	assert.NotContains(t, out.String(), proxySentinel)
	assert.Contains(t, out.String(), "http://***@p:3128")
}

func TestProxyWithCredentialsGoesIntoASecret(t *testing.T) {
	ctx := context.Background()
	inst := instance("core")
	inst.UID = "core-uid"
	c, raw := fakeClient(t, nil, inst)
	withCreds := "http://bob:" + proxySentinel + "@proxy.test:3128"

	// Dry run: nothing stored, and what is shown has no credentials.
	got, err := c.UpdateInstance(ctx, "core", InstanceChange{HTTPProxy: &withCreds}, WriteOptions{DryRun: true})
	require.NoError(t, err)
	assert.Empty(t, got.Spec.HTTPProxy)
	require.NotNil(t, got.Spec.ProxySecretRef)
	assert.True(t, apierrors.IsNotFound(raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core-proxy"}, &corev1.Secret{})))

	plain := "http://plain.test:3129"
	got, err = c.UpdateInstance(ctx, "core", InstanceChange{HTTPProxy: &withCreds, HTTPSProxy: &plain}, WriteOptions{})
	require.NoError(t, err)
	assert.Equal(t, "core-proxy", got.Spec.ProxySecretRef.Name)
	assert.Empty(t, got.Spec.HTTPProxy)
	assert.Empty(t, got.Spec.HTTPSProxy)
	sec := &corev1.Secret{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core-proxy"}, sec))
	assert.Equal(t, withCreds, string(sec.Data[v1alpha1.ProxySecretKeyHTTP]))
	assert.Equal(t, plain, string(sec.Data[v1alpha1.ProxySecretKeyHTTPS]))
	assert.Equal(t, "core-uid", string(sec.OwnerReferences[0].UID), "the Secret goes with its instance")
	stored := &v1alpha1.CoreInstance{}
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core"}, stored))
	data, err := yaml.Marshal(stored)
	require.NoError(t, err)
	assert.NotContains(t, string(data), proxySentinel)

	// Changing only the https proxy keeps the http one from the Secret.
	other := "http://carol:" + proxySentinel + "@proxy.test:3130"
	_, err = c.UpdateInstance(ctx, "core", InstanceChange{HTTPSProxy: &other}, WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core-proxy"}, sec))
	assert.Equal(t, withCreds, string(sec.Data[v1alpha1.ProxySecretKeyHTTP]))
	assert.Equal(t, other, string(sec.Data[v1alpha1.ProxySecretKeyHTTPS]))

	// Without credentials the proxies go back into the spec and the Secret goes.
	empty := ""
	got, err = c.UpdateInstance(ctx, "core", InstanceChange{HTTPProxy: &plain, HTTPSProxy: &empty}, WriteOptions{})
	require.NoError(t, err)
	assert.Nil(t, got.Spec.ProxySecretRef)
	assert.Equal(t, plain, got.Spec.HTTPProxy)
	assert.Empty(t, got.Spec.HTTPSProxy)
	assert.True(t, apierrors.IsNotFound(raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core-proxy"}, &corev1.Secret{})))
}

func TestForeignProxySecretIsNotOverwritten(t *testing.T) {
	ctx := context.Background()
	inst := instance("core")
	inst.UID = "core-uid"
	foreign := &corev1.Secret{}
	foreign.Name, foreign.Namespace = "core-proxy", testNS
	foreign.Data = map[string][]byte{"x": []byte("keep")}
	c, raw := fakeClient(t, nil, inst, foreign)
	withCreds := "http://bob:" + proxySentinel + "@proxy.test:3128"
	_, err := c.UpdateInstance(ctx, "core", InstanceChange{HTTPProxy: &withCreds}, WriteOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not belong to core instance")
	assert.NotContains(t, err.Error(), proxySentinel)
	require.NoError(t, raw.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "core-proxy"}, foreign))
	assert.Equal(t, "keep", string(foreign.Data["x"]))
}
