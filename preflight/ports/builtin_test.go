package ports

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const k3sDoc = "K3s networking requirements"

// seedSource is "<seed file>: <section>[ > <section>]".
var seedSource = regexp.MustCompile(`^(\d{3}_[0-9a-f]{16}\.txt): (.+)$`)

func TestBuiltinLoads(t *testing.T) {
	all, err := Builtin()
	require.NoError(t, err)
	names := make([]string, 0, len(all))
	for _, tb := range all {
		names = append(names, tb.Name)
		assert.NotEmpty(t, tb.Description, tb.Name)
		assert.NotEmpty(t, tb.Rows, tb.Name)
		for i, r := range tb.Rows {
			assert.Equal(t, tb.Name, r.Table, "%s row %d", tb.Name, i)
			if tb.Name == TableK3s {
				assert.Equal(t, k3sDoc, r.Source, "k3s row %d", i)
			} else {
				assert.Regexp(t, seedSource, r.Source, "%s row %d", tb.Name, i)
			}
		}
	}
	assert.Equal(t, BuiltinNames(), names)
	for _, d := range DefaultTables() {
		assert.Contains(t, names, d)
	}
}

// seedsDir finds the shared seed documents beside the repository, or skips.
func seedsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TPCTL_SEEDS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "seeds")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("needs the seed documents (set TPCTL_SEEDS_DIR): %v", err)
	}
	return dir
}

// TestBuiltinSourcesNameSeeds checks that every row cites an existing seed
// file and sections that occur in it, and that no purpose copies seed text.
func TestBuiltinSourcesNameSeeds(t *testing.T) {
	dir := seedsDir(t)
	seeds := map[string]string{}
	for _, tb := range builtin(t) {
		for i, r := range tb.Rows {
			if r.Source == k3sDoc {
				continue
			}
			m := seedSource.FindStringSubmatch(r.Source)
			require.NotNil(t, m, "%s row %d source %q", tb.Name, i, r.Source)
			text, ok := seeds[m[1]]
			if !ok {
				b, err := os.ReadFile(filepath.Join(dir, m[1]))
				require.NoError(t, err, "%s row %d cites a missing seed", tb.Name, i)
				text = string(b)
				seeds[m[1]] = text
			}
			for _, section := range strings.Split(m[2], " > ") {
				assert.Contains(t, text, section, "%s row %d cites a section the seed does not have", tb.Name, i)
			}
		}
	}
	assert.Len(t, seeds, 4, "tables cite seeds 000, 002, 003 and 004")
	for _, tb := range builtin(t) {
		for i, r := range tb.Rows {
			for name, text := range seeds {
				if len(r.Purpose) >= 20 {
					assert.NotContains(t, strings.ToLower(text), strings.ToLower(r.Purpose),
						"%s row %d purpose is copied from %s", tb.Name, i, name)
				}
			}
		}
	}
}

type fact struct {
	key, binding, condition string
}

func tableFacts(t *testing.T, name string) []fact {
	t.Helper()
	tbs, err := Pick(builtin(t), []string{name})
	require.NoError(t, err)
	var out []fact
	for _, r := range tbs[0].Rows {
		out = append(out, fact{r.Key(), string(r.Binding), r.Condition})
	}
	return out
}

func TestBuiltinK3sFacts(t *testing.T) {
	assert.Equal(t, []fact{
		{"6443-TCP", "host", ""},
		{"10250-TCP", "host", ""},
		{"8472-UDP", "host", "cni=flannel"},
		{"51820-51821-UDP", "host", "flannel-backend=wireguard-native"},
		{"2379-2380-TCP", "host", "datastore=etcd"},
		{"6444-TCP", "localhost", ""},
		{"10248-TCP", "localhost", ""},
		{"10249-TCP", "localhost", ""},
		{"10256-TCP", "localhost", ""},
		{"10257-TCP", "localhost", ""},
		{"10258-TCP", "localhost", ""},
		{"10259-TCP", "localhost", ""},
		{"10010-TCP", "localhost", ""},
	}, tableFacts(t, TableK3s))
}

func TestBuiltinKubernetesCiliumFacts(t *testing.T) {
	assert.Equal(t, []fact{
		{"2379-TCP", "host", "datastore=etcd"},
		{"4244-TCP", "host", "cni=cilium"},
		{"4240-TCP", "host", "cni=cilium"},
		{"6400-TCP", "host", "distribution=canonical-kubernetes"},
		{"6443-TCP", "host", ""},
		{"8472-UDP", "host", "cni=cilium"},
		{"9000-TCP", "host", "datastore=k8s-dqlite"},
		{"9963-TCP", "host", "cni=cilium"},
		{"10250-TCP", "host", ""},
		{"10257-TCP", "host", ""},
		{"10259-TCP", "host", ""},
		{"2380-TCP", "localhost", "datastore=etcd"},
		{"9234-TCP", "localhost", "cni=cilium"},
		{"9879-TCP", "localhost", "cni=cilium"},
		{"9890-TCP", "localhost", "cni=cilium"},
		{"9891-TCP", "localhost", "cni=cilium"},
		{"10248-TCP", "localhost", ""},
		{"10249-TCP", "localhost", ""},
		{"10256-TCP", "localhost", ""},
	}, tableFacts(t, TableKubernetesCilium))
	tbs, err := Pick(builtin(t), []string{TableKubernetesCilium})
	require.NoError(t, err)
	assert.Contains(t, tbs[0].Description, "/run/containerd/containerd.sock")
}

