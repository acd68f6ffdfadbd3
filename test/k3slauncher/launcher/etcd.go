package launcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tpctl/tpctl/test/cluster"
)

// Embedded etcd, as K3s's pkg/etcd: the datastore of a server started with
// cluster-init, of a server joining another (server + token), and of any
// server whose <data-dir>/server/db/etcd holds a WAL already. etcd runs as
// the child "etcd" (test/k3slauncher/etcd, go.etcd.io/etcd/server/v3/embed),
// listening for clients on https://<node-ip>:2379 and https://127.0.0.1:2379
// and for peers on https://<node-ip>:2380, every connection with a client
// certificate of the cluster CA (K3s has separate etcd server and peer CAs;
// the stand-in has its one CA). The launcher talks to etcd through etcd's
// JSON gateway on the client port (/v3/cluster/member/list, …), the calls
// K3s makes with its etcd client.

// EtcdVersion is the etcd release of test/k3slauncher/etcd (its go.mod; a
// test keeps the two equal). scripts/test-deps builds it as
// etcd-<EtcdVersion> into the component directory.
const EtcdVersion = "v3.6.8"

const (
	etcdClientPort = 2379
	etcdPeerPort   = 2380
	etcdLocal      = "https://127.0.0.1:2379"
	// migrationKineAddr is where kine serves the SQLite datastore while
	// it is copied into a new etcd cluster (K3s: a unix socket).
	migrationKineAddr = "127.0.0.1:2399"
	// bootstrapKey holds the digest of the token passphrase in etcd, as
	// checkBootstrap's table does in SQLite.
	bootstrapKey = "/bootstrap/launcher-token-sha256"
)

// EtcdDir is K3s's DBDir: <data-dir>/server/db/etcd.
func (l Layout) EtcdDir() string { return l.path("server", "db", "etcd") }

// EtcdInitialized is K3s's IsInitialized: the member's WAL directory exists.
func (l Layout) EtcdInitialized() bool {
	st, err := os.Stat(filepath.Join(l.EtcdDir(), "member", "wal"))
	return err == nil && st.IsDir()
}

// EtcdMode tells whether the server's datastore is embedded etcd.
func EtcdMode(c Config) bool {
	return c.ClusterInit || c.JoinURL != nil || Layout{Data: c.DataDir}.EtcdInitialized()
}

// etcdMemberName is K3s's setName: <node-name>-<8 hex digits>, kept in
// <data-dir>/server/db/etcd/name.
func etcdMemberName(l Layout, nodeName string) (string, error) {
	f := filepath.Join(l.EtcdDir(), "name")
	b, err := os.ReadFile(f)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", f, err)
	}
	raw := make([]byte, 4)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make an etcd member name: %w", err)
	}
	name := nodeName + "-" + hex.EncodeToString(raw)
	if err := os.MkdirAll(l.EtcdDir(), 0o700); err != nil {
		return "", fmt.Errorf("make %s: %w", l.EtcdDir(), err)
	}
	return name, writeFileAtomic(f, []byte(name), 0o600)
}

// etcdNodeName is the node name of a member name (K3s: the name before the
// last hyphen).
func etcdNodeName(member string) string {
	if i := strings.LastIndex(member, "-"); i > 1 {
		return member[:i]
	}
	return member
}

func peerURL(ip string) string { return "https://" + net.JoinHostPort(ip, strconv.Itoa(etcdPeerPort)) }
func clientURL(ip string) string {
	return "https://" + net.JoinHostPort(ip, strconv.Itoa(etcdClientPort))
}

// EtcdMember is K3s's /db/info member (etcdserverpb.Member's JSON).
type EtcdMember struct {
	ID         uint64   `json:"ID,omitempty"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// UnmarshalJSON takes the ID as a number (K3s's /db/info) or a string
// (etcd's JSON gateway).
func (m *EtcdMember) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID         json.RawMessage `json:"ID"`
		Name       string          `json:"name"`
		PeerURLs   []string        `json:"peerURLs"`
		ClientURLs []string        `json:"clientURLs"`
		IsLearner  bool            `json:"isLearner"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("etcd member: %w", err)
	}
	id, err := uint64Of(raw.ID)
	if err != nil {
		return fmt.Errorf("etcd member ID: %w", err)
	}
	*m = EtcdMember{ID: id, Name: raw.Name, PeerURLs: raw.PeerURLs, ClientURLs: raw.ClientURLs, IsLearner: raw.IsLearner}
	return nil
}

func uint64Of(raw json.RawMessage) (uint64, error) {
	s := strings.Trim(string(raw), `"`)
	if s == "" || s == "null" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64) //nolint:wrapcheck // wrapped by the callers
}

// EtcdMembers is K3s's /db/info answer.
type EtcdMembers struct {
	Members []EtcdMember `json:"members"`
}

// etcdCerts are the etcd certificates of this start, issued by the
// cluster CA: the client-facing serving certificate, the peer certificate
// (server and client) and the client certificate of the API server and the
// launcher.
type etcdCerts struct {
	ca                   string
	server, peer, client cluster.KeyPair
}

