package launcher

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tpctl/tpctl/test/cluster"
)

func TestAgentAndNodeTokenFiles(t *testing.T) {
	l := Layout{Data: t.TempDir()}
	ca, err := cluster.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pass, err := ensureToken(l, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAgentToken(l, ca.CertPEM, pass); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(l.AgentTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(strings.TrimSpace(string(raw)))
	if err != nil || tok.Username != "node" || tok.Password != pass || tok.ValidateCA(ca.CertPEM) != nil {
		t.Errorf("agent-token = %q (%+v, %v), want K10<CA hash>::node:<the server passphrase>", raw, tok, err)
	}
	if st, err := os.Stat(l.AgentTokenFile()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("agent-token mode: %v %v", st, err)
	}
	if dst, err := os.Readlink(l.NodeTokenFile()); err != nil || dst != l.TokenFile() {
		t.Errorf("node-token links to %q (%v), want %s", dst, err, l.TokenFile())
	}
	// A second start keeps them.
	if err := writeAgentToken(l, ca.CertPEM, pass); err != nil {
		t.Errorf("second start: %v", err)
	}
}

func TestAPIServerBehindSupervisor(t *testing.T) {
	c, err := Build(map[string][]string{"node-name": {"n"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Config: c}
	p := &pki{dir: t.TempDir(), ca: &cluster.CA{CertFile: filepath.Join(t.TempDir(), "ca.crt")}}
	args := s.apiserverArgs(p, &credentials{}, "192.0.2.1", []string{"--etcd-servers=http://" + kineAddr})
	for _, want := range []string{"--bind-address=127.0.0.1", "--secure-port=6444", "--advertise-address=192.0.2.1",
		"--endpoint-reconciler-type=none", "--enable-bootstrap-token-auth=true", "--requestheader-allowed-names=system:auth-proxy"} {
		if !slices.Contains(args, want) {
			t.Errorf("kube-apiserver lacks %s: %v", want, args)
		}
	}
	if !slices.Contains(s.controllerManagerArgs(p, &credentials{}), "--controllers=*,tokencleaner") {
		t.Error("the controller manager does not run the bootstrap token cleaner")
	}
}
