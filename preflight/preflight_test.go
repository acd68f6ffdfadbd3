package preflight

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/preflight/ports"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// staticCheck returns fixed results (runner tests only).
type staticCheck struct {
	name string
	rs   []Result
}

func (c staticCheck) Name() string                        { return c.name }
func (c staticCheck) Run(context.Context, *Host) []Result { return c.rs }

func sampleChecks() []Check {
	return []Check{
		staticCheck{"IsPrivilegedUser", []Result{{Name: "IsPrivilegedUser", Severity: Pass, Message: "running as root"}}},
		staticCheck{"Systemd", []Result{{Name: "Systemd", Severity: Fail, Message: `PID 1 is "process_api", not systemd`, Remedy: "run tpctl on a host booted with systemd"}}},
		staticCheck{"Swap", []Result{{Name: "Swap", Severity: Warn, Message: "swap is on (2.0 GiB on /swapfile)", Remedy: "turn swap off (swapoff -a)"}}},
		staticCheck{"Ports", []Result{
			{Name: "Port-6443-TCP", Severity: Fail, Message: "6443/tcp is in use by nginx (pid 812) on 0.0.0.0", Remedy: "stop nginx"},
			{Name: "Port-10250-TCP", Severity: Pass, Message: "10250/tcp free for kubelet on all interfaces"},
		}},
	}
}

func TestIgnoreSetTurnsFailuresIntoWarnings(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	rep := Run(context.Background(), sampleChecks(), h, ParseIgnoreSet("port-6443-tcp, Swap"))
	m := byName(t, rep.Results)
	require.Len(t, rep.Results, 5, "ignored results stay in the report")
	assert.Equal(t, Warn, m["Port-6443-TCP"].Severity)
	assert.True(t, m["Port-6443-TCP"].Ignored)
	assert.False(t, m["Swap"].Ignored, "only failures are turned into warnings")
	assert.Equal(t, Fail, m["Systemd"].Severity)
	assert.Equal(t, Summary{Pass: 2, Warn: 2, Fail: 1, Ignored: 1}, rep.Summary)
	assert.True(t, rep.Failed())

	rep = Run(context.Background(), sampleChecks(), h, ParseIgnoreSet("all"))
	assert.Equal(t, Summary{Pass: 2, Warn: 3, Fail: 0, Ignored: 2}, rep.Summary)
	assert.False(t, rep.Failed())

	set := ParseIgnoreSet("Systemd,Typo-Name", "all")
	assert.Equal(t, []string{"typo-name"}, set.Unused(rep))
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := Run(ctx, sampleChecks(), fakeHost(t, "v2", nil), nil)
	require.Len(t, rep.Results, 4)
	for _, r := range rep.Results {
		assert.Equal(t, Fail, r.Severity)
		assert.Contains(t, r.Message, "not run")
	}
}

func TestJSONSchema(t *testing.T) {
	h := fakeHost(t, "v1", map[string]string{"proc/self/status": "CapBnd:\t000001fffeffffff\n"})
	rep := Run(context.Background(), sampleChecks(), h, ParseIgnoreSet("Port-6443-TCP"))
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, rep))

	var back Report
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	assert.Equal(t, rep, back, "the JSON report round-trips")

	// Field names are the documented, stable schema.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw))
	assert.Equal(t, []string{"facts", "results", "schema", "summary"}, keys(raw))
	assert.Equal(t, SchemaVersion, raw["schema"])
	assert.Equal(t, []string{"fail", "ignored", "pass", "warn"}, keys(raw["summary"].(map[string]any)))
	results := raw["results"].([]any)
	assert.Equal(t, []string{"ignored", "message", "name", "remedy", "severity"}, keys(results[3].(map[string]any)))
	assert.Equal(t, []string{"message", "name", "severity"}, keys(results[0].(map[string]any)))
	assert.Equal(t, "warn", results[3].(map[string]any)["severity"])
	assert.Equal(t, []string{"arch", "capSysResource", "cgroupVersion", "initSystem", "kernelRelease", "kubeletArgs", "os",
		"restrictOOMScoreAdj", "systemd"}, keys(raw["facts"].(map[string]any)))

	var sev Severity
	assert.Error(t, json.Unmarshal([]byte(`"fatal"`), &sev))
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./preflight -run %s -update to create it", t.Name())
	assert.Equal(t, string(want), string(got))
}

func TestTableGolden(t *testing.T) {
	rep := Run(context.Background(), sampleChecks(), fakeHost(t, "v2", nil), ParseIgnoreSet("Port-6443-TCP"))
	for _, c := range []struct {
		file string
		opts TableOptions
	}{
		{"table.golden", TableOptions{}},
		{"table-color.golden", TableOptions{Color: true}},
		{"table-wrapped.golden", TableOptions{Width: 60}},
	} {
		var buf bytes.Buffer
		require.NoError(t, WriteTable(&buf, rep, c.opts))
		golden(t, c.file, buf.Bytes())
		if !c.opts.Color {
			assert.NotContains(t, buf.String(), "\x1b[", "no colour unless asked for")
		}
	}
}

