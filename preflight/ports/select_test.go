package ports

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keys(rows []Row) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Key())
	}
	return out
}

func rowByKey(t *testing.T, rows []Row, key string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Key() == key {
			return r
		}
	}
	t.Fatalf("no row %s in %v", key, keys(rows))
	return Row{}
}

func builtin(t *testing.T) []Table {
	t.Helper()
	all, err := Builtin()
	require.NoError(t, err)
	return all
}

func TestSelectDefault(t *testing.T) {
	rows, err := Select(builtin(t), Selection{})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"6443-TCP", "10250-TCP", "8472-UDP", "6444-TCP", "10248-TCP", "10249-TCP",
		"10256-TCP", "10257-TCP", "10258-TCP", "10259-TCP", "10010-TCP", "2020-TCP",
	}, keys(rows), "flannel VXLAN comes with the default CNI; WireGuard and etcd need their conditions")
	assert.Equal(t, "flannel", rowByKey(t, rows, "8472-UDP").Component)
	assert.Equal(t, TableTelemetryPipeline, rowByKey(t, rows, "2020-TCP").Table)
	assert.Equal(t, TableK3s, rowByKey(t, rows, "6443-TCP").Table)
}

func TestSelectConditionsOfK3s(t *testing.T) {
	rows, err := Select(builtin(t), Selection{
		Tables:     []string{TableK3s},
		Conditions: map[string]bool{"flannel-backend=wireguard-native": true, "datastore=etcd": true, "datastore=k8s-dqlite": false},
	})
	require.NoError(t, err)
	ks := keys(rows)
	assert.Contains(t, ks, "51820-51821-UDP")
	assert.Contains(t, ks, "2379-2380-TCP")
	assert.Contains(t, ks, "8472-UDP")
	assert.Len(t, rows, 13)
}

func TestSelectCiliumBringsItsTableAndDropsFlannel(t *testing.T) {
	rows, err := Select(builtin(t), Selection{Conditions: map[string]bool{CondCNICilium: true}})
	require.NoError(t, err)
	ks := keys(rows)
	for _, k := range []string{"4244-TCP", "4240-TCP", "9963-TCP", "9234-TCP", "9879-TCP", "9890-TCP", "9891-TCP"} {
		assert.Contains(t, ks, k)
	}
	for _, k := range []string{"2379-TCP", "2380-TCP", "9000-TCP", "6400-TCP"} {
		assert.NotContains(t, ks, k, "needs its own condition")
	}
	vxlan := rowByKey(t, rows, "8472-UDP")
	assert.Equal(t, "cilium-agent", vxlan.Component, "the flannel row must not apply with cni=cilium")
	assert.Equal(t, TableKubernetesCilium, vxlan.Table)

	api := rowByKey(t, rows, "6443-TCP")
	assert.Equal(t, "k3s server (kube-apiserver), kube-apiserver", api.Component)
	assert.Equal(t, "k3s, kubernetes-cilium", api.Table)
	assert.Equal(t, BindHost, api.Binding)
	assert.Equal(t, "", api.Condition)

	cm := rowByKey(t, rows, "10257-TCP")
	assert.Equal(t, BindHost, cm.Binding, "k3s lists 10257 on loopback, seed 002 on the host: the stricter binding wins")
	assert.Equal(t, "kube-controller-manager, kube-controller", cm.Component)

	seen := map[string]bool{}
	for _, k := range ks {
		assert.False(t, seen[k], "key %s appears twice", k)
		seen[k] = true
	}
}

func TestSelectEtcdRangeAndSinglePortsStayApart(t *testing.T) {
	rows, err := Select(builtin(t), Selection{
		Tables:     []string{TableK3s, TableKubernetesCilium},
		Conditions: map[string]bool{"datastore=etcd": true},
	})
	require.NoError(t, err)
	ks := keys(rows)
	assert.Contains(t, ks, "2379-2380-TCP")
	assert.Contains(t, ks, "2379-TCP")
	assert.Contains(t, ks, "2380-TCP")
}

func TestSelectKumaModes(t *testing.T) {
	all := builtin(t)
	remote, err := Select(all, Selection{Tables: []string{TableKuma}, Conditions: map[string]bool{"kuma-mode=remote": true}})
	require.NoError(t, err)
	assert.Equal(t, []string{"5443-TCP", "5676-TCP", "5677-TCP", "5678-TCP", "5679-TCP", "5680-TCP", "5681-TCP", "5682-TCP", "5653-UDP"}, keys(remote))

	global, err := Select(all, Selection{Tables: []string{TableKuma}, Conditions: map[string]bool{"kuma-mode=global": true}})
	require.NoError(t, err)
	assert.Equal(t, []string{"5443-TCP", "5681-TCP"}, keys(global))

	both, err := Select(all, Selection{Tables: []string{TableKuma}, Conditions: map[string]bool{"kuma-mode=standalone": true, "kuma-mode=remote": true}})
	require.NoError(t, err)
	api := rowByKey(t, both, "5681-TCP")
	assert.Equal(t, "kuma-mode=standalone, kuma-mode=remote", api.Condition)
	assert.Equal(t, "kuma-cp", api.Component)
	assert.Len(t, both, 10, "standalone's 9 rows plus remote's 5443, nothing twice")

	dp, err := Select(all, Selection{Tables: []string{TableKuma}, Conditions: map[string]bool{"kuma-dp": true}})
	require.NoError(t, err)
	assert.Equal(t, []string{"15001-TCP", "9901-TCP"}, keys(dp))
	assert.Equal(t, BindLocalhost, rowByKey(t, dp, "9901-TCP").Binding)
}

