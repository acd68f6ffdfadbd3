//go:build integration

package launcher

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildEtcd builds test/k3slauncher/etcd (its own module) for the test.
func buildEtcd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "etcd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "etcd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build etcd: %s", out)
	return bin
}

// startMember runs one member; its client URL is the node address only
// (the test's members share the host's 127.0.0.1).
func startMember(t *testing.T, bin string, l Layout, name, ip string, certs etcdCerts, initial, state string) {
	t.Helper()
	var args []string
	for _, a := range etcdArgs(l, name, ip, certs, initial, state) {
		if strings.HasPrefix(a, "--listen-client-urls=") {
			a = "--listen-client-urls=" + clientURL(ip)
		}
		args = append(args, a)
	}
	cmd := exec.Command(bin, args...)
	log, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s log:\n%s", name, b)
		}
	})
}

func waitVoting(t *testing.T, g *etcdGateway) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		learner, err := g.isLearner(ctx)
		cancel()
		if err == nil && !learner {
			return
		}
		last = err
	}
	t.Fatalf("member at %v never became a voting member: %v", g.endpoints, last)
}

// A one-member cluster, then a second server joins it the way the
// launcher does: /db/info's client URLs, member list, add as learner,
// start with the initial cluster, promoted by the leader.
func TestEtcdJoinThroughGateway(t *testing.T) {
	bin := buildEtcd(t)
	p, err := loadOrCreatePKI(t.TempDir())
	require.NoError(t, err)
	certsFor := func(ip string) etcdCerts {
		q := &pki{dir: t.TempDir(), ca: p.ca}
		c, err := issueEtcdCerts(q, ip)
		require.NoError(t, err)
		c.ca = p.ca.CertFile
		return c
	}
	ctx := context.Background()
	la, lb := Layout{Data: t.TempDir()}, Layout{Data: t.TempDir()}
	ca, cb := certsFor("127.0.0.2"), certsFor("127.0.0.3")

	begin := time.Now()
	startMember(t, bin, la, "host-a-aaaaaaaa", "127.0.0.2", ca, "host-a-aaaaaaaa="+peerURL("127.0.0.2"), "new")
	ga, err := newEtcdGateway([]string{clientURL("127.0.0.2")}, p.ca.CertPEM, ca.client)
	require.NoError(t, err)
	waitVoting(t, ga)
	t.Logf("FIGURE etcd_first_member_ready=%s", time.Since(begin).Round(time.Millisecond))
	assert.True(t, la.EtcdInitialized(), "the WAL is where K3s looks for it")

	require.NoError(t, checkEtcdBootstrap(ctx, ga, "pass"))
	require.NoError(t, checkEtcdBootstrap(ctx, ga, "pass"))
	assert.ErrorContains(t, checkEtcdBootstrap(ctx, ga, "other"), "encrypted with different token")

	// The second server, as joinEtcd.
	listed, err := ga.members(ctx)
	require.NoError(t, err)
	require.Len(t, listed, 1)
	urls := clientURLsOf(listed, "127.0.0.3")
	assert.Equal(t, []string{clientURL("127.0.0.2")}, urls)
	remote, err := newEtcdGateway(urls, p.ca.CertPEM, cb.client)
	require.NoError(t, err)
	members, err := remote.members(ctx)
	require.NoError(t, err)
	initial, add, err := joinPlan(members, "host-b-bbbbbbbb", "host-b", "127.0.0.3")
	require.NoError(t, err)
	require.True(t, add)
	begin = time.Now()
	require.NoError(t, remote.addLearner(ctx, peerURL("127.0.0.3")))
	// Asked again (a restart before the member started): already there.
	members, err = remote.members(ctx)
	require.NoError(t, err)
	_, add, err = joinPlan(members, "host-b-bbbbbbbb", "host-b", "127.0.0.3")
	require.NoError(t, err)
	assert.False(t, add)

	startMember(t, bin, lb, "host-b-bbbbbbbb", "127.0.0.3", cb, initial, "existing")
	gb, err := newEtcdGateway([]string{clientURL("127.0.0.3")}, p.ca.CertPEM, cb.client)
	require.NoError(t, err)
	waitVoting(t, gb)
	t.Logf("FIGURE etcd_join_to_voting=%s", time.Since(begin).Round(time.Millisecond))

	members, err = ga.members(ctx)
	require.NoError(t, err)
	require.Len(t, members, 2)
	for _, m := range members {
		assert.False(t, m.IsLearner, m.Name)
	}
	require.NoError(t, ga.put(ctx, "/registry/x", []byte("v")))
	v, ok, err := gb.get(ctx, "/registry/x")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "v", string(v))
	// The joined member carries the same bootstrap token check.
	assert.ErrorContains(t, checkEtcdBootstrap(ctx, gb, "other"), "encrypted with different token")
	require.NoError(t, checkEtcdBootstrap(ctx, gb, "pass"))

	// A client certificate of another CA is refused.
	other, err := loadOrCreatePKI(t.TempDir())
	require.NoError(t, err)
	oc, err := issueEtcdCerts(other, "127.0.0.9")
	require.NoError(t, err)
	stranger, err := newEtcdGateway([]string{clientURL("127.0.0.2")}, p.ca.CertPEM, oc.client)
	require.NoError(t, err)
	_, err = stranger.members(ctx)
	assert.Error(t, err)
}