func TestTableGoldenFullFakeHost(t *testing.T) {
	h := fakeHost(t, "v1", map[string]string{
		"proc/1/comm":       "process_api\n",
		"proc/self/status":  "CapBnd:\t000001fffeffffff\n",
		"etc/resolv.conf":   "nameserver 127.0.0.53\n",
		"proc/swaps":        "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 2097148 0 -2\n",
		"etc/ufw/ufw.conf":  "ENABLED=yes\n",
		"proc/812/comm":     "nginx\n",
		"usr/local/bin/k3s": "ELF",
	})
	h.ClockSynced = func() (bool, error) { return false, nil }
	h.WithSocketReader(sockets(ports.Socket{Protocol: ports.TCP, Addr: netip.MustParseAddr("0.0.0.0"), Port: 6443, PID: 812, Process: "nginx"}))
	checks, err := DefaultChecks(Options{})
	require.NoError(t, err)
	rep := Run(context.Background(), checks, h, ParseIgnoreSet("ExistingInstall"))
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rep, TableOptions{Width: 120}))
	golden(t, "table-fakehost.golden", buf.Bytes())
}

func TestWrap(t *testing.T) {
	assert.Equal(t, []string{"a b", "c"}, wrap("a b c", 3))
	assert.Equal(t, []string{"short"}, wrap("short", 0))
	assert.Equal(t, []string{"tiny", "enormousword", "x"}, wrap("tiny enormousword x", 5))
}

func TestDefaultChecksOptions(t *testing.T) {
	for _, o := range []Options{
		{CNI: "calico"},
		{Datastore: "mysql"},
		{FlannelBackend: "udp"},
		{ClusterCIDR: "10.42.0.0/33"},
		{ServiceCIDR: "10.43.0.1/16"},
		{ClusterCIDR: "10.0.0.0/8"},
		{DataDir: "relative/dir"},
		{Tables: []string{"no-such-table"}},
		{PortsFiles: []string{"testdata/does-not-exist.yaml"}},
	} {
		_, err := DefaultChecks(o)
		assert.Error(t, err, "%+v", o)
	}

	rows, err := Options{CNI: CNICilium}.Rows()
	require.NoError(t, err)
	var tables []string
	for _, r := range rows {
		tables = append(tables, r.Table)
	}
	assert.Contains(t, strings.Join(tables, ","), ports.TableKubernetesCilium, "cilium selects the kubernetes-cilium table")

	rows, err = Options{}.Rows()
	require.NoError(t, err)
	keys := map[string]bool{}
	for _, r := range rows {
		keys[r.Key()] = true
	}
	assert.True(t, keys["8472-UDP"], "flannel VXLAN by default")
	assert.False(t, keys["2379-2380-TCP"], "etcd ports only with datastore=etcd")

	rows, err = Options{Datastore: "etcd", FlannelBackend: "wireguard-native",
		PipelinePorts: []ports.PipelinePort{{Protocol: ports.UDP, Port: 5140, Pipeline: "syslog"}}}.Rows()
	require.NoError(t, err)
	keys = map[string]bool{}
	for _, r := range rows {
		keys[r.Key()] = true
	}
	assert.True(t, keys["2379-2380-TCP"])
	assert.True(t, keys["51820-51821-UDP"])
	assert.True(t, keys["5140-UDP"], "pipeline frontend ports are checked")
}

// TestChecksNeverWrite runs every check against a fake tree and proves the
// tree is unchanged, and that every non-pass result tells what to do.
func TestChecksNeverWrite(t *testing.T) {
	for _, tree := range []string{"v1", "v2"} {
		h := fakeHost(t, tree, nil)
		before := treeDigest(t, h.Root)
		checks, err := DefaultChecks(Options{CNI: CNICilium, Tables: []string{"k3s", "kuma", "event-streams"}})
		require.NoError(t, err)
		rep := Run(context.Background(), checks, h, nil)
		assert.Equal(t, before, treeDigest(t, h.Root), "a check changed the host tree")
		byName(t, rep.Results) // names are unique
		for _, r := range rep.Results {
			assert.NotEmpty(t, r.Name)
			assert.NotEmpty(t, r.Message, r.Name)
			if r.Severity != Pass {
				assert.NotEmpty(t, r.Remedy, "%s has no remedy", r.Name)
			}
		}
	}
}

func treeDigest(t *testing.T, root string) string {
	t.Helper()
	hash := sha256.New()
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hash.Write([]byte(p + info.Mode().String() + info.ModTime().String()))
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			hash.Write(b)
		}
		return nil
	}))
	return string(hash.Sum(nil))
}

// TestThisHost runs every default check on the real machine: whatever the
// verdicts, each result is well formed and the facts agree with the checks.
func TestThisHost(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs a Linux /proc")
	}
	checks, err := DefaultChecks(Options{})
	require.NoError(t, err)
	h := NewHost("/")
	rep := Run(context.Background(), checks, h, nil)
	m := byName(t, rep.Results)
	require.Contains(t, m, "CgroupVersion")
	require.Contains(t, m, "Port-6443-TCP")
	for _, r := range rep.Results {
		if r.Severity != Pass {
			assert.NotEmpty(t, r.Remedy, r.Name)
		}
	}
	assert.Equal(t, rep.Facts.Systemd, m["Systemd"].Severity == Pass)
	assert.Equal(t, rep.Facts.CgroupVersion == 1, m["CgroupVersion"].Severity == Warn)
	assert.Equal(t, rep.Facts.CapSysResource, m["OOMScoreAdj"].Severity == Pass)
}
