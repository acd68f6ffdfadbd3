package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

func startPlain(t *testing.T, name, client, peer string) *embed.Etcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = name, t.TempDir()
	cu, _ := url.Parse(client)
	pu, _ := url.Parse(peer)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = name + "=" + peer
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	return e
}

// migrate copies /registry/ only and renames the SQLite file, as K3s.
func TestMigrate(t *testing.T) {
	src := startPlain(t, "src", "http://127.0.0.1:23790", "http://127.0.0.1:23800")
	dst := startPlain(t, "dst", "http://127.0.0.1:23791", "http://127.0.0.1:23801")
	ctx := context.Background()
	sc := v3client.New(src.Server)
	defer sc.Close()
	for k, v := range map[string]string{"/registry/a": "1", "/registry/pods/x": "2", "compact_rev_key": "9"} {
		if _, err := sc.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(file, []byte("db"), 0o600); err != nil {
		t.Fatal(err)
	}
	dc := v3client.New(dst.Server)
	defer dc.Close()
	if err := migrate(ctx, "http://127.0.0.1:23790", dc, file); err != nil {
		t.Fatal(err)
	}
	resp, err := dc.Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if len(got) != 2 || got["/registry/a"] != "1" || got["/registry/pods/x"] != "2" {
		t.Fatalf("migrated %v, want the two /registry/ keys", got)
	}
	if _, err := os.Stat(file + ".migrated"); err != nil {
		t.Fatalf("state.db not renamed: %v", err)
	}
	// Nothing to migrate without the file.
	if err := migrate(ctx, "http://127.0.0.1:23790", dc, file); err != nil {
		t.Fatal(err)
	}
}

func TestParseRefuses(t *testing.T) {
	if _, err := parse([]string{"--name=a"}); err == nil {
		t.Fatal("missing flags accepted")
	}
	full := []string{"--name=a", "--data-dir=/d", "--listen-client-urls=https://127.0.0.1:2379", "--advertise-client-urls=https://127.0.0.1:2379",
		"--listen-peer-urls=https://127.0.0.1:2380", "--initial-advertise-peer-urls=https://127.0.0.1:2380", "--initial-cluster=a=https://127.0.0.1:2380",
		"--cert-file=c", "--key-file=k", "--trusted-ca-file=ca", "--peer-cert-file=c", "--peer-key-file=k", "--peer-trusted-ca-file=ca"}
	if _, err := parse(full); err != nil {
		t.Fatal(err)
	}
	if _, err := parse(append(full, "--migrate-from=http://127.0.0.1:2399", "--initial-cluster-state=existing", "--migrate-file=f")); err == nil {
		t.Fatal("migration into an existing cluster accepted")
	}
	o, _ := parse(full)
	o.listenClient = "http://127.0.0.1:2379"
	if _, err := config(o); err == nil {
		t.Fatal("a plain-HTTP client URL accepted")
	}
}
