package supportbundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
)

// sentinel returns a unique secret value planted in one source.
func sentinel(source string) string { return "SNTL" + strings.ReplaceAll(source, "-", "") + "x9q7" }

// sentinels lists every value planted by fakeHost and fakeCluster.
var sentinels = []string{}

func plant(source string) string {
	s := sentinel(source)
	sentinels = append(sentinels, s)
	return s
}

const dataDir = "/var/lib/rancher/k3s"

// fakeHost writes an installed host's files below a temporary root, each
// with a secret in it, and answers commands with output holding secrets.
func fakeHost(t *testing.T) (*OSHost, []string) {
	root := t.TempDir()
	tokenPass := plant("tokenpass")
	files := map[string]string{
		installer.K3sConfigPath: "node-name: n1\ntoken: " + plant("cfgtoken") + "\nagent-token: " + plant("agenttoken") +
			"\ndatastore-endpoint: postgres://k3s:" + plant("dbpass") + "@db:5432/k3s\ntoken-file: /etc/k3s-token\n",
		"/etc/rancher/k3s/config.yaml.d/10-extra.yaml": "kubelet-arg:\n- --bootstrap-token=" + plant("droptoken") + "\n",
		"/etc/rancher/k3s/registries.yaml": "configs:\n  reg.example:\n    auth:\n      username: " + plant("reguser") +
			"\n      password: " + plant("regpass") + "\n      identitytoken: " + plant("regidtoken") + "\n",
		installer.EnvFilePath:                   "HTTPS_PROXY=http://alice:" + plant("envproxypass") + "@proxy:3128\nK3S_TOKEN=" + plant("envtoken") + "\n",
		installer.UnitPath:                      "[Service]\nExecStart=/usr/local/bin/k3s server --token " + plant("unittoken") + "\n",
		installer.UnitPath + ".d/10-proxy.conf": "[Service]\nEnvironment=HTTP_PROXY=http://bob:" + plant("dropinproxy") + "@proxy:3128\n",
		installer.StatePath: `{"version":1,"config":{"nodeName":"n1","httpProxy":"http://carol:` + plant("statepass") +
			`@proxy:3128","registries":{"configs":{"r":{"auth":{"password":"` + plant("stateregpass") + `"}}}}}}`,
		installer.LogPath: "step preflight done\nusing proxy https://dave:" + plant("logproxy") + "@proxy:3128\nAuthorization: Bearer " + plant("logbearer") + "\n" +
			"-----BEGIN PRIVATE KEY-----\n" + plant("logpem") + "\n-----END PRIVATE KEY-----\n",
		dataDir + "/server/token":       "K10abcdef0123456789abcdef::server:" + tokenPass + "\n",
		dataDir + "/server/node-token":  "K10abcdef0123456789abcdef::server:" + tokenPass + "\n",
		dataDir + "/server/cred/passwd": plant("passwdfile") + ",node,node,system:nodes\n",
		dataDir + "/agent/etc/containerd/config.toml": "[plugins.cri.registry.configs.\"r\".auth]\n  username = \"u\"\n  password = \"" + plant("ctrdpass") +
			"\"\n  auth = \"" + plant("ctrdauth") + "\"\n",
		"/proc/meminfo":   "MemTotal:        8000000 kB\nMemAvailable:    4000000 kB\n",
		"/proc/cmdline":   "root=/dev/sda1 k3s.token=" + plant("cmdline") + "\n",
		"/etc/os-release": "ID=debian\n", "/proc/version": "Linux 6.1\n", "/proc/uptime": "12.0 10.0\n",
		"/proc/net/dev": "lo: 0 0\n", "/proc/net/route": "Iface\n", "/proc/net/if_inet6": "", "/etc/resolv.conf": "nameserver 10.0.0.1\n", "/etc/hosts": "127.0.0.1 localhost\n",
		installer.K3sBinaryPath: "#!k3s\n",
		"/var/.keep":            "",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o600))
	}
	journalPEM := "-----BEGIN RSA PRIVATE KEY-----\nMIIE" + plant("journalpem") + "\n-----END RSA PRIVATE KEY-----"
	outputs := map[string]string{
		"journalctl": "Dec 07 k3s[1]: level=info msg=\"joining\" token=" + plant("journaltoken") + "\nDec 07 k3s[1]: raw token " + tokenPass +
			"\nDec 07 k3s[1]: proxy http://eve:" + plant("journalproxy") + "@p:3128\n" + journalPEM + "\n",
		"ctr":      "Client: v2\n",
		"crictl":   "CONTAINER ID  IMAGE  STATE\nabc  img:1  Running  --password=" + plant("crictl") + "\n",
		"ip":       "1: lo: <LOOPBACK,UP> mtu 65536\n    link/ether proxy http://f:" + plant("ipout") + "@x\n",
		"iptables": "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"" + plant("iptcomment") + "\" -j ACCEPT\nCOMMIT\n",
	}
	var ran []string
	h := &OSHost{Root: root, Runner: runnerFunc(func(_ context.Context, limit int64, argv ...string) ([]byte, bool, error) {
		ran = append(ran, strings.Join(argv, " "))
		key := filepath.Base(argv[0])
		if key == "k3s" {
			key = argv[1]
		}
		key = strings.TrimSuffix(strings.TrimSuffix(key, "6tables-save"), "tables-save")
		if key == "ip" && strings.HasPrefix(filepath.Base(argv[0]), "ip6") || strings.HasPrefix(filepath.Base(argv[0]), "iptables") {
			key = "iptables"
		}
		out, ok := outputs[key]
		if !ok {
			return nil, false, fmt.Errorf("%s: not found", argv[0])
		}
		if int64(len(out)) > limit {
			return []byte(out[:limit]), true, nil
		}
		return []byte(out), false, nil
	})}
	return h, ran
}

