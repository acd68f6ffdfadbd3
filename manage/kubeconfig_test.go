package manage

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func locator(env string, files map[string]error) KubeconfigLocator {
	return KubeconfigLocator{
		Getenv:  func(k string) string { return map[string]string{"KUBECONFIG": env}[k] },
		Home:    "/home/u",
		K3sPath: K3sKubeconfig,
		Readable: func(p string) error {
			if err, ok := files[p]; ok {
				return err
			}
			return fs.ErrNotExist
		},
	}
}

func TestResolveKubeconfigOrder(t *testing.T) {
	all := map[string]error{"/flag": nil, "/a": nil, "/b": nil, K3sKubeconfig: nil, "/home/u/.kube/config": nil}
	for _, tc := range []struct {
		name  string
		flag  string
		env   string
		files map[string]error
		want  Kubeconfig
	}{
		{"flag first", "/flag", "/a", all, Kubeconfig{Paths: []string{"/flag"}, Source: SourceFlag}},
		{"then $KUBECONFIG, missing files skipped", "", "/a:/missing:/b", all, Kubeconfig{Paths: []string{"/a", "/b"}, Source: SourceEnv}},
		{"then K3s", "", "", all, Kubeconfig{Paths: []string{K3sKubeconfig}, Source: SourceK3s}},
		{"then home", "", "", map[string]error{"/home/u/.kube/config": nil}, Kubeconfig{Paths: []string{"/home/u/.kube/config"}, Source: SourceHome}},
		{"unreadable K3s falls through to home", "", "", map[string]error{K3sKubeconfig: fs.ErrPermission, "/home/u/.kube/config": nil},
			Kubeconfig{Paths: []string{"/home/u/.kube/config"}, Source: SourceHome}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := locator(tc.env, tc.files).Resolve(tc.flag)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResolveKubeconfigErrors(t *testing.T) {
	_, err := locator("", nil).Resolve("/nope")
	assert.ErrorContains(t, err, "read kubeconfig /nope (from --kubeconfig)")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	_, err = locator("/x:/y", nil).Resolve("")
	assert.EqualError(t, err, `$KUBECONFIG is "/x:/y" but names no readable file`)

	_, err = locator("", map[string]error{K3sKubeconfig: fs.ErrPermission}).Resolve("")
	assert.EqualError(t, err, "no kubeconfig found (/etc/rancher/k3s/k3s.yaml is not readable by this user; "+
		"/home/u/.kube/config does not exist): run as root to use the K3s kubeconfig, or pass --kubeconfig or set $KUBECONFIG")
}

const kubeconfigYAML = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: secret}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: telemetry}
current-context: x
`

func TestConnectNamespaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(path, []byte(kubeconfigYAML), 0o600))
	kc := Kubeconfig{Paths: []string{path}, Source: SourceFlag}

	conn, err := Connect(kc, "")
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", conn.REST.Host)
	assert.Equal(t, "telemetry", conn.Namespace, "the context's namespace")

	conn, err = Connect(kc, "other")
	require.NoError(t, err)
	assert.Equal(t, "other", conn.Namespace, "the flag wins")

	broken := filepath.Join(dir, "broken")
	require.NoError(t, os.WriteFile(broken, []byte("clusters: [\n"), 0o600))
	_, err = Connect(Kubeconfig{Paths: []string{broken}, Source: SourceEnv}, "")
	assert.ErrorContains(t, err, "load kubeconfig "+broken+" (from $KUBECONFIG)")
}
