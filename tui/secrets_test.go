package tui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/manage/managetest"
)

// withSecrets is the sample cluster where pipeline b has two secrets.
func withSecrets(t *testing.T) *managetest.Memory {
	t.Helper()
	api := sampleCluster(t)
	_, err := api.ChangePipelineSecrets(context.Background(), "b", manage.SecretChange{Set: map[string]string{
		"SPLUNK_TOKEN": "tok-123456", "DB_PASSWORD": "pw-abc"}}, manage.WriteOptions{})
	require.NoError(t, err)
	return api
}

// press sends one key and returns the command it asked for.
func press(t *testing.T, m Model, k string) (Model, tea.Cmd) {
	t.Helper()
	next, cmd := m.Update(keyMsg(k))
	return next.(Model), cmd
}

// openSecrets shows the secrets page of the row'th pipeline of the list
// (0: a, 1: b, 2: core-health) with its secrets loaded.
func openSecrets(t *testing.T, api *managetest.Memory, row int) Model {
	t.Helper()
	m := loaded(t, api)
	for range row {
		m = feed(t, m, keyMsg("down"))
	}
	m = feed(t, m, keyMsg("enter"))
	require.Equal(t, viewDetail, m.view)
	require.Contains(t, m.View().Content, "s secrets", "the details name the key")
	m, cmd := press(t, m, "s")
	require.Equal(t, viewSecrets, m.view)
	require.NotNil(t, cmd)
	return feed(t, m, cmd())
}

// save presses enter on the form and takes the API's answer.
func save(t *testing.T, m Model) Model {
	t.Helper()
	m, cmd := press(t, m, "enter")
	require.NotNil(t, cmd, "enter on the value saves")
	assert.Contains(t, m.View().Content, "saving…")
	return feed(t, m, cmd())
}

func TestSecretsScreen(t *testing.T) {
	m := openSecrets(t, withSecrets(t), 1)
	s := m.View().Content
	assert.Contains(t, s, "Secrets of pipeline b")
	assert.Contains(t, s, "DB_PASSWORD   6 bytes")
	assert.Contains(t, s, "SPLUNK_TOKEN  10 bytes")
	assert.NotContains(t, s, "tok-123456")
	assert.NotContains(t, s, "pw-abc")
	requireScreen(t, s)

	m = feed(t, m, keyMsg("esc"))
	assert.Equal(t, viewDetail, m.view, "esc goes back to the details")
	assert.Nil(t, m.secrets)
}

func TestSecretsAddForm(t *testing.T) {
	api := withSecrets(t)
	m := openSecrets(t, api, 1)
	m = feed(t, m, keyMsg("a"))
	require.True(t, m.secrets.Typing())
	m = typeInto(t, m, "API_KEY")
	m = feed(t, m, keyMsg("tab"))
	m = typeInto(t, m, "hunter22")
	s := m.View().Content
	assert.Contains(t, s, "API_KEY")
	assert.Contains(t, s, "••••••••", "the value is masked")
	assert.NotContains(t, s, "hunter22")
	requireScreen(t, s)

	m = save(t, m)
	assert.Equal(t, "hunter22", api.SecretValues("b")["API_KEY"])
	s = m.View().Content
	assert.Contains(t, s, "secret API_KEY set; the pipeline's pods restart with it")
	assert.Contains(t, s, "API_KEY       8 bytes")
	assert.False(t, m.secrets.Typing(), "the form closed")
	assert.Empty(t, m.secrets.value.Value(), "the value is not kept")
}

func TestSecretsSetSelectedAndCancel(t *testing.T) {
	api := withSecrets(t)
	m := openSecrets(t, api, 1)
	// n also adds; esc leaves the form and saves nothing.
	m = feed(t, m, keyMsg("n"))
	m = typeInto(t, m, "X")
	m = feed(t, m, keyMsg("esc"))
	assert.Equal(t, viewSecrets, m.view)
	assert.Contains(t, m.View().Content, "nothing saved")
	assert.NotContains(t, api.SecretValues("b"), "X")

	// enter on a row sets that secret's value: the name is filled in.
	m = feed(t, m, keyMsg("down"), keyMsg("enter"))
	assert.Equal(t, "SPLUNK_TOKEN", m.secrets.name.Value())
	m = typeInto(t, m, "new-token")
	m = save(t, m)
	assert.Equal(t, "new-token", api.SecretValues("b")["SPLUNK_TOKEN"])
	assert.Contains(t, m.View().Content, "SPLUNK_TOKEN  9 bytes")
}

