//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/cli"
	"github.com/tpctl/tpctl/join"
	"github.com/tpctl/tpctl/test/cluster"
)

// TestTokenCreateOnARealAPIServer makes a token as `tpctl token create`
// does against a real kube-apiserver with bootstrap token authentication
// (K3s enables it): the API server accepts the token's credentials as
// system:bootstrap:<id> in K3s's node group, the join command names the
// node's address and the CA's sha256, and after `token delete` the
// credentials are refused.
func TestTokenCreateOnARealAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp := cluster.StartControlPlane(ctx, t, cluster.ControlPlaneOptions{APIServerArgs: []string{"--enable-bootstrap-token-auth=true"}})
	cfg := cp.RESTConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 {
		ca, err = os.ReadFile(cfg.TLSClientConfig.CAFile)
		require.NoError(t, err)
	}

	// The install recorded no node IP: the address is the node's.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "srv"}}
	_, err = cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	require.NoError(t, err)
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.77.0.10"}}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)
	s := &tokenServer{Tokens: join.Tokens{Client: cs, CA: ca}, Client: cs,
		State: installer.State{Completed: true, Config: installer.Config{NodeName: "srv"}}}

	var out bytes.Buffer
	require.NoError(t, createToken(ctx, s, 30*time.Minute, cli.JSON, &out))
	var got tokenCreated
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, "https://10.77.0.10:6443", got.Server)
	m := regexp.MustCompile(`^K10([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})$`).FindStringSubmatch(got.Token)
	require.NotNil(t, m, "secure K3s token format")
	assert.Equal(t, join.HashCA(ca), m[1])
	assert.Equal(t, got.ID, m[2])
	assert.Equal(t, "tpctl join --server https://10.77.0.10:6443 --token "+got.Token, got.JoinCommand)
	require.NotNil(t, got.Expires)
	assert.WithinDuration(t, time.Now().Add(30*time.Minute), *got.Expires, time.Minute)

	sec, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+m[2], metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.SecretTypeBootstrapToken, sec.Type)

	// The API server authenticates the credentials as K3s's agents present them.
	who := func() (*authnv1.SelfSubjectReview, error) {
		bc := rest.AnonymousClientConfig(cfg)
		bc.BearerToken = m[2] + "." + m[3]
		bcs, err := kubernetes.NewForConfig(bc)
		require.NoError(t, err)
		return bcs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	}
	r, err := who()
	require.NoError(t, err)
	assert.Equal(t, "system:bootstrap:"+m[2], r.Status.UserInfo.Username)
	assert.Contains(t, r.Status.UserInfo.Groups, join.NodeAuthGroup)
	assert.Contains(t, r.Status.UserInfo.Groups, "system:bootstrappers")

	list, err := s.Tokens.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	js, _ := json.Marshal(list)
	assert.NotContains(t, string(js), m[3], "a listing never holds the secret")

	var table bytes.Buffer
	require.NoError(t, createToken(ctx, &tokenServer{Tokens: s.Tokens, Client: cs,
		State: installer.State{Completed: true, Config: installer.Config{NodeName: "srv", NodeIP: "192.0.2.7"}}}, 0, cli.Table, &table))
	assert.Contains(t, table.String(), "it never expires")
	assert.Regexp(t, `\n  tpctl join --server https://192\.0\.2\.7:6443 --token K10[0-9a-f]{64}::[a-z0-9]{6}\.[a-z0-9]{16}\n$`, table.String(),
		"the install's node IP is the address")

	_, err = s.Tokens.Delete(ctx, m[2])
	require.NoError(t, err)
	// The API server's token authenticator reads Secrets through a cache.
	assert.Eventually(t, func() bool {
		_, err := who()
		return apierrors.IsUnauthorized(err)
	}, 30*time.Second, 200*time.Millisecond, "a deleted token no longer authenticates")
}