func issueEtcdCerts(p *pki, nodeIP string) (etcdCerts, error) {
	ec := etcdCerts{ca: p.ca.CertFile}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(nodeIP)}
	var err error
	if ec.server, err = p.issue("etcd-server", cluster.CertSpec{CommonName: "etcd-server", Server: true, Client: true,
		IPs: ips, DNSNames: []string{"localhost"}}); err != nil {
		return ec, err
	}
	if ec.peer, err = p.issue("etcd-peer", cluster.CertSpec{CommonName: "etcd-peer", Server: true, Client: true,
		IPs: ips, DNSNames: []string{"localhost"}}); err != nil {
		return ec, err
	}
	if ec.client, err = p.issue("etcd-client", cluster.CertSpec{CommonName: "etcd-client", Client: true}); err != nil {
		return ec, err
	}
	return ec, nil
}

// etcdArgs are the etcd child's flags (K3s's executor.ETCDConfig).
func etcdArgs(l Layout, name, nodeIP string, ec etcdCerts, initialCluster, state string) []string {
	return []string{
		"--name=" + name,
		"--data-dir=" + l.EtcdDir(),
		"--listen-client-urls=" + clientURL(nodeIP) + "," + etcdLocal,
		"--advertise-client-urls=" + clientURL(nodeIP),
		"--listen-peer-urls=" + peerURL(nodeIP),
		"--initial-advertise-peer-urls=" + peerURL(nodeIP),
		"--initial-cluster=" + initialCluster,
		"--initial-cluster-state=" + state,
		"--cert-file=" + ec.server.CertFile, "--key-file=" + ec.server.KeyFile, "--trusted-ca-file=" + ec.ca,
		"--peer-cert-file=" + ec.peer.CertFile, "--peer-key-file=" + ec.peer.KeyFile, "--peer-trusted-ca-file=" + ec.ca,
		// K3s's manageLearners runs every manageTickerTime (15 s,
		// pkg/etcd/etcd.go): a learner waits as long here.
		"--promote-learners-every=15s",
	}
}

// etcdGateway calls etcd's JSON gateway with the client certificate.
type etcdGateway struct {
	endpoints []string
	http      *http.Client
}

func newEtcdGateway(endpoints []string, caPEM []byte, client cluster.KeyPair) (*etcdGateway, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("etcd client: no CA certificate")
	}
	cert, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	return &etcdGateway{endpoints: endpoints, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}}, nil
}

// post sends in to path on the first endpoint that answers.
func (g *etcdGateway) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	var errs []error
	for _, ep := range g.endpoints {
		b, err := httpDo(ctx, g.http, http.MethodPost, strings.TrimRight(ep, "/")+path, http.Header{"Content-Type": {"application/json"}}, body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("etcd %s: %w", path, errors.Join(errs...))
}

func (g *etcdGateway) members(ctx context.Context) ([]EtcdMember, error) {
	var out EtcdMembers
	if err := g.post(ctx, "/v3/cluster/member/list", map[string]any{"linearizable": true}, &out); err != nil {
		return nil, err
	}
	return out.Members, nil
}

func (g *etcdGateway) addLearner(ctx context.Context, peer string) error {
	return g.post(ctx, "/v3/cluster/member/add", map[string]any{"peerURLs": []string{peer}, "isLearner": true}, nil)
}

// status is the member's own status: whether it is still a learner.
func (g *etcdGateway) isLearner(ctx context.Context) (bool, error) {
	var out struct {
		IsLearner bool `json:"isLearner"`
	}
	if err := g.post(ctx, "/v3/maintenance/status", map[string]any{}, &out); err != nil {
		return false, err
	}
	return out.IsLearner, nil
}

func (g *etcdGateway) get(ctx context.Context, key string) ([]byte, bool, error) {
	var out struct {
		Kvs []struct {
			Value []byte `json:"value"`
		} `json:"kvs"`
	}
	if err := g.post(ctx, "/v3/kv/range", map[string]any{"key": []byte(key)}, &out); err != nil {
		return nil, false, err
	}
	if len(out.Kvs) == 0 {
		return nil, false, nil
	}
	return out.Kvs[0].Value, true, nil
}

func (g *etcdGateway) put(ctx context.Context, key string, value []byte) error {
	return g.post(ctx, "/v3/kv/put", map[string]any{"key": []byte(key), "value": value}, nil)
}

// checkEtcdBootstrap is checkBootstrap for etcd: the first server records
// the token digest, every later start (and every joining server) must
// carry the same token.
func checkEtcdBootstrap(ctx context.Context, g *etcdGateway, passphrase string) error {
	sum := sha256.Sum256([]byte(passphrase))
	want := hex.EncodeToString(sum[:])
	got, ok, err := g.get(ctx, bootstrapKey)
	switch {
	case err != nil:
		return err
	case !ok:
		return g.put(ctx, bootstrapKey, []byte(want))
	case string(got) != want:
		return errors.New("bootstrap data already found and encrypted with different token")
	}
	return nil
}

// joinPlan is K3s's join: given the members the server reports, the
// initial cluster to start with and whether this member must be added.
// A member of another name on the same node name is refused (K3s:
// "duplicate node name found").
func joinPlan(members []EtcdMember, self, nodeName, selfIP string) (initial string, add bool, err error) {
	add = true
	var cluster []string
	for _, m := range members {
		for _, p := range m.PeerURLs {
			u, perr := url.Parse(p)
			if perr != nil {
				return "", false, fmt.Errorf("member %s peer URL %q: %w", m.Name, p, perr)
			}
			if m.Name == "" && u.Hostname() == selfIP {
				m.Name = self
			}
			if m.Name == self && u.Hostname() == selfIP {
				add = false
			}
		}
		if len(m.PeerURLs) > 0 {
			cluster = append(cluster, m.Name+"="+m.PeerURLs[0])
		}
		if m.Name != self && etcdNodeName(m.Name) == nodeName {
			return "", false, errors.New("duplicate node name found, please use a unique name for this node")
		}
	}
	if add {
		cluster = append(cluster, self+"="+peerURL(selfIP))
	}
	return strings.Join(cluster, ","), add, nil
}

// clientURLsOf is K3s's ClientURLs: the client URLs of the voting members
// other than this node.
func clientURLsOf(members []EtcdMember, selfIP string) []string {
	var out []string
members:
	for _, m := range members {
		if m.IsLearner {
			continue
		}
		for _, c := range m.ClientURLs {
			if u, err := url.Parse(c); err == nil && u.Hostname() == selfIP {
				continue members
			}
		}
		out = append(out, m.ClientURLs...)
	}
	return out
}

// BootstrapFile is one file of K3s's server bootstrap data.
type BootstrapFile struct {
	Timestamp time.Time
	Content   []byte
}

// bootstrapFiles are the bootstrap keys the stand-in serves, with their
// files in server/tls: K3s's ServerCA, ServerCAKey and ServiceKey, and the
// service-account public key (K3s derives it; the stand-in keeps it as a
// file and sends it as ServiceKeyPub).
func bootstrapFiles() map[string]string {
	return map[string]string{"ServerCA": "ca.crt", "ServerCAKey": "ca.key", "ServiceKey": "sa.key", "ServiceKeyPub": "sa.pub"}
}

func readBootstrap(tlsDir string) (map[string]BootstrapFile, error) {
	out := map[string]BootstrapFile{}
	for k, f := range bootstrapFiles() {
		p := filepath.Join(tlsDir, f)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", k, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", k, err)
		}
		out[k] = BootstrapFile{Timestamp: st.ModTime().UTC(), Content: b}
	}
	return out, nil
}

