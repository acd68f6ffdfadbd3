package launcher

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func fsReaders(files map[string]string) (func(string) ([]byte, error), func(string) ([]os.DirEntry, error)) {
	m := fstest.MapFS{}
	for k, v := range files {
		m[strings.TrimPrefix(k, "/")] = &fstest.MapFile{Data: []byte(v)}
	}
	return func(p string) ([]byte, error) { return m.ReadFile(strings.TrimPrefix(p, "/")) },
		func(p string) ([]os.DirEntry, error) { return m.ReadDir(strings.TrimPrefix(p, "/")) }
}

func noEnv(string) string { return "" }

func TestAgentKeysAreK3sAgentKeys(t *testing.T) {
	// Every key is one of K3s's `agent` flags (pkg/cli/cmds/agent.go);
	// server-only keys are refused in agent mode.
	k3sAgent := []string{"token", "token-file", "server", "data-dir", "node-name", "with-node-id", "node-label", "node-taint",
		"image-credential-provider-bin-dir", "image-credential-provider-config", "docker", "container-runtime-endpoint",
		"pause-image", "snapshotter", "private-registry", "node-ip", "node-external-ip", "resolv-conf", "flannel-iface",
		"flannel-conf", "kubelet-arg", "kube-proxy-arg", "protect-kernel-defaults", "rootless", "selinux", "lb-server-port"}
	for _, k := range AgentKeys() {
		found := false
		for _, a := range k3sAgent {
			found = found || a == k
		}
		if !found {
			t.Errorf("%s is not a K3s agent key", k)
		}
	}
	for _, serverOnly := range []string{"cluster-cidr", "disable", "tls-san", "write-kubeconfig-mode", "flannel-backend"} {
		if _, err := ParseAgentArgs([]string{"--" + serverOnly + "=x"}); err == nil || !strings.Contains(err.Error(), "--"+serverOnly) {
			t.Errorf("agent flag --%s: error %v, want one naming it", serverOnly, err)
		}
		rf, rd := fsReaders(map[string]string{DefaultConfigFile: serverOnly + ": x\nserver: https://a:6443\ntoken: t\n"})
		a, _ := ParseAgentArgs(nil)
		if _, err := LoadAgent(a, rf, rd, noEnv); err == nil || !strings.Contains(err.Error(), `"`+serverOnly+`"`) {
			t.Errorf("agent config key %s: error %v, want one naming it", serverOnly, err)
		}
	}
}

func TestLoadAgentMergesAsServerMode(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	rf, rd := fsReaders(map[string]string{
		DefaultConfigFile:                     "server: https://10.0.0.1:6443\ntoken: K10" + hash + "::node:pw\nnode-label: [a=1]\nkubelet-arg: [max-pods=50]\n",
		DefaultConfigFile + ".d/20-more.yaml": "node-label+: [b=2]\nnode-taint: [dedicated=logs:NoSchedule]\nnode-ip: 10.0.0.2\n",
	})
	a, err := ParseAgentArgs([]string{"--node-name", "Worker-1", "--node-label=c=3"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := LoadAgent(a, rf, rd, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if o.Server.String() != "https://10.0.0.1:6443" || o.Token.Username != "node" || o.Token.Password != "pw" || o.Token.CAHash != hash {
		t.Errorf("server/token = %v %+v", o.Server, o.Token)
	}
	if strings.Join(o.NodeLabels, ",") != "a=1,b=2,c=3" || strings.Join(o.NodeTaints, ",") != "dedicated=logs:NoSchedule" ||
		o.NodeIP != "10.0.0.2" || o.NodeName != "Worker-1" || strings.Join(o.KubeletArgs, ",") != "max-pods=50" || o.DataDir != "/var/lib/rancher/k3s" {
		t.Errorf("options = %+v", o)
	}
}

func TestLoadAgentEnvAndTokenFile(t *testing.T) {
	rf, rd := fsReaders(map[string]string{"/etc/tok": "abcdef.0123456789abcdef\n"})
	env := map[string]string{"K3S_URL": "https://srv:6443", "K3S_TOKEN_FILE": "/etc/tok", "K3S_NODE_NAME": "n2"}
	a, _ := ParseAgentArgs(nil)
	o, err := LoadAgent(a, rf, rd, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.Server.Host != "srv:6443" || o.Token.Bearer() != "abcdef.0123456789abcdef" || o.NodeName != "n2" {
		t.Errorf("options = %+v", o)
	}
	// A flag wins over the environment.
	a, _ = ParseAgentArgs([]string{"--server=https://other:6443", "--token=x"})
	if o, err = LoadAgent(a, rf, rd, func(k string) string { return env[k] }); err != nil || o.Server.Host != "other:6443" || o.Token.Password != "x" {
		t.Errorf("flags over env: %+v %v", o, err)
	}
}

func TestLoadAgentRefuses(t *testing.T) {
	for name, args := range map[string][]string{
		"no server":       {"--token=x"},
		"no token":        {"--server=https://a:6443"},
		"http server":     {"--server=http://a:6443", "--token=x"},
		"bad token hash":  {"--server=https://a:6443", "--token=K10abc::node:x"},
		"bad label":       {"--server=https://a:6443", "--token=x", "--node-label==v"},
		"bad taint":       {"--server=https://a:6443", "--token=x", "--node-taint=k=v"},
		"loopback nodeip": {"--server=https://a:6443", "--token=x", "--node-ip=127.0.0.1"},
	} {
		rf, rd := fsReaders(nil)
		a, err := ParseAgentArgs(args)
		if err == nil {
			_, err = LoadAgent(a, rf, rd, noEnv)
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEnsureNodePasswordFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "etc", "rancher", "node", "password")
	first, err := EnsureNodePasswordFile(p)
	if err != nil || len(first) != 32 {
		t.Fatalf("first = %q, %v", first, err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode: %v %v", st, err)
	}
	again, err := EnsureNodePasswordFile(p)
	if err != nil || again != first {
		t.Errorf("second start = %q, %v; want the same password", again, err)
	}
}

func TestLoadBalancerFailsOverAndKeepsState(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "live")
			c.Close()
		}
	}()
	state := filepath.Join(t.TempDir(), "k3s-agent-load-balancer.json")
	lb, err := NewLoadBalancer("127.0.0.1:0", "https://"+deadAddr, deadAddr, state, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if err := lb.Update([]string{live.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", lb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "live" {
		t.Errorf("through the load balancer: %q, want the live server's answer", b)
	}
	raw, err := os.ReadFile(state)
	if err != nil || !strings.Contains(string(raw), live.Addr().String()) || !strings.Contains(string(raw), `"ServerURL"`) {
		t.Errorf("state file = %s, %v", raw, err)
	}
}
