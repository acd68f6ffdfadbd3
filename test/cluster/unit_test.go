package cluster

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
)

func TestParseVersions(t *testing.T) {
	v, err := ParseVersions("# c\nK8S_VERSION=v1.2.3\n\nKINE_VERSION=v0.1.0\nCOREDNS_VERSION=v1.0.0\nCONTAINERD_VERSION=v2.0.0\nOTHER=x\n")
	require.NoError(t, err)
	assert.Equal(t, Versions{Kubernetes: "v1.2.3", Kine: "v0.1.0", CoreDNS: "v1.0.0", Containerd: "v2.0.0"}, v)
	_, err = ParseVersions("K8S_VERSION=v1.2.3\nKINE_VERSION=v0.1.0\nCOREDNS_VERSION=v1.0.0\n")
	assert.ErrorContains(t, err, "CONTAINERD_VERSION are required")

	_, err = ParseVersions("K8S_VERSION=v1\n")
	assert.ErrorContains(t, err, "required")
	_, err = ParseVersions("garbage\n")
	assert.ErrorContains(t, err, "line 1")
}

func TestPinnedVersionsMatchTestDeps(t *testing.T) {
	v := PinnedVersions()
	assert.Regexp(t, `^v1\.\d+\.\d+$`, v.Kubernetes)
	assert.Regexp(t, `^v\d+\.\d+\.\d+$`, v.Kine)
	assert.Regexp(t, `^v\d+\.\d+\.\d+$`, v.CoreDNS)
	assert.Regexp(t, `^v2\.\d+\.\d+$`, v.Containerd, "containerd 2")
}

func FuzzParseVersions(f *testing.F) {
	f.Add(versionsEnv)
	f.Add("K8S_VERSION=\n")
	f.Add("=x\n#\n")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersions(s)
		if err == nil {
			require.NotEmpty(t, v.Kubernetes)
			require.NotEmpty(t, v.Kine)
			require.NotEmpty(t, v.CoreDNS)
			require.NotEmpty(t, v.Containerd)
		}
	})
}

func TestBinariesPath(t *testing.T) {
	dir := t.TempDir()
	b := Binaries{Dir: dir, Versions: Versions{Kubernetes: "v1.36.3", Kine: "v0.17.5", CoreDNS: "v1.15.0", Containerd: "v2.4.2"}}
	_, err := b.Path("kubelet")
	require.ErrorIs(t, err, ErrMissingBinaries)
	assert.Contains(t, err.Error(), "run scripts/test-deps")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "kubelet-v1.36.3"), []byte("x"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kine-v0.17.5"), []byte("x"), 0o644))
	p, err := b.Path("kubelet")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "kubelet-v1.36.3"), p)
	_, err = b.Path("kine")
	assert.ErrorIs(t, err, ErrMissingBinaries, "not executable")
	_, err = b.Require("kubelet", "coredns")
	assert.ErrorContains(t, err, "coredns v1.15.0")
	_, err = b.Path("containerd-shim-runc-v2")
	assert.ErrorContains(t, err, "containerd-shim-runc-v2 v2.4.2 not found at "+filepath.Join(dir, "containerd-shim-runc-v2-v2.4.2"))
}

func TestFindBinariesFromModuleRoot(t *testing.T) {
	t.Setenv("TPCTL_TEST_BIN", "")
	b, err := FindBinaries()
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	// test/cluster → module root is two levels up.
	assert.Equal(t, filepath.Join(filepath.Dir(filepath.Dir(wd)), ".cache", "bin"), b.Dir)

	t.Setenv("TPCTL_TEST_BIN", "/opt/bins")
	b, err = FindBinaries()
	require.NoError(t, err)
	assert.Equal(t, "/opt/bins", b.Dir)
}

