package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/join"
)

func TestCreateTokenPrintsTheJoinCommandOnce(t *testing.T) {
	cs := fake.NewClientset()
	s := &tokenServer{Tokens: join.Tokens{Client: cs, CA: []byte("ca-pem")}, Client: cs,
		State: installer.State{Completed: true, Config: installer.Config{NodeName: "srv", NodeIP: "fd00::10"}}}
	var out bytes.Buffer
	require.NoError(t, createToken(context.Background(), s, time.Hour, cli.Table, &out))
	assert.Regexp(t, `^Token [a-z0-9]{6} created; it expires at \S+ \(in 1h0m0s\)\.\n`, out.String())
	assert.Regexp(t, `\n  tpctl join --server https://\[fd00::10\]:6443 --token K10`+join.HashCA([]byte("ca-pem"))+`::[a-z0-9]{6}\.[a-z0-9]{16}\n$`, out.String())
	assert.Equal(t, 1, strings.Count(out.String(), "K10"), "the token is printed once")

	// Without a recorded node IP and without a node address: refused.
	s.State.Config.NodeIP = ""
	_, err := cs.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "srv"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	err = createToken(context.Background(), s, time.Hour, cli.Table, &out)
	assert.ErrorContains(t, err, "no internal address")
	list, err := s.Tokens.List(context.Background())
	require.NoError(t, err)
	assert.Len(t, list, 1, "no token is made when the join command cannot be printed")
}

func TestWriteTokens(t *testing.T) {
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	exp := now.Add(90 * time.Minute)
	old := now.Add(-time.Minute)
	var b bytes.Buffer
	require.NoError(t, writeTokens(&b, []join.TokenInfo{
		{ID: "abcdef", Expires: &exp, Usages: []string{"authentication", "signing"}, Groups: []string{join.NodeAuthGroup}, Description: join.Description},
		{ID: "ghijkl", Expires: &old},
		{ID: "mnopqr"},
	}, now))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4)
	assert.Regexp(t, `^ID\s+EXPIRES\s+TTL\s+USAGES\s+GROUPS\s+DESCRIPTION$`, lines[0])
	assert.Regexp(t, `^abcdef\s+2026-12-07T20:30:00Z\s+1h30m0s\s+authentication,signing\s+system:bootstrappers:k3s:default-node-token\s+tpctl join \(agent\)$`, lines[1])
	assert.Regexp(t, `^ghijkl\s+\S+\s+expired\s+<none>`, lines[2])
	assert.Regexp(t, `^mnopqr\s+never\s+forever\s+`, lines[3])
}

func TestJoinReadToken(t *testing.T) {
	tok := "K10" + strings.Repeat("a", 64) + "::abcdef.0123456789abcdef"
	got, err := joinFlags{token: tok}.readToken(strings.NewReader(""))
	require.NoError(t, err)
	assert.Equal(t, tok, got)

	f := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(f, []byte(tok+"\n"), 0o600))
	got, err = joinFlags{tokenFile: f}.readToken(strings.NewReader(""))
	require.NoError(t, err)
	assert.Equal(t, tok, got)
	got, err = joinFlags{tokenFile: "-"}.readToken(strings.NewReader(tok + "\n"))
	require.NoError(t, err)
	assert.Equal(t, tok, got)

	_, err = joinFlags{token: tok, tokenFile: f}.readToken(nil)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
	_, err = joinFlags{}.readToken(nil)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
	_, err = joinFlags{tokenFile: "-"}.readToken(strings.NewReader(strings.Repeat("x", maxTokenFile+1)))
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err))
}

func TestJoinConfigIsTheAgentsOnly(t *testing.T) {
	c, err := joinFlags{nodeName: "edge-2", nodeIP: "10.0.0.12", dataDir: installer.DefaultDataDir}.config()
	require.NoError(t, err)
	assert.Equal(t, "edge-2", c.NodeName)
	assert.Equal(t, "10.0.0.12", c.NodeIP)
	_, err = joinFlags{nodeName: "Not_A_Name", dataDir: installer.DefaultDataDir}.config()
	assert.Error(t, err)
	_, err = joinFlags{nodeName: "edge-2", dataDir: "/usr"}.config()
	assert.Error(t, err, "a system directory is refused as data dir")
}

func TestNodeDelete(t *testing.T) {
	ctx := context.Background()
	srv := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "srv"}}
	edge := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-2", UID: "u-2"}}
	cs := fake.NewClientset(srv, edge)
	s := &tokenServer{Client: cs, State: installer.State{Completed: true, Config: installer.Config{NodeName: "srv"}}}
	var out bytes.Buffer
	err := deleteNode(ctx, s, "srv", false, &out)
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(err), "the server's own node is refused")
	require.NoError(t, deleteNode(ctx, s, "edge-2", true, &out))
	assert.Contains(t, out.String(), "Dry run: would delete node edge-2")
	_, err = cs.CoreV1().Nodes().Get(ctx, "edge-2", metav1.GetOptions{})
	require.NoError(t, err, "the dry run deletes nothing")
	out.Reset()
	require.NoError(t, deleteNode(ctx, s, "edge-2", false, &out))
	assert.Contains(t, out.String(), "node edge-2 deleted")
	_, err = cs.CoreV1().Nodes().Get(ctx, "edge-2", metav1.GetOptions{})
	assert.Error(t, err)
	err = deleteNode(ctx, s, "edge-2", false, &out)
	assert.ErrorContains(t, err, "there is no node edge-2")
}
