package tui

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestInstanceScreen(t *testing.T) {
	tm := start(t, sampleCluster(t), options())
	waitFor(t, tm, "core-health")
	send(tm, "i")
	waitFor(t, tm, "Frontend ports in use")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "http://proxy.test:3128")
	assert.Contains(t, s, "tcp/2020")
}

func TestInstanceEdit(t *testing.T) {
	api := sampleCluster(t)
	tm := start(t, api, options())
	waitFor(t, tm, "core-health")
	send(tm, "i")
	waitFor(t, tm, "Frontend ports in use")
	send(tm, "e")
	waitFor(t, tm, "Edit core instance core")
	send(tm, typeText("proxy:3128")...)
	waitFor(t, tm, "want http://host:port")
	send(tm, "ctrl+u")
	send(tm, typeText("http://proxy.test:8080")...)
	send(tm, "tab", "tab", "tab", "space") // https → no proxy → health check: off
	waitFor(t, tm, "[ ] run the health-check pipeline")
	send(tm, "ctrl+s")
	waitFor(t, tm, "core instance core updated")
	inst, err := api.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	assert.Equal(t, "http://proxy.test:8080", inst.Spec.HTTPProxy)
	assert.Equal(t, "http://proxy.test:3128", inst.Spec.HTTPSProxy, "unchanged fields stay")
	assert.False(t, inst.Spec.HealthCheckEnabled())
	requireScreen(t, screen(t, tm))
}

func TestInstanceFormValidates(t *testing.T) {
	m := loaded(t, sampleCluster(t))
	m = feed(t, m, keyMsg("i"), keyMsg("e"))
	require.Equal(t, viewInstanceForm, m.view)
	assert.Equal(t, "nothing changed yet", m.instForm.errs[iSubmit])
	for range 4 {
		m = feed(t, m, keyMsg("tab"))
	}
	require.Equal(t, iPort, m.instForm.focus)
	m = feed(t, m, keyMsg("ctrl+u"))
	m = typeInto(t, m, "70000")
	assert.Contains(t, m.instForm.errs[iPort], "want a number from 1 to 65535")
	requireScreen(t, m.View().Content)
	m = feed(t, m, keyMsg("ctrl+s"))
	assert.Equal(t, viewInstanceForm, m.view, "not saved while invalid")
	m = feed(t, m, keyMsg("esc"))
	assert.Equal(t, viewInstances, m.view)
}

// Proxy credentials never reach the screen: the instance view and the edit
// form show them redacted, and an untouched redacted field is no change.
func TestInstanceScreenRedactsProxyCredentials(t *testing.T) {
	api := sampleCluster(t)
	inst, err := api.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	inst.Spec.HTTPProxy = "http://user:s3cret@proxy.test:3128"
	inst.Spec.HTTPSProxy = ""
	inst.Spec.ProxySecretRef = &corev1.LocalObjectReference{Name: "core-proxy"}
	api.AddInstance(inst)
	tm := start(t, api, options())
	waitFor(t, tm, "core-health")
	send(tm, "i")
	waitFor(t, tm, "http://***@proxy.test:3128")
	waitFor(t, tm, "in Secret core-proxy (key httpsProxy)")
	send(tm, "e")
	waitFor(t, tm, "Edit core instance core")
	waitFor(t, tm, "***@proxy.test:3128")
	send(tm, "tab", "tab", "tab", "space") // https → no proxy → health check: off
	waitFor(t, tm, "[ ] run the health-check pipeline")
	send(tm, "ctrl+s")
	waitFor(t, tm, "core instance core updated")
	got, err := api.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	assert.Equal(t, "http://user:s3cret@proxy.test:3128", got.Spec.HTTPProxy, "the untouched proxy keeps its credentials")
	assert.False(t, got.Spec.HealthCheckEnabled())
	assert.NotContains(t, tm.drawn.String(), "s3cret", "everything drawn so far")
	s := screen(t, tm)
	assert.NotContains(t, s, "s3cret")
	assert.NotContains(t, s, "user:")
}

// Editing a redacted proxy without retyping its credentials would save the
// placeholder in their place: the form refuses it.
func TestInstanceFormRefusesRedactedPlaceholder(t *testing.T) {
	api := sampleCluster(t)
	inst, err := api.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	inst.Spec.HTTPProxy = "http://user:s3cret@proxy.test:3128"
	api.AddInstance(inst)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("i"), keyMsg("e"))
	require.Equal(t, viewInstanceForm, m.view)
	assert.Equal(t, "http://***@proxy.test:3128", m.instForm.http.Value())
	assert.Empty(t, m.instForm.errs[iHTTP], "untouched")
	assert.Nil(t, m.instForm.change().HTTPProxy, "untouched is no change")
	m = typeInto(t, m, "9")
	assert.Contains(t, m.instForm.errs[iHTTP], "credentials are hidden")
	m = feed(t, m, keyMsg("ctrl+s"))
	assert.Equal(t, viewInstanceForm, m.view, "not saved")
	got, err := api.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	assert.Equal(t, "http://user:s3cret@proxy.test:3128", got.Spec.HTTPProxy)
}
