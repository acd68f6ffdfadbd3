// Command etcd is the embedded etcd of the K3s stand-in's server mode
// (test/k3slauncher): go.etcd.io/etcd/server/v3/embed configured as K3s's
// pkg/etcd configures it (client and peer TLS with client certificate
// authentication, election timeout 5000 ms, heartbeat 500 ms), plus the two
// jobs K3s runs beside it: the one-time migration of a kine/SQLite
// datastore into a new etcd cluster (K3s: migrateFromSQLite, every key
// under /registry/, then state.db is renamed state.db.migrated), and the
// leader's promotion of learners (K3s: manageLearners).
//
// It is a test double, never shipped, built by scripts/test-deps into the
// component directory as etcd-<version>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
}

type options struct {
	name, dataDir                         string
	listenClient, advertiseClient         string
	listenPeer, advertisePeer             string
	initialCluster, initialState          string
	certFile, keyFile, caFile             string
	peerCertFile, peerKeyFile, peerCAFile string
	migrateFrom, migrateFile              string
	promoteEvery                          time.Duration
	electionMillis, heartbeatMillis       uint
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.StringVar(&o.name, "name", "", "member name")
	fs.StringVar(&o.dataDir, "data-dir", "", "data directory (K3s: <data-dir>/server/db/etcd)")
	fs.StringVar(&o.listenClient, "listen-client-urls", "", "client URLs to listen on, comma-separated")
	fs.StringVar(&o.advertiseClient, "advertise-client-urls", "", "client URLs to advertise")
	fs.StringVar(&o.listenPeer, "listen-peer-urls", "", "peer URLs to listen on")
	fs.StringVar(&o.advertisePeer, "initial-advertise-peer-urls", "", "peer URLs to advertise")
	fs.StringVar(&o.initialCluster, "initial-cluster", "", "name=peerURL,…")
	fs.StringVar(&o.initialState, "initial-cluster-state", "new", "new or existing")
	fs.StringVar(&o.certFile, "cert-file", "", "client-facing server certificate")
	fs.StringVar(&o.keyFile, "key-file", "", "client-facing server key")
	fs.StringVar(&o.caFile, "trusted-ca-file", "", "CA of client certificates")
	fs.StringVar(&o.peerCertFile, "peer-cert-file", "", "peer certificate (server and client)")
	fs.StringVar(&o.peerKeyFile, "peer-key-file", "", "peer key")
	fs.StringVar(&o.peerCAFile, "peer-trusted-ca-file", "", "CA of peer certificates")
	fs.StringVar(&o.migrateFrom, "migrate-from", "", "kine endpoint to copy /registry/ from into a new cluster")
	fs.StringVar(&o.migrateFile, "migrate-file", "", "the SQLite file renamed <file>.migrated after the copy")
	fs.DurationVar(&o.promoteEvery, "promote-learners-every", 15*time.Second, "how often the leader tries to promote learners")
	fs.UintVar(&o.electionMillis, "election-timeout", 5000, "election timeout (ms)")
	fs.UintVar(&o.heartbeatMillis, "heartbeat-interval", 500, "heartbeat interval (ms)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	for flagName, v := range map[string]string{"name": o.name, "data-dir": o.dataDir, "listen-client-urls": o.listenClient,
		"advertise-client-urls": o.advertiseClient, "listen-peer-urls": o.listenPeer, "initial-advertise-peer-urls": o.advertisePeer,
		"initial-cluster": o.initialCluster, "cert-file": o.certFile, "key-file": o.keyFile, "trusted-ca-file": o.caFile,
		"peer-cert-file": o.peerCertFile, "peer-key-file": o.peerKeyFile, "peer-trusted-ca-file": o.peerCAFile} {
		if v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", flagName))
		}
	}
	if o.initialState != "new" && o.initialState != "existing" {
		errs = append(errs, fmt.Errorf("--initial-cluster-state %q is not new or existing", o.initialState))
	}
	if o.migrateFrom != "" && (o.initialState != "new" || o.migrateFile == "") {
		errs = append(errs, errors.New("--migrate-from needs --initial-cluster-state new and --migrate-file"))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	return o, errors.Join(errs...)
}