type runnerFunc func(ctx context.Context, limit int64, argv ...string) ([]byte, bool, error)

func (f runnerFunc) Run(ctx context.Context, limit int64, argv ...string) ([]byte, bool, error) {
	return f(ctx, limit, argv...)
}

var (
	gvrInstances = schema.GroupVersionResource{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: v1alpha1.ResourceCoreInstance}
	gvrPipelines = schema.GroupVersionResource{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: v1alpha1.ResourcePipeline}
)

func helmSecret(t *testing.T, name string, rev int, status string, values map[string]any) *corev1.Secret {
	rec := map[string]any{
		"name": name, "namespace": "tpctl-system", "version": rev,
		"info":   map[string]any{"status": status, "description": "Install complete", "last_deployed": "2026-12-07T10:00:00Z", "notes": plant("helmnotes")},
		"chart":  map[string]any{"metadata": map[string]any{"name": name, "version": "0.3.0", "appVersion": "1.2.3"}, "values": values},
		"config": values, "manifest": "apiVersion: v1\nkind: Secret\ndata:\n  password: " + plant("helmmanifest") + "\n",
	}
	raw, err := json.Marshal(rec)
	require.NoError(t, err)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw)
	require.NoError(t, zw.Close())
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, rev), Namespace: "tpctl-system",
			Labels: map[string]string{"owner": "helm", "name": name, "status": status, "version": fmt.Sprint(rev)}},
		Type: "helm.sh/release.v1",
		Data: map[string][]byte{"release": []byte(base64.StdEncoding.EncodeToString(gz.Bytes()))},
	}
}