func TestSelectEventStreamsMergesPods(t *testing.T) {
	rows, err := Select(builtin(t), Selection{Tables: []string{TableEventStreams}, Conditions: map[string]bool{"es-metrics": true, "es-internal-tls": true}})
	require.NoError(t, err)
	metrics := rowByKey(t, rows, "9404-TCP")
	assert.Equal(t, "event-streams kafka, event-streams zookeeper, event-streams geo-replicator, event-streams kafka-connect", metrics.Component)
	assert.Equal(t, "es-metrics", metrics.Condition)
	assert.Equal(t, "event-streams", metrics.Table)
	assert.Contains(t, keys(rows), "7443-TCP")
	assert.NotContains(t, keys(rows), "7080-TCP")
	assert.NotContains(t, keys(rows), "9092-TCP")
}

func TestSelectUnknownTable(t *testing.T) {
	_, err := Select(builtin(t), Selection{Tables: []string{"k3s", "kumaa"}})
	require.EqualError(t, err, `unknown port table "kumaa" (known tables: k3s, kubernetes-cilium, telemetry-pipeline, kuma, event-streams)`)
}

func TestSelectExtraPipelineRows(t *testing.T) {
	extra, err := PipelineRows([]PipelinePort{
		{Protocol: TCP, Port: 2020, Pipeline: "shadow"},
		{Protocol: UDP, Port: 5140, Pipeline: "syslog"},
		{Protocol: TCP, Port: 5140, Pipeline: "syslog"},
	})
	require.NoError(t, err)
	rows, err := Select(builtin(t), Selection{Extra: extra})
	require.NoError(t, err)
	n := len(rows)
	assert.Equal(t, []string{"2020-TCP", "5140-UDP", "5140-TCP"}, keys(rows[n-2-1:]))
	hc := rowByKey(t, rows, "2020-TCP")
	assert.Equal(t, "health-check pipeline, pipeline shadow", hc.Component)
	syslog := rowByKey(t, rows, "5140-UDP")
	assert.Equal(t, Row{
		Port: 5140, Protocol: UDP, Component: "pipeline syslog", Binding: BindHost,
		Purpose: "frontend port of pipeline syslog", Source: "000_428ce519970e9097.txt: Frontend and backend ports",
		Table: TableTelemetryPipeline,
	}, syslog)

	_, err = Select(builtin(t), Selection{Extra: []Row{{Port: 70000, Protocol: TCP, Binding: BindHost, Component: "x", Purpose: "y"}}})
	require.EqualError(t, err, "extra port row 0 (70000/tcp): port: 70000 is out of range 1-65535")
}

func TestPipelineRowsErrors(t *testing.T) {
	cases := []struct {
		claim PipelinePort
		want  string
	}{
		{PipelinePort{Protocol: TCP, Port: 0, Pipeline: "a"}, "pipeline a port 0 (0/tcp): port: 0 is out of range 1-65535"},
		{PipelinePort{Protocol: "sctp", Port: 80, Pipeline: "a"}, `pipeline a port 0 (80/sctp): protocol: unknown protocol "sctp" (want tcp or udp)`},
		{PipelinePort{Protocol: TCP, Port: 80, Pipeline: " "}, "pipeline port 0 (80/tcp): pipeline name is empty"},
	}
	for _, tc := range cases {
		_, err := PipelineRows([]PipelinePort{tc.claim})
		require.EqualError(t, err, tc.want)
	}
}

func TestDedupe(t *testing.T) {
	in := []Row{
		{Port: 80, Protocol: TCP, Component: "a", Binding: BindLocalhost, Condition: "x", Purpose: "p1", Source: "s1", Table: "t1"},
		{Port: 80, Protocol: UDP, Component: "b", Binding: BindHost, Purpose: "p2", Source: "s2", Table: "t1"},
		{Port: 80, EndPort: 81, Protocol: TCP, Component: "c", Binding: BindHost, Purpose: "p3", Source: "s3", Table: "t2"},
		{Port: 80, Protocol: TCP, Component: "d", Binding: BindHost, Condition: "y", Purpose: "p1", Source: "s4", Table: "t2"},
		{Port: 80, Protocol: TCP, Component: "a", Binding: BindLocalhost, Purpose: "p5", Source: "s1", Table: "t3"},
	}
	before := append([]Row(nil), in...)
	out := Dedupe(in)
	assert.Equal(t, before, in, "input untouched")
	require.Len(t, out, 3)
	assert.Equal(t, Row{
		Port: 80, Protocol: TCP, Component: "a, d", Binding: BindHost, Condition: "",
		Purpose: "p1; p5", Source: "s1; s4", Table: "t1, t2, t3",
	}, out[0])
	assert.Equal(t, in[1], out[1])
	assert.Equal(t, in[2], out[2])
}

func TestPick(t *testing.T) {
	all := []Table{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	got, err := Pick(all, []string{"c", "a", "c"})
	require.NoError(t, err)
	assert.Equal(t, []Table{{Name: "c"}, {Name: "a"}}, got)
	_, err = Pick(all, []string{"d"})
	require.EqualError(t, err, `unknown port table "d" (known tables: a, b, c)`)
}