func TestBuiltinTelemetryPipelineFacts(t *testing.T) {
	assert.Equal(t, []fact{{"2020-TCP", "host", ""}}, tableFacts(t, TableTelemetryPipeline))
}

func TestBuiltinKumaFacts(t *testing.T) {
	byCond := map[string][]string{}
	for _, f := range tableFacts(t, TableKuma) {
		byCond[f.condition] = append(byCond[f.condition], f.key+"/"+f.binding)
	}
	assert.Equal(t, map[string][]string{
		"kuma-mode=standalone": {"5676-TCP/host", "5677-TCP/host", "5678-TCP/host", "5679-TCP/host", "5680-TCP/host", "5681-TCP/host", "5682-TCP/host", "5685-TCP/host", "5653-UDP/host"},
		"kuma-mode=global":     {"5443-TCP/host", "5681-TCP/host"},
		"kuma-mode=remote":     {"5443-TCP/host", "5676-TCP/host", "5677-TCP/host", "5678-TCP/host", "5679-TCP/host", "5680-TCP/host", "5681-TCP/host", "5682-TCP/host", "5653-UDP/host"},
		"kuma-dp":              {"15001-TCP/host", "9901-TCP/localhost"},
		"kuma-dp-universal":    {"30001-TCP/localhost"},
	}, byCond)
}

func TestBuiltinEventStreamsFacts(t *testing.T) {
	tbs, err := Pick(builtin(t), []string{TableEventStreams})
	require.NoError(t, err)
	perPod := map[string][]string{}
	for _, r := range tbs[0].Rows {
		assert.Equal(t, BindHost, r.Binding)
		assert.Equal(t, TCP, r.Protocol)
		cond := r.Condition
		if cond == "" {
			cond = "always"
		}
		pod := strings.TrimPrefix(r.Component, "event-streams ")
		perPod[pod] = append(perPod[pod], r.PortString()+":"+cond)
	}
	internal := []string{"9443:always", "7443:es-internal-tls", "7080:es-internal-plain"}
	assert.Equal(t, map[string][]string{
		"kafka":             {"8091:always", "9091:always", "9092:es-listener-plain", "9093:es-listener-tls", "9094:es-listener-external", "9404:es-metrics", "9999:es-jmx"},
		"zookeeper":         {"2181:always", "2888:always", "3888:always", "9404:es-metrics"},
		"geo-replicator":    {"8083:always", "9404:es-metrics"},
		"schema-registry":   internal,
		"admin-ui":          {"3000:always"},
		"admin-server":      internal,
		"rest-producer":     internal,
		"metrics-collector": {"7888:always", "7443:es-internal-tls", "7080:es-internal-plain"},
		"cluster-operator":  {"8080:always", "8081:always"},
		"cruise-control":    {"9090:always"},
		"kafka-connect":     {"8083:always", "9404:es-metrics"},
	}, perPod)
}

// TestConditionVocabularyDocumented keeps README.md's condition table in step
// with the conditions the tables use.
func TestConditionVocabularyDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "## Conditions")
	require.True(t, ok, "README.md has a Conditions section")
	section, _, _ = strings.Cut(section, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	assert.ElementsMatch(t, KnownConditions(builtin(t)), documented)
}

func TestLoadFSRejectsStrayAndMisnamedTables(t *testing.T) {
	okTable := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("name: " + name + "\nrows:\n  - {port: 1, protocol: tcp, component: c, binding: host, purpose: p, source: s}\n")}
	}
	tables, err := loadFS(fstest.MapFS{"t/a.yaml": okTable("a"), "t/b.yaml": okTable("b")}, "t", []string{"b", "a"})
	require.NoError(t, err)
	assert.Equal(t, "b", tables[0].Name)
	assert.Equal(t, "a", tables[1].Name)

	_, err = loadFS(fstest.MapFS{"t/a.yaml": okTable("a"), "t/extra.yaml": okTable("extra")}, "t", []string{"a"})
	require.EqualError(t, err, "built-in port table file extra.yaml is not in the list of built-in tables")

	_, err = loadFS(fstest.MapFS{"t/a.yaml": okTable("z")}, "t", []string{"a"})
	require.EqualError(t, err, `t/a.yaml: holds table "z", want "a"`)

	_, err = loadFS(fstest.MapFS{"t/a.yaml": okTable("a")}, "t", []string{"a", "b"})
	require.ErrorContains(t, err, "read built-in port table: open t/b.yaml")

	_, err = loadFS(fstest.MapFS{"t/a.yaml": {Data: []byte("name: a\nrows: []\n")}}, "t", []string{"a"})
	require.EqualError(t, err, "t/a.yaml:2: rows: empty: a table needs at least one row")
}