// fakeCluster returns clients over a cluster holding a secret in each
// kind of object the bundle reads (and in a Secret it must not read).
func fakeCluster(t *testing.T) *Clients {
	pod := func(ns, name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels,
				Annotations: map[string]string{"example.com/password": plant("podannotation" + name)}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Image: "img:1", Env: []corev1.EnvVar{
				{Name: "API_TOKEN", Value: plant("podenvtoken" + name)},
				{Name: "HTTPS_PROXY", Value: "http://u:" + plant("podenvproxy"+name) + "@proxy:3128"},
				{Name: "LOG_LEVEL", Value: "debug"},
			}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, RestartCount: 1}}},
		}
	}
	kc := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{"k3s.io/node-args": `["server","--token","` + plant("nodeargs") + `"]`}}},
		pod("tpctl-system", "operator-abc", map[string]string{"app": "operator"}),
		pod("pipelines", "p1-xyz", map[string]string{v1alpha1.LabelPipeline: "p1"}),
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "pipelines", Name: "e1"}, Type: "Warning", Reason: "Failed",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "pipelines", Name: "p1-xyz"},
			Message:        "pull failed: Authorization: Bearer " + plant("eventbearer") + " rejected", Count: 3},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "pipelines", Name: "p1-secrets"}, Data: map[string][]byte{"key": []byte(plant("plainsecret"))}},
		helmSecret(t, "tp-operator", 1, "superseded", map[string]any{"proxy": map[string]any{"password": plant("helmvalues1")}}),
		helmSecret(t, "tp-operator", 2, "deployed", map[string]any{"image": plant("helmvalues2")}),
	)
	scheme := runtime.NewScheme()
	inst := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "CoreInstance",
		"metadata": map[string]any{"name": "default", "namespace": "pipelines"},
		"spec":     map[string]any{"httpProxy": "http://u:" + plant("crproxy") + "@proxy:3128", "noProxy": []any{".svc"}},
	}}
	pl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Pipeline",
		"metadata": map[string]any{"name": "p1", "namespace": "pipelines"},
		"spec": map[string]any{
			"config": "[OUTPUT]\n    Name http\n    HTTP_User bob\n    HTTP_Passwd " + plant("fbpasswd") + "\n",
			"env":    []any{map[string]any{"name": "DB_PASSWORD", "value": plant("crenv")}},
		},
	}}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{gvrInstances: "CoreInstanceList", gvrPipelines: "PipelineList"}, inst, pl)
	logs := func(_ context.Context, ns, pod string, opts *corev1.PodLogOptions) ([]byte, error) {
		return []byte(fmt.Sprintf("2026-12-07T10:00:00Z %s/%s previous=%v GET / Authorization: Bearer %s\n2026-12-07T10:00:01Z password=%s\n",
			ns, pod, opts.Previous, plant("logs"+pod+fmt.Sprint(opts.Previous)), plant("logspw"+pod+fmt.Sprint(opts.Previous)))), nil
	}
	return &Clients{Kube: kc, Dynamic: dc, Logs: logs}
}

func collectors(t *testing.T, h *OSHost, connect func(context.Context) (*Clients, error), lim Limits) []Collector {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	statusPass := plant("statusjson")
	cs := HostCollectors(HostOptions{
		Host: h, DataDir: dataDir, K3sBinary: installer.K3sBinaryPath, Since: time.Hour, Now: func() time.Time { return now },
		Limits: lim, JournalLines: 1000,
		Preflight: func(context.Context) ([]byte, error) {
			return []byte(`{"results":[{"name":"Proxy","message":"HTTPS_PROXY=https://u:` + plant("preflightjson") + `@p:3128"}]}`), nil
		},
		Status: func(context.Context) ([]byte, error) {
			return []byte(`{"installed":true,"k3s":{"source":"https://u:` + statusPass + `@example.com/k3s"}}`), nil
		},
	})
	return append(cs, ClusterCollectors(ClusterOptions{Connect: connect, Limits: lim, SinceSeconds: 3600})...)
}

// untar returns every file of a tar.gz by name.
func untar(t *testing.T, b []byte) map[string][]byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		assert.Equal(t, int64(0o600), hdr.Mode, hdr.Name)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[strings.TrimPrefix(hdr.Name, "bundle/")] = data
	}
	return out
}

func take(t *testing.T, cs []Collector, red *Redactor, lim Limits) (Index, map[string][]byte, []byte) {
	res := Collect(context.Background(), cs, red, lim, "n1", "v0.0.0-test", time.Hour, time.Now, nil)
	var buf bytes.Buffer
	require.NoError(t, res.Write(&buf, "bundle", red))
	files := untar(t, buf.Bytes())
	var idx Index
	require.NoError(t, json.Unmarshal(files["index.json"], &idx))
	return idx, files, buf.Bytes()
}