// writeBootstrap writes the bootstrap data a joining server received.
func writeBootstrap(tlsDir string, data map[string]BootstrapFile) error {
	for k, f := range bootstrapFiles() {
		bf, ok := data[k]
		if !ok || len(bf.Content) == 0 {
			return fmt.Errorf("server bootstrap data lacks %s", k)
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(f, ".crt") || strings.HasSuffix(f, ".pub") {
			mode = 0o644
		}
		if err := writeFileAtomic(filepath.Join(tlsDir, f), bf.Content, mode); err != nil {
			return err
		}
	}
	return nil
}

// fetchServerBootstrap is a joining server's first step (K3s:
// pkg/cluster/bootstrap.go, httpBootstrap): verify the server's CA
// against the token, get /v1-k3s/server-bootstrap as user "server", write
// the CA and service-account keys and the token, as the server's own.
func fetchServerBootstrap(ctx context.Context, l Layout, base string, tok Token) ([]byte, error) {
	ca, err := getCACerts(ctx, base, tok)
	if err != nil {
		return nil, err
	}
	cl := newSupervisorClient(base, tok, ca, nil)
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("server", tok.Password)
	b, err := httpDo(ctx, cl.http, http.MethodGet, base+supervisorPrefix+"server-bootstrap",
		http.Header{"Authorization": {req.Header.Get("Authorization")}}, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get server bootstrap data: %w", err)
	}
	var data map[string]BootstrapFile
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, fmt.Errorf("decode server bootstrap data: %w", err)
	}
	if err := os.MkdirAll(l.TLSDir(), 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", l.TLSDir(), err)
	}
	if err := writeBootstrap(l.TLSDir(), data); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data["ServerCA"].Content)
	full := "K10" + hex.EncodeToString(sum[:]) + "::server:" + tok.Password + "\n"
	if err := writeFileAtomic(l.TokenFile(), []byte(full), 0o600); err != nil {
		return nil, err
	}
	return ca, nil
}

// fetchDBInfo is K3s's ClientURLs call: /db/info of the server joined, as
// user "server".
func fetchDBInfo(ctx context.Context, base string, tok Token, ca []byte) ([]EtcdMember, error) {
	cl := newSupervisorClient(base, tok, ca, nil)
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("server", tok.Password)
	b, err := httpDo(ctx, cl.http, http.MethodGet, base+"/db/info", http.Header{"Authorization": {req.Header.Get("Authorization")}}, nil)
	if err != nil {
		return nil, fmt.Errorf("get etcd members from %s (is it a server with embedded etcd?): %w", base, err)
	}
	var m EtcdMembers
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode /db/info: %w", err)
	}
	return m.Members, nil
}
