package launcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/cluster"
)

// serverEtcd is a running embedded-etcd datastore.
type serverEtcd struct {
	name, nodeIP string
	certs        etcdCerts
	local        *etcdGateway
}

// apiserverArgs are the API server's datastore flags (K3s: the local
// member only).
func (e *serverEtcd) apiserverArgs() []string {
	return []string{"--etcd-servers=" + etcdLocal, "--etcd-cafile=" + e.certs.ca,
		"--etcd-certfile=" + e.certs.client.CertFile, "--etcd-keyfile=" + e.certs.client.KeyFile}
}

// dbInfo is K3s's infoHandler: the member list, or this member alone when
// the list cannot be had.
func (e *serverEtcd) dbInfo(ctx context.Context) EtcdMembers {
	ms, err := e.local.members(ctx)
	if err != nil {
		return EtcdMembers{Members: []EtcdMember{{Name: e.name, PeerURLs: []string{peerURL(e.nodeIP)}, ClientURLs: []string{clientURL(e.nodeIP)}}}}
	}
	return EtcdMembers{Members: ms}
}

// startEtcd starts embedded etcd as K3s's ETCD.Start does: an initialised
// member restarts with its data; a server with a server URL joins that
// server's cluster (it is added as a learner, the leader promotes it);
// otherwise a new one-member cluster starts, migrating the SQLite
// datastore into it when there is one. It returns once the local member
// is a voting member (K3s's Test) and the bootstrap token matches.
func (s *Server) startEtcd(ctx context.Context, kids *children, lw lineWriter, bins map[string]string, p *pki,
	nodeIP, pass string, joinCA []byte,
) (*serverEtcd, error) {
	c := s.Config
	l := Layout{Data: c.DataDir}
	initialized := l.EtcdInitialized()
	certs, err := issueEtcdCerts(p, nodeIP)
	if err != nil {
		return nil, err
	}
	name, err := etcdMemberName(l, c.NodeName)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(l.EtcdDir(), 0o700); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", l.EtcdDir(), err)
	}
	local, err := newEtcdGateway([]string{etcdLocal}, p.ca.CertPEM, certs.client)
	if err != nil {
		return nil, err
	}
	e := &serverEtcd{name: name, nodeIP: nodeIP, certs: certs, local: local}
	initial, state := name+"="+peerURL(nodeIP), "new"
	var extra []string
	var migrating *child
	switch {
	case initialized:
		s.logf("etcd: starting member %s with its data", name)
	case c.JoinURL != nil:
		if initial, err = s.joinEtcd(ctx, name, nodeIP, p, certs, joinCA); err != nil {
			return nil, fmt.Errorf("ETCD join failed: %w", err)
		}
		state = "existing"
	case exists(l.DBFile()):
		s.logf("etcd: migrating content from sqlite to etcd")
		if migrating, err = startChild(lw, "kine", bins["kine"], []string{"--listen-address=" + migrationKineAddr,
			"--metrics-bind-address=0", "--endpoint=sqlite://" + l.DBFile() + "?_journal=WAL&cache=shared&_busy_timeout=30000"},
			l.path("server")); err != nil {
			return nil, err
		}
		defer migrating.stop(10 * time.Second)
		if err := s.waitFor(ctx, kids, "kine (migration)", func(ctx context.Context) error { return dial(ctx, "tcp", migrationKineAddr) }); err != nil {
			return nil, err
		}
		extra = []string{"--migrate-from=http://" + migrationKineAddr, "--migrate-file=" + l.DBFile()}
	default:
		s.logf("etcd: new cluster, member %s", name)
	}
	ch, err := startChild(lw, "etcd", bins["etcd"], append(etcdArgs(l, name, nodeIP, certs, initial, state), extra...), l.path("server"))
	if err != nil {
		return nil, err
	}
	kids.add(ch)
	if err := s.waitFor(ctx, kids, "etcd voting member", func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		learner, err := local.isLearner(rctx)
		if err != nil {
			return err
		}
		if learner {
			return errors.New("this server has not yet been promoted from learner to voting member")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if migrating != nil {
		if err := s.waitFor(ctx, kids, "sqlite migration", func(context.Context) error {
			if exists(l.DBFile() + ".migrated") {
				return nil
			}
			return errors.New("not migrated yet")
		}); err != nil {
			return nil, err
		}
		s.logf("etcd: sqlite datastore migrated (%s.migrated)", l.DBFile())
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := checkEtcdBootstrap(bctx, local, pass); err != nil {
		return nil, err
	}
	return e, nil
}

// joinEtcd adds this member to the cluster of the server joined (K3s's
// join) and returns the initial cluster to start with.
func (s *Server) joinEtcd(ctx context.Context, name, nodeIP string, p *pki, certs etcdCerts, ca []byte) (string, error) {
	c := s.Config
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if ca == nil {
		ca = p.ca.CertPEM
	}
	listed, err := fetchDBInfo(ctx, c.JoinURL.String(), c.JoinToken, ca)
	if err != nil {
		return "", err
	}
	urls := clientURLsOf(listed, nodeIP)
	if len(urls) == 0 {
		return "", fmt.Errorf("%s reports no etcd member to join", c.JoinURL)
	}
	remote, err := newEtcdGateway(urls, p.ca.CertPEM, certs.client)
	if err != nil {
		return "", err
	}
	members, err := remote.members(ctx)
	add := true
	if err != nil {
		s.logf("etcd: failed to get member list from etcd cluster, will assume this member is already added: %s", err)
		members = append(listed, EtcdMember{Name: name, PeerURLs: []string{peerURL(nodeIP)}})
		add = false
	}
	initial, needAdd, err := joinPlan(members, name, c.NodeName, nodeIP)
	if err != nil {
		if rmErr := os.Remove(Layout{Data: c.DataDir}.EtcdDir() + "/name"); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			s.logf("etcd: remove the member name file: %s", rmErr)
		}
		return "", err
	}
	if add && needAdd {
		s.logf("etcd: adding member %s=%s to etcd cluster %s", name, peerURL(nodeIP), initial)
		if err := remote.addLearner(ctx, peerURL(nodeIP)); err != nil {
			return "", err
		}
	}
	s.logf("etcd: starting etcd for cluster %s", initial)
	return initial, nil
}

// apiServerPeers is the server addresses the kubernetes Service keeps with
// embedded etcd: this server's, and those of the others that still answer
// on the supervisor port (kube-apiserver's lease reconciler, which K3s
// runs, drops a server whose lease expired: 15 s).
func apiServerPeers(ctx context.Context, cs kubernetes.Interface, self string, port int,
	alive func(ctx context.Context, addr string) bool,
) []string {
	out := []string{self}
	for _, hp := range apiServerAddresses(ctx, cs) {
		host, _, err := net.SplitHostPort(hp)
		if err != nil || host == self || slices.Contains(out, host) {
			continue
		}
		if alive(ctx, net.JoinHostPort(host, strconv.Itoa(port))) {
			out = append(out, host)
		}
	}
	slices.Sort(out)
	return out
}

// answers tells whether addr accepts a TCP connection within 2 s.
func answers(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return dial(ctx, "tcp", addr) == nil
}

// etcdPath is the etcd binary scripts/test-deps builds from
// test/k3slauncher/etcd.
func etcdPath(dir string) (string, error) {
	p := filepath.Join(dir, "etcd-"+EtcdVersion)
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode().Perm()&0o100 == 0 {
		return "", fmt.Errorf("etcd %s not found at %s (build test/k3slauncher/etcd there): %w", EtcdVersion, p, cluster.ErrMissingBinaries)
	}
	return p, nil
}

// Labels and annotations K3s's etcd metadata controller puts on a server
// node with embedded etcd (K3s: pkg/etcd/metadata_controller.go).
const (
	EtcdRoleLabel         = "node-role.kubernetes.io/etcd"
	ControlPlaneRoleLabel = "node-role.kubernetes.io/control-plane"
	MasterRoleLabel       = "node-role.kubernetes.io/master"
	EtcdNodeNameAnno      = "etcd.k3s.cattle.io/node-name"
	EtcdNodeAddressAnno   = "etcd.k3s.cattle.io/node-address"
)

// EtcdNodeMetadata labels this server's Node as an etcd member, as K3s's
// metadata controller does once the member votes.
func EtcdNodeMetadata(ctx context.Context, cs kubernetes.Interface, node, member, address string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", node, err)
	}
	want := map[string]string{EtcdRoleLabel: "true", ControlPlaneRoleLabel: "true", MasterRoleLabel: "true"}
	anno := map[string]string{EtcdNodeNameAnno: member, EtcdNodeAddressAnno: address}
	changed := false
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	for k, v := range want {
		if n.Labels[k] != v {
			n.Labels[k], changed = v, true
		}
	}
	for k, v := range anno {
		if n.Annotations[k] != v {
			n.Annotations[k], changed = v, true
		}
	}
	if !changed {
		return nil
	}
	if _, err := cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("label node %s: %w", node, err)
	}
	return nil
}

// podNetwork writes the bridge network over the podCIDR the controller
// manager gave this node: with several servers each has its own (the
// first server's is the cluster CIDR's first subnet, as on a lone server).
func (s *Server) podNetwork(cs kubernetes.Interface) func(context.Context) error {
	l := Layout{Data: s.Config.DataDir}
	return func(ctx context.Context) error {
		n, err := cs.CoreV1().Nodes().Get(ctx, s.Config.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s: %w", s.Config.NodeName, err)
		}
		if n.Spec.PodCIDR == "" {
			return errors.New("no podCIDR yet")
		}
		want := []byte(cniConfigFor(n.Spec.PodCIDR))
		if cur, err := os.ReadFile(filepath.Join(l.CNIConfDir(), "10-flannel.conflist")); err == nil && string(cur) == string(want) {
			return nil
		}
		s.logf("pod network %s", n.Spec.PodCIDR)
		return writeFileAtomic(filepath.Join(l.CNIConfDir(), "10-flannel.conflist"), want, 0o644)
	}
}