func entry(idx Index, path string) (Entry, bool) {
	for _, e := range idx.Files {
		if e.Path == path {
			return e, true
		}
	}
	return Entry{}, false
}

// TestSentinelsNeverReachTheBundle plants a known secret in every source
// (host files, command output, every kind of cluster object, logs, Helm
// release payloads, K3s token files, a plain Secret) and searches every
// byte of the bundle, decompressed, for each of them.
func TestSentinelsNeverReachTheBundle(t *testing.T) {
	sentinels = nil
	h, _ := fakeHost(t)
	cl := fakeCluster(t)
	cs := collectors(t, h, func(context.Context) (*Clients, error) { return cl, nil }, DefaultLimits)
	red := NewRedactor(SecretLiterals(h, dataDir)...)
	idx, files, raw := take(t, cs, red, DefaultLimits)
	require.NotEmpty(t, sentinels)

	var all bytes.Buffer
	for name, data := range files {
		all.WriteString(name + "\n")
		all.Write(data)
	}
	planted := 0
	for _, s := range sentinels {
		planted++
		assert.NotContains(t, all.String(), s, "secret %s reached the bundle", s)
		assert.False(t, bytes.Contains(raw, []byte(s)), "secret %s in the compressed bytes", s)
	}
	t.Logf("%d planted secrets, %d files, none found", planted, len(files))
	assert.Greater(t, planted, 40)

	// The redaction did not empty the bundle: each source is there, with
	// its ordinary content, and the index lists it.
	for path, want := range map[string]string{
		"preflight.json": `"name": "Proxy"`, "status.json": `"installed": true`,
		"tpctl/state.json": `"nodeName": "n1"`, "tpctl/install.log": "step preflight done",
		"k3s/k3s.service": "ExecStart=/usr/local/bin/k3s server --token", "k3s/k3s.service.d/10-proxy.conf": "proxy:3128",
		"k3s/k3s.service.env": "HTTPS_PROXY=", "k3s/journal.log": "joining",
		"k3s/config.yaml": "node-name: n1", "k3s/config.yaml.d/10-extra.yaml": "kubelet-arg", "k3s/registries.yaml": "reg.example",
		"containerd/config.toml": `username = "u"`, "containerd/crictl-ps.txt": "img:1",
		"network/ip-link.txt": "LOOPBACK", "network/iptables-chains.json": `"INPUT"`,
		"host/meminfo": "MemTotal", "host/disk.json": `"path": "/var/lib/rancher/k3s"`,
		"cluster/nodes.yaml": "name: n1", "cluster/pods.yaml": "LOG_LEVEL", "cluster/pods.txt": "p1-xyz",
		"cluster/events.txt": "pull failed", "cluster/coreinstances.yaml": "proxy:3128", "cluster/pipelines.yaml": "HTTP_User bob",
		"cluster/helm-releases.json":                                `"appVersion": "1.2.3"`,
		"logs/operator/tpctl-system/operator-abc_main.log":          "GET /",
		"logs/operator/tpctl-system/operator-abc_main.previous.log": "previous=true",
		"logs/pipelines/pipelines/p1-xyz_main.log":                  "pipelines/p1-xyz",
	} {
		data, ok := files[path]
		if assert.True(t, ok, "no %s in the bundle", path) {
			assert.Contains(t, string(data), want, path)
			assert.Contains(t, string(files["index.json"]), `"path": "`+path+`"`)
		}
	}
	for name := range files {
		assert.NotContains(t, name, "token", "a token file was copied: %s", name)
		assert.NotContains(t, name, "passwd", "K3s's password file was copied: %s", name)
	}
	var rels []HelmRelease
	require.NoError(t, json.Unmarshal(files["cluster/helm-releases.json"], &rels))
	require.Len(t, rels, 2)
	assert.Equal(t, HelmRelease{Name: "tp-operator", Namespace: "tpctl-system", Version: 2, Status: "deployed", Chart: "tp-operator",
		ChartVersion: "0.3.0", AppVersion: "1.2.3", LastDeploy: "2026-12-07T10:00:00Z", Description: "Install complete",
		Object: "Secret/sh.helm.release.v1.tp-operator.v2"}, rels[1])
	assert.Equal(t, 0, idx.Failed, "%+v", idx.Files)
}

