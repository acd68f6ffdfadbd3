package launcher

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/cluster"
)

func TestServerJoinKeysMatchInstaller(t *testing.T) {
	assert.ElementsMatch(t, installer.ServerJoinConfigKeys(), ServerJoinKeys())
}

func TestEtcdVersionIsTheModules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "etcd", "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`go\.etcd\.io/etcd/server/v3 (v\S+)`).FindStringSubmatch(string(b))
	require.NotNil(t, m, "test/k3slauncher/etcd/go.mod requires no etcd server")
	assert.Equal(t, EtcdVersion, m[1])
}

func TestBuildHAKeys(t *testing.T) {
	base := map[string][]string{"node-name": {"n"}}
	with := func(kv ...string) map[string][]string {
		v := map[string][]string{}
		for k, x := range base {
			v[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v[kv[i]] = []string{kv[i+1]}
		}
		return v
	}
	c, err := Build(with("cluster-init", "true"))
	require.NoError(t, err)
	assert.True(t, c.ClusterInit)
	assert.Nil(t, c.JoinURL)
	assert.True(t, EtcdMode(c))

	c, err = Build(with("server", "https://10.0.0.1:6443", "token", "K10"+strings.Repeat("a", 64)+"::server:pw"))
	require.NoError(t, err)
	assert.Equal(t, "https://10.0.0.1:6443", c.JoinURL.String())
	assert.Equal(t, "server", c.JoinToken.Username)
	assert.Equal(t, "pw", c.JoinToken.Password)
	assert.True(t, EtcdMode(c))

	// The passphrase alone is the server's password.
	c, err = Build(with("server", "https://10.0.0.1", "token", "pw"))
	require.NoError(t, err)
	assert.Equal(t, "server", c.JoinToken.Username)
	assert.Equal(t, "10.0.0.1:443", c.JoinURL.Host)

	c, err = Build(base)
	require.NoError(t, err)
	assert.False(t, EtcdMode(c), "a plain server keeps kine on SQLite")

	for name, tc := range map[string]struct {
		vals map[string][]string
		want string
	}{
		"server without token": {with("server", "https://10.0.0.1:6443"), "--token or --token-file is required"},
		"token without server": {with("token", "pw"), "only takes a token to join a server"},
		"cluster-init and server": {with("cluster-init", "true", "server", "https://10.0.0.1:6443", "token", "pw"),
			"cannot initialise a cluster"},
		"agent token":      {with("server", "https://10.0.0.1:6443", "token", "K10::node:pw"), `the "node" token joins agents only`},
		"bootstrap token":  {with("server", "https://10.0.0.1:6443", "token", "abcdef.0123456789abcdef"), "bootstrap token joins agents only"},
		"http server":      {with("server", "http://10.0.0.1:6443", "token", "pw"), "only https:// URLs"},
		"bad cluster-init": {with("cluster-init", "yes"), `cluster-init: "yes" is not true or false`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(tc.vals)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadReadsTokenFile(t *testing.T) {
	readFile, readDir := files(map[string]string{
		DefaultConfigFile: required + "node-name: b\nserver: https://10.0.0.1:6443\ntoken-file: /t\n",
		"/t":              "secret\n",
	})
	c, err := Load(Args{ConfigFile: DefaultConfigFile}, readFile, readDir)
	require.NoError(t, err)
	assert.Equal(t, "secret", c.JoinToken.Password)

	readFile, readDir = files(map[string]string{DefaultConfigFile: required + "server: https://10.0.0.1:6443\ntoken-file: /missing\n"})
	_, err = Load(Args{ConfigFile: DefaultConfigFile}, readFile, readDir)
	assert.ErrorContains(t, err, "token-file")
}

func TestEtcdMemberJSON(t *testing.T) {
	// etcd's gateway sends uint64 as strings, K3s's /db/info as numbers.
	var fromGateway EtcdMembers
	require.NoError(t, json.Unmarshal([]byte(`{"header":{},"members":[{"ID":"1234567890123","name":"a-1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},{"ID":"7","peerURLs":["https://10.0.0.2:2380"],"isLearner":true}]}`), &fromGateway))
	require.Len(t, fromGateway.Members, 2)
	assert.Equal(t, uint64(1234567890123), fromGateway.Members[0].ID)
	assert.True(t, fromGateway.Members[1].IsLearner)
	b, err := json.Marshal(fromGateway)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"ID":1234567890123`)
	var again EtcdMembers
	require.NoError(t, json.Unmarshal(b, &again))
	assert.Equal(t, fromGateway, again)
}

func TestJoinPlan(t *testing.T) {
	a := EtcdMember{ID: 1, Name: "a-11111111", PeerURLs: []string{"https://10.0.0.1:2380"}, ClientURLs: []string{"https://10.0.0.1:2379"}}
	initial, add, err := joinPlan([]EtcdMember{a}, "b-22222222", "b", "10.0.0.2")
	require.NoError(t, err)
	assert.True(t, add)
	assert.Equal(t, "a-11111111=https://10.0.0.1:2380,b-22222222=https://10.0.0.2:2380", initial)

	// Added before (a learner not started yet has no name): not again.
	pending := EtcdMember{ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}, IsLearner: true}
	initial, add, err = joinPlan([]EtcdMember{a, pending}, "b-22222222", "b", "10.0.0.2")
	require.NoError(t, err)
	assert.False(t, add)
	assert.Equal(t, "a-11111111=https://10.0.0.1:2380,b-22222222=https://10.0.0.2:2380", initial)

	// Another member with this node name: refused, as K3s.
	hostA := EtcdMember{ID: 3, Name: "host-a-11111111", PeerURLs: []string{"https://10.0.0.1:2380"}}
	_, _, err = joinPlan([]EtcdMember{hostA}, "host-a-33333333", "host-a", "10.0.0.3")
	assert.ErrorContains(t, err, "duplicate node name found")
}

func TestClientURLsOf(t *testing.T) {
	ms := []EtcdMember{
		{Name: "a", ClientURLs: []string{"https://10.0.0.1:2379"}},
		{Name: "b", ClientURLs: []string{"https://10.0.0.2:2379"}, IsLearner: true},
		{Name: "c", ClientURLs: []string{"https://10.0.0.3:2379"}},
	}
	assert.Equal(t, []string{"https://10.0.0.1:2379"}, clientURLsOf(ms, "10.0.0.3"))
}

func TestEtcdMemberNameIsKept(t *testing.T) {
	l := Layout{Data: t.TempDir()}
	n, err := etcdMemberName(l, "node-a")
	require.NoError(t, err)
	assert.Regexp(t, `^node-a-[0-9a-f]{8}$`, n)
	again, err := etcdMemberName(l, "node-a")
	require.NoError(t, err)
	assert.Equal(t, n, again)
	assert.Equal(t, "node-a", etcdNodeName(n))
	st, err := os.Stat(filepath.Join(l.EtcdDir(), "name"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestBootstrapRoundTrip(t *testing.T) {
	src := t.TempDir()
	for f, content := range map[string]string{"ca.crt": "CA", "ca.key": "CAKEY", "sa.key": "SAKEY", "sa.pub": "SAPUB"} {
		require.NoError(t, os.WriteFile(filepath.Join(src, f), []byte(content), 0o600))
	}
	data, err := readBootstrap(src)
	require.NoError(t, err)
	assert.Equal(t, []byte("CAKEY"), data["ServerCAKey"].Content)
	dst := t.TempDir()
	require.NoError(t, writeBootstrap(dst, data))
	for f, mode := range map[string]os.FileMode{"ca.crt": 0o644, "ca.key": 0o600, "sa.key": 0o600, "sa.pub": 0o644} {
		st, err := os.Stat(filepath.Join(dst, f))
		require.NoError(t, err)
		assert.Equal(t, mode, st.Mode().Perm(), f)
	}
	delete(data, "ServiceKey")
	assert.ErrorContains(t, writeBootstrap(t.TempDir(), data), "lacks ServiceKey")
}

// The server-only routes answer the "server" user only; a server without
// embedded etcd has no /db/info.
func TestServerOnlyRoutes(t *testing.T) {
	ca, err := cluster.NewCA(t.TempDir())
	require.NoError(t, err)
	sup := &Supervisor{CA: &CACert{Cert: ca.Cert, Key: ca.Key, CertPEM: ca.CertPEM}, ServerPass: "spass", AgentPass: "apass",
		Client: fake.NewClientset(),
		DBInfo: func(context.Context) EtcdMembers { return EtcdMembers{Members: []EtcdMember{{ID: 5, Name: "a-1"}}} },
		Bootstrap: func() (map[string]BootstrapFile, error) {
			return map[string]BootstrapFile{"ServerCAKey": {Content: []byte("KEY")}}, nil
		}}
	srv := httptest.NewServer(sup.Handler())
	defer srv.Close()
	get := func(path, user, pass string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	for _, path := range []string{"/db/info", "/v1-k3s/server-bootstrap"} {
		code, _ := get(path, "node", "apass")
		assert.Equal(t, http.StatusForbidden, code, path+" as node")
		code, _ = get(path, "server", "wrong")
		assert.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, path+" with a wrong password")
		code, _ = get(path, "", "")
		assert.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, path+" without credentials")
	}
	code, body := get("/db/info", "server", "spass")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"members":[{"ID":5,"name":"a-1"}]}`, body)
	code, body = get("/v1-k3s/server-bootstrap", "server", "spass")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"ServerCAKey":{"Timestamp":"0001-01-01T00:00:00Z","Content":"S0VZ"}`)

	sup.DBInfo, sup.Bootstrap = nil, nil
	srv2 := httptest.NewServer(sup.Handler())
	defer srv2.Close()
	for _, path := range []string{"/db/info", "/v1-k3s/server-bootstrap"} {
		req, _ := http.NewRequest(http.MethodGet, srv2.URL+path, nil)
		req.SetBasicAuth("server", "spass")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
}

func TestAPIServerPeersAndEndpoints(t *testing.T) {
	ready := true
	p := int32(6443)
	cs := fake.NewClientset(&discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{{Port: &p}},
	})
	alive := func(_ context.Context, addr string) bool { return addr == "10.0.0.1:6443" }
	addrs := apiServerPeers(context.Background(), cs, "10.0.0.2", 6443, alive)
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2"}, addrs, "10.0.0.3 does not answer")

	require.NoError(t, KubernetesEndpoints(context.Background(), cs, addrs, 6443))
	sl, err := cs.DiscoveryV1().EndpointSlices("default").Get(context.Background(), "kubernetes", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, addrs, endpointAddrs(sl.Endpoints))
	ep, err := cs.CoreV1().Endpoints("default").Get(context.Background(), "kubernetes", metav1.GetOptions{}) //nolint:staticcheck // the Service's Endpoints
	require.NoError(t, err)
	require.Len(t, ep.Subsets, 1)
	assert.Equal(t, []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}, ep.Subsets[0].Addresses)
}

func TestLeaderElectionWithEtcd(t *testing.T) {
	args := componentAuth("k", 10259)
	s := &Server{}
	assert.Contains(t, s.leaderElect(args), "--leader-elect=false", "a lone SQLite server elects no leader")
	s.etcd = &serverEtcd{}
	got := s.leaderElect(args)
	assert.Contains(t, got, "--leader-elect=true")
	assert.NotContains(t, got, "--leader-elect=false")
}

func TestEtcdArgs(t *testing.T) {
	l := Layout{Data: "/var/lib/rancher/k3s"}
	args := etcdArgs(l, "a-1", "10.0.0.1", etcdCerts{ca: "/ca"}, "a-1=https://10.0.0.1:2380", "new")
	for _, want := range []string{"--data-dir=/var/lib/rancher/k3s/server/db/etcd",
		"--listen-client-urls=https://10.0.0.1:2379,https://127.0.0.1:2379", "--listen-peer-urls=https://10.0.0.1:2380",
		"--initial-cluster-state=new", "--trusted-ca-file=/ca", "--peer-trusted-ca-file=/ca"} {
		assert.Contains(t, args, want)
	}
}

func TestEtcdNodeMetadata(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "host-b", Labels: map[string]string{"x": "y"}}})
	require.NoError(t, EtcdNodeMetadata(context.Background(), cs, "host-b", "host-b-12345678", "10.0.0.2"))
	n, err := cs.CoreV1().Nodes().Get(context.Background(), "host-b", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "true", n.Labels[EtcdRoleLabel])
	assert.Equal(t, "true", n.Labels[ControlPlaneRoleLabel])
	assert.Equal(t, "y", n.Labels["x"])
	assert.Equal(t, "host-b-12345678", n.Annotations[EtcdNodeNameAnno])
	assert.Equal(t, "10.0.0.2", n.Annotations[EtcdNodeAddressAnno])
	assert.Error(t, EtcdNodeMetadata(context.Background(), cs, "missing", "m", "10.0.0.3"))
}

// Each server's bridge network is its own Node's podCIDR.
func TestServerPodNetworkIsTheNodes(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "host-b"}})
	s := &Server{Config: Config{NodeName: "host-b", DataDir: t.TempDir()}, Log: io.Discard}
	sync := s.podNetwork(cs)
	assert.ErrorContains(t, sync(context.Background()), "no podCIDR yet")
	n, err := cs.CoreV1().Nodes().Get(context.Background(), "host-b", metav1.GetOptions{})
	require.NoError(t, err)
	n.Spec.PodCIDR = "10.42.1.0/24"
	_, err = cs.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, sync(context.Background()))
	b, err := os.ReadFile(filepath.Join(Layout{Data: s.Config.DataDir}.CNIConfDir(), "10-flannel.conflist"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "10.42.1.0/24")
	assert.NotContains(t, string(b), "10.42.0.0/24")
}