func TestPKIChains(t *testing.T) {
	dir := t.TempDir()
	p, err := newAPIServerPKI(dir, []net.IP{net.ParseIP("10.99.0.1")})
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(p.ca.CertPEM))

	serving := parseCert(t, p.serving.CertPEM)
	_, err = serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "kubernetes.default.svc"})
	require.NoError(t, err)
	assert.NoError(t, serving.VerifyHostname("10.96.0.1"))
	assert.NoError(t, serving.VerifyHostname("10.99.0.1"))

	admin := parseCert(t, p.adminKP.CertPEM)
	_, err = admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	assert.Equal(t, []string{"system:masters"}, admin.Subject.Organization)
	_, err = admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.Error(t, err, "client certificate must not serve")

	for _, f := range []string{p.adminKP.KeyFile, p.serving.KeyFile, p.saKey} {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(data)
	require.NotNil(t, blk)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c
}

func TestKubeconfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p, err := newAPIServerPKI(dir, nil)
	require.NoError(t, err)
	cred := p.admin("127.0.0.1:1234")
	path := filepath.Join(dir, "k")
	require.NoError(t, cred.writeKubeconfig(path, "admin"))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:1234", cfg.Host)
	assert.Equal(t, cred.restConfig().TLSClientConfig.CertData, cfg.TLSClientConfig.CertData)
	assert.Equal(t, p.ca.CertPEM, cfg.TLSClientConfig.CAData)
}

func TestHostLockSerialises(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	ctx := context.Background()
	a, err := AcquireHostLock(ctx, path)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = AcquireHostLock(short, path)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan error, 1)
	go func() {
		b, err := AcquireHostLock(ctx, path)
		if err == nil {
			err = b.Release()
		}
		got <- err
	}()
	require.NoError(t, a.Release())
	select {
	case err := <-got:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("second holder never got the lock")
	}
	assert.NoError(t, a.Release(), "release twice is harmless")
}

func TestIPTablesCleanupScript(t *testing.T) {
	save := `# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:CNI-abc123 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -j DOCKER
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 10.244.0.2/32 -m comment --comment "name: \"tpctl-test\" id: \"x\"" -j CNI-abc123
-A KUBE-SERVICES -j KUBE-POSTROUTING
-A CNI-abc123 -d 10.244.0.0/24 -j ACCEPT
COMMIT
`
	want := `*nat
-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-D POSTROUTING -s 10.244.0.2/32 -m comment --comment "name: \"tpctl-test\" id: \"x\"" -j CNI-abc123
-F KUBE-SERVICES
-F KUBE-POSTROUTING
-F CNI-abc123
-X KUBE-SERVICES
-X KUBE-POSTROUTING
-X CNI-abc123
COMMIT
`
	assert.Equal(t, want, iptablesCleanupScript("nat", save))
	assert.Empty(t, iptablesCleanupScript("filter", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DOCKER\nCOMMIT\n"))
}

func TestHostSnapshotDiff(t *testing.T) {
	a := HostSnapshot{Links: []string{"lo", "eth0"}, Sysctls: map[string]string{"net/ipv4/ip_forward": "0"}, Mounts: []string{"/", "/proc"}}
	assert.Empty(t, a.Diff(a))
	b := HostSnapshot{Links: []string{"lo", "eth0", "tpctltest0"}, Sysctls: map[string]string{"net/ipv4/ip_forward": "1"}, Mounts: []string{"/"}}
	assert.Equal(t, []string{
		"+ interface: tpctltest0",
		"- mount: /proc",
		`~ sysctl net/ipv4/ip_forward: "0" → "1"`,
	}, a.Diff(b))
}

// Ports the harness hands to components must not come from the kernel's
// ephemeral range, where any outgoing connection can take them between the
// pick and the component's bind.
func TestFreePortsAvoidTheEphemeralRange(t *testing.T) {
	floor := ephemeralFloor()
	ports, err := freePorts("127.0.0.1", 16)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		require.Falsef(t, seen[p], "port %d returned twice", p)
		seen[p] = true
		require.Lessf(t, p, floor, "port %d is in the ephemeral range (from %d)", p, floor)
		require.Lessf(t, p, 30000, "port %d is in the NodePort range", p)
		require.GreaterOrEqual(t, p, portFloor)
	}
}