// TestAPIServerDown: the host side is collected; every cluster part is in
// the index with the reason, and the reason is redacted too.
func TestAPIServerDown(t *testing.T) {
	sentinels = nil
	h, _ := fakeHost(t)
	red := NewRedactor(SecretLiterals(h, dataDir)...)
	refused := errors.New(`Get "https://127.0.0.1:6443/api/v1/namespaces/default": proxyconnect tcp: http://u:` + plant("errproxy") + `@p:3128: connection refused`)

	for name, connect := range map[string]func(context.Context) (*Clients, error){
		"no client": func(context.Context) (*Clients, error) { return nil, refused },
		"requests fail": func(context.Context) (*Clients, error) {
			cl := fakeCluster(t)
			cl.Kube.(*fake.Clientset).PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, refused })
			return cl, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			cs := collectors(t, h, connect, DefaultLimits)
			idx, files, _ := take(t, cs, red, DefaultLimits)
			clusterParts := 0
			for _, c := range cs {
				if c.Part != PartCluster {
					continue
				}
				clusterParts++
				e, ok := entry(idx, c.Name)
				if assert.True(t, ok, "cluster part %s is not in the index", c.Name) {
					assert.Equal(t, PartCluster, e.Part)
					assert.Contains(t, e.Error, "connection refused", c.Name)
				}
			}
			assert.Equal(t, 7, clusterParts)
			assert.Equal(t, clusterParts, idx.Failed, "only the cluster parts fail: %+v", idx.Files)
			for _, p := range []string{"k3s/journal.log", "k3s/config.yaml", "tpctl/install.log", "host/meminfo", "status.json", "network/ip-addr.txt"} {
				assert.NotEmpty(t, files[p], p)
			}
			for _, s := range sentinels {
				assert.NotContains(t, string(files["index.json"]), s)
			}
		})
	}
}

// TestBounds: a file over the per-file cap keeps its end (logs) or
// beginning, the total cap cuts the rest, a collector that hangs is given
// up after its timeout, and the index tells each.
func TestBounds(t *testing.T) {
	big := strings.Repeat("line of log\n", 1000) + "LAST LINE\n"
	hang := make(chan struct{})
	defer close(hang)
	cs := []Collector{
		{Name: "log", Part: PartHost, Collect: func(context.Context) ([]File, error) {
			return []File{{Path: "a.log", Data: []byte(big), Tail: true}}, nil
		}},
		{Name: "head", Part: PartHost, Collect: func(context.Context) ([]File, error) {
			return []File{{Path: "b.txt", Data: []byte("FIRST\n" + big)}}, nil
		}},
		{Name: "over-total", Part: PartHost, Collect: func(context.Context) ([]File, error) {
			return []File{{Path: "c.txt", Data: []byte(big)}}, nil
		}},
		{Name: "hangs", Part: PartCluster, Collect: func(context.Context) ([]File, error) {
			<-hang // ignores its context
			return nil, nil
		}},
	}
	lim := Limits{MaxFileBytes: 1000, MaxTotalBytes: 2500, CollectorTimeout: 200 * time.Millisecond, LogLines: 10}
	start := time.Now()
	idx, files, _ := take(t, cs, NewRedactor(), lim)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Len(t, files["a.log"], 1000)
	assert.True(t, strings.HasSuffix(string(files["a.log"]), "LAST LINE\n"))
	assert.True(t, strings.HasPrefix(string(files["b.txt"]), "FIRST\n"))
	assert.Len(t, files["c.txt"], 500)
	e, _ := entry(idx, "c.txt")
	assert.True(t, e.Truncated)
	assert.Contains(t, e.Error, "total size cap")
	e, _ = entry(idx, "hangs")
	assert.Contains(t, e.Error, "timed out after 200ms")
	assert.Equal(t, 3, idx.Trunc)
	assert.Equal(t, 2, idx.Failed)
}