func urls(s string) ([]url.URL, error) {
	var out []url.URL
	for _, p := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("%q is not an https URL", p)
		}
		out = append(out, *u)
	}
	return out, nil
}

func config(o options) (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = o.name, o.dataDir
	var err error
	if cfg.ListenClientUrls, err = urls(o.listenClient); err != nil {
		return nil, fmt.Errorf("listen-client-urls: %w", err)
	}
	if cfg.AdvertiseClientUrls, err = urls(o.advertiseClient); err != nil {
		return nil, fmt.Errorf("advertise-client-urls: %w", err)
	}
	if cfg.ListenPeerUrls, err = urls(o.listenPeer); err != nil {
		return nil, fmt.Errorf("listen-peer-urls: %w", err)
	}
	if cfg.AdvertisePeerUrls, err = urls(o.advertisePeer); err != nil {
		return nil, fmt.Errorf("initial-advertise-peer-urls: %w", err)
	}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster, cfg.ClusterState = o.initialCluster, o.initialState
	cfg.InitialClusterToken = "etcd-cluster"
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = o.certFile, o.keyFile
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = o.caFile, true
	cfg.PeerTLSInfo.CertFile, cfg.PeerTLSInfo.KeyFile = o.peerCertFile, o.peerKeyFile
	cfg.PeerTLSInfo.TrustedCAFile, cfg.PeerTLSInfo.ClientCertAuth = o.peerCAFile, true
	cfg.ElectionMs, cfg.TickMs = o.electionMillis, o.heartbeatMillis
	cfg.Logger, cfg.LogOutputs, cfg.LogLevel = "zap", []string{"stderr"}, "warn"
	// Kubernetes's own etcd settings K3s keeps: a 2 GiB quota.
	cfg.QuotaBackendBytes = 2 << 30
	return cfg, cfg.Validate()
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	cfg, err := config(o)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		return nil
	}
	fmt.Fprintf(os.Stderr, "etcd: member %s ready (%s)\n", o.name, o.initialState)
	local := v3client.New(e.Server)
	defer local.Close()
	if o.migrateFrom != "" {
		if err := migrate(ctx, o.migrateFrom, local, o.migrateFile); err != nil {
			return fmt.Errorf("failed to migrate content from sqlite to etcd: %w", err)
		}
	}
	tick := time.NewTicker(o.promoteEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-e.Err():
			return fmt.Errorf("serve: %w", err)
		case <-tick.C:
			promoteLearners(ctx, local, e.Server.MemberID(), e.Server.Leader())
		}
	}
}

// migrate copies every key under /registry/ from the kine endpoint into
// etcd and renames the SQLite file, as K3s's migrateFromSQLite.
func migrate(ctx context.Context, from string, to *clientv3.Client, file string) error {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	src, err := clientv3.New(clientv3.Config{Endpoints: []string{from}, DialTimeout: 5 * time.Second, Context: ctx})
	if err != nil {
		return err
	}
	defer src.Close()
	resp, err := src.Get(ctx, "/registry/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		if _, err := to.Put(ctx, string(kv.Key), string(kv.Value)); err != nil {
			return fmt.Errorf("put %s: %w", kv.Key, err)
		}
	}
	fmt.Fprintf(os.Stderr, "etcd: migrated %d keys from sqlite\n", len(resp.Kvs))
	return os.Rename(file, file+".migrated")
}

type memberID interface{ ~uint64 }

func promoteLearners[T memberID](ctx context.Context, c *clientv3.Client, self, leader T) {
	if self != leader {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	members, err := c.MemberList(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd: list members for learner management:", err)
		return
	}
	for _, m := range members.Members {
		if !m.IsLearner {
			continue
		}
		if _, err := c.MemberPromote(ctx, m.ID); err != nil {
			fmt.Fprintf(os.Stderr, "etcd: learner %s not promoted yet: %v\n", m.Name, err)
		} else {
			fmt.Fprintf(os.Stderr, "etcd: promoted learner %s\n", m.Name)
		}
		return
	}
}
