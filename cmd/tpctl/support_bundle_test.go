package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --dry-run lists every part and writes nothing.
func TestSupportBundleDryRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	cmd := newSupportBundleCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--dry-run", "--output", out, "-o", "json", "--kubeconfig", "/nonexistent"})
	require.NoError(t, cmd.Execute())
	var plan struct {
		Output string `json:"output"`
		Parts  []struct{ Name, Part, Source string }
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &plan), stdout.String())
	assert.Equal(t, out, plan.Output)
	var names []string
	for _, p := range plan.Parts {
		names = append(names, p.Name)
	}
	for _, want := range []string{"preflight", "status", "install-state", "install-log", "k3s-unit", "k3s-journal", "k3s-config",
		"containerd", "network", "iptables", "disk", "memory", "nodes", "pods", "events", "operator-logs", "pipeline-logs",
		"custom-resources", "helm-releases"} {
		assert.Contains(t, names, want)
	}
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "a dry run wrote %s", out)
}

func TestSupportBundleRefusesAnExistingOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	require.NoError(t, os.WriteFile(out, []byte("keep"), 0o600))
	cmd := newSupportBundleCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"--output", out})
	err := cmd.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists")
	b, _ := os.ReadFile(out)
	assert.Equal(t, "keep", string(b))
}

func TestSafeName(t *testing.T) {
	assert.Equal(t, "node-1.example", safeName("node-1.example"))
	assert.Equal(t, "a_b_c", safeName("a/b c"))
	assert.Equal(t, "host", safeName(""))
	assert.False(t, strings.ContainsAny(safeName("../../etc"), "/"))
}