func TestStructuredFilesThatDoNotParseAreLeftOut(t *testing.T) {
	sentinels = nil
	h, _ := fakeHost(t)
	secret := plant("badyaml")
	require.NoError(t, os.WriteFile(filepath.Join(h.Root, "etc/rancher/k3s/registries.yaml"), []byte("configs: [\n  pass: "+secret), 0o600))
	idx, files, _ := take(t, HostCollectors(HostOptions{Host: h, DataDir: dataDir, K3sBinary: installer.K3sBinaryPath, Now: time.Now, Limits: DefaultLimits}), NewRedactor(), DefaultLimits)
	_, ok := files["k3s/registries.yaml"]
	assert.False(t, ok)
	e, _ := entry(idx, "k3s/registries.yaml")
	assert.Contains(t, e.Error, "does not parse")
	for _, d := range files {
		assert.NotContains(t, string(d), secret)
	}
}

func TestWriteFileIsPrivateAndNeverOverwrites(t *testing.T) {
	res := Collect(context.Background(), nil, NewRedactor(), DefaultLimits, "n1", "", time.Hour, time.Now, nil)
	p := filepath.Join(t.TempDir(), "b.tar.gz")
	require.NoError(t, res.WriteFile(p, NewRedactor()))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.Error(t, res.WriteFile(p, NewRedactor()))
	_, err = os.Stat(p)
	assert.NoError(t, err, "the existing file is kept")
}

func TestHostCommandsAreArgvAndBounded(t *testing.T) {
	sentinels = nil
	h, _ := fakeHost(t)
	var ran [][]string
	inner := h.Runner
	h.Runner = runnerFunc(func(ctx context.Context, limit int64, argv ...string) ([]byte, bool, error) {
		ran = append(ran, argv)
		return inner.Run(ctx, limit, argv...)
	})
	lim := DefaultLimits
	lim.MaxFileBytes = 30
	idx, files, _ := take(t, HostCollectors(HostOptions{Host: h, DataDir: dataDir, K3sBinary: installer.K3sBinaryPath, Since: 2 * time.Hour,
		Now: func() time.Time { return time.Unix(1_800_000_000, 0) }, Limits: lim, JournalLines: 77}), NewRedactor(), lim)
	assert.Contains(t, ran, []string{"journalctl", "--no-pager", "--output=short-iso", "--unit=k3s.service", "--since=@1799992800", "--lines=77"})
	assert.Contains(t, ran, []string{installer.K3sBinaryPath, "crictl", "ps", "-a"})
	for _, argv := range ran {
		assert.NotEqual(t, "sh", filepath.Base(argv[0]))
		assert.NotEqual(t, "bash", filepath.Base(argv[0]))
	}
	e, _ := entry(idx, "k3s/journal.log")
	assert.True(t, e.Truncated)
	assert.LessOrEqual(t, len(files["k3s/journal.log"]), 30)
}

func TestExecRunnerCapsOutput(t *testing.T) {
	out, trunc, err := ExecRunner{}.Run(context.Background(), 10, "/bin/echo", "0123456789abcdef")
	require.NoError(t, err)
	assert.True(t, trunc)
	assert.Equal(t, "0123456789", string(out))
	_, _, err = ExecRunner{}.Run(context.Background(), 10, "/nonexistent/tool")
	assert.Error(t, err)
}

// A collector that returns some files and an error keeps both.
func TestPartialCollectorKeepsFilesAndError(t *testing.T) {
	cs := []Collector{{Name: "half", Part: PartHost, Collect: func(context.Context) ([]File, error) {
		return []File{{Path: "half/a.txt", Data: []byte("a")}}, errors.New("b failed")
	}}}
	idx, files, _ := take(t, cs, NewRedactor(), DefaultLimits)
	assert.Equal(t, "a", string(files["half/a.txt"]))
	e, ok := entry(idx, "half")
	require.True(t, ok)
	assert.Equal(t, "b failed", e.Error)
	assert.Equal(t, 1, idx.Failed)
}