func TestSecretsUnsetAsksFirst(t *testing.T) {
	api := withSecrets(t)
	m := openSecrets(t, api, 1)
	m = feed(t, m, keyMsg("d"))
	s := m.View().Content
	assert.Contains(t, s, "Unset secret DB_PASSWORD of pipeline b?")
	requireScreen(t, s)

	m = feed(t, m, keyMsg("n"))
	assert.Contains(t, m.View().Content, "unset cancelled")
	assert.Contains(t, api.SecretValues("b"), "DB_PASSWORD")

	m = feed(t, m, keyMsg("d"))
	m, cmd := press(t, m, "y")
	require.NotNil(t, cmd)
	m = feed(t, m, cmd())
	assert.NotContains(t, api.SecretValues("b"), "DB_PASSWORD")
	assert.Contains(t, api.SecretValues("b"), "SPLUNK_TOKEN")
	s = m.View().Content
	assert.Contains(t, s, "secret DB_PASSWORD unset")
	assert.NotContains(t, s, "DB_PASSWORD   ")
}

func TestSecretsServerErrors(t *testing.T) {
	t.Run("invalid name", func(t *testing.T) {
		api := withSecrets(t)
		m := openSecrets(t, api, 1)
		m = feed(t, m, keyMsg("a"))
		m = typeInto(t, m, "1BAD")
		m = feed(t, m, keyMsg("enter"))
		m = typeInto(t, m, "v4lue-typed")
		m = save(t, m)
		s := m.View().Content
		assert.Contains(t, s, `secret name "1BAD" is not a valid environment variable name`)
		assert.NotContains(t, s, "v4lue-typed")
		assert.True(t, m.secrets.Typing(), "the form stays open to fix the name")
		assert.NotContains(t, api.SecretValues("b"), "1BAD")
	})
	t.Run("health-check pipeline", func(t *testing.T) {
		api := sampleCluster(t)
		m := openSecrets(t, api, 2)
		assert.Contains(t, m.View().Content, "This pipeline has no secrets")
		m = feed(t, m, keyMsg("a"))
		m = typeInto(t, m, "TOKEN")
		m = feed(t, m, keyMsg("tab"))
		m = typeInto(t, m, "v4lue-typed")
		m = save(t, m)
		s := m.View().Content
		assert.Contains(t, s, "it takes no secrets")
		assert.NotContains(t, s, "v4lue-typed")
		assert.Nil(t, api.SecretValues("core-health"))
	})
	t.Run("pipeline gone", func(t *testing.T) {
		api := withSecrets(t)
		m := openSecrets(t, api, 1)
		_, err := api.DeletePipeline(context.Background(), "b", manage.WriteOptions{})
		require.NoError(t, err)
		m = feed(t, m, keyMsg("d"))
		m, cmd := press(t, m, "y")
		m = feed(t, m, cmd())
		s := m.View().Content
		assert.Contains(t, s, `"b"`)
		assert.Contains(t, s, "not found")
	})
}

// TestSecretValueNeverDrawn types a unique value into the running manager
// and checks that no frame it drew holds it, while the API received it.
func TestSecretValueNeverDrawn(t *testing.T) {
	raw := make([]byte, 8)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	// q and ? would quit or show help were they not typed into the field.
	value := "q?sentinel-" + hex.EncodeToString(raw)

	api := sampleCluster(t)
	tm := start(t, api, options())
	waitFor(t, tm, "core-health")
	send(tm, "enter")
	waitFor(t, tm, "Pipeline a")
	send(tm, "s")
	waitFor(t, tm, "Secrets of pipeline a", "This pipeline has no secrets")
	send(tm, "a")
	send(tm, typeText("SENTINEL_KEY")...)
	send(tm, "tab")
	send(tm, typeText(value)...)
	waitFor(t, tm, strings.Repeat("•", len(value)))
	send(tm, "enter")
	waitFor(t, tm, "secret SENTINEL_KEY set", "SENTINEL_KEY  "+strconv.Itoa(len(value))+" bytes")
	final := screen(t, tm)

	assert.Equal(t, value, api.SecretValues("a")["SENTINEL_KEY"], "the API received the value")
	assert.NotContains(t, final, value)
	assert.NotContains(t, tm.frames.String(), value, "no frame holds the value")
	assert.NotContains(t, tm.drawn.String(), value, "no byte written to the terminal holds the value")
	assert.NotContains(t, tm.frames.String(), "sentinel-", "not even part of it")
}
