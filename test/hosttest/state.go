package hosttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tpctl/tpctl/test/cluster"
)

// staleEntry is what teardown needs of one Host or Bridge, kept beside the
// host lock while it exists: when its test process is killed, the next
// holder of the lock removes it (RecoverStale).
type staleEntry struct {
	PID      int      `json:"pid"`
	Dir      string   `json:"dir,omitempty"`     // the host's directory (root, console log)
	Cgroups  []string `json:"cgroups,omitempty"` // the host's cgroups
	Bridge   string   `json:"bridge,omitempty"`  // a test bridge
	NFTTable string   `json:"nftTable,omitempty"`
	// Network is the machine's network as it was before a host that
	// shares it booted: what K3s added since (the node address on lo,
	// cni0, kube-proxy's chains and tables, sysctls) is undone from it.
	Network *cluster.HostSnapshot `json:"network,omitempty"`
}

// staleDir is the directory of state entries for the lock at lockPath.
func staleDir(lockPath string) string { return lockPath + ".hosttest" }

// saveStale writes one entry (0600) and returns its path.
func saveStale(lockPath, key string, e staleEntry) (string, error) {
	dir := staleDir(lockPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("make state dir %s: %w", dir, err)
	}
	e.PID = os.Getpid()
	data, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode host state: %w", err)
	}
	p := filepath.Join(dir, key+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return "", fmt.Errorf("write host state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("write host state: %w", err)
	}
	return p, nil
}

func removeStale(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove host state: %w", err)
	}
	return nil
}

// RecoverStale removes what hosts and bridges of a killed test left (their
// entries beside the lock at lockPath; "" is cluster.DefaultLockPath):
// processes in their cgroups, the cgroups, what K3s changed in the
// machine's network when the host shared it, their directories, bridges and
// their nftables tables. The caller holds the lock. Entries of this
// process are its own live hosts and are kept.
func RecoverStale(lockPath string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := staleDir(lockPathOr(lockPath))
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read host state: %w", err)
	}
	var errs []error
	var hosts, bridges []string
	for _, ent := range ents {
		switch name := ent.Name(); {
		case strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(filepath.Join(dir, name))
		case strings.HasPrefix(name, "bridge-"):
			bridges = append(bridges, name)
		case strings.HasSuffix(name, ".json"):
			hosts = append(hosts, name)
		}
	}
	// Hosts first: a bridge goes once its hosts' veth pairs are gone.
	for _, name := range append(hosts, bridges...) {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read host state: %w", err))
			continue
		}
		var e staleEntry
		if err := json.Unmarshal(data, &e); err != nil {
			errs = append(errs, fmt.Errorf("decode host state %s: %w", p, err))
			continue
		}
		if e.PID == os.Getpid() {
			continue
		}
		logf("hosttest: cleaning up after a test that was killed (%s)", strings.TrimSuffix(name, ".json"))
		if err := e.remove(); err != nil {
			errs = append(errs, fmt.Errorf("clean up %s: %w", name, err))
			continue
		}
		errs = append(errs, removeStale(p))
	}
	return errors.Join(errs...)
}

// remove tears down one stale entry.
func (e staleEntry) remove() error {
	var errs []error
	if len(e.Cgroups) > 0 {
		errs = append(errs, (&Host{cgroups: e.Cgroups}).removeCgroups())
	}
	if e.Network != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		errs = append(errs, (&Host{before: *e.Network}).restoreNetwork(ctx))
		cancel()
	}
	if e.Dir != "" && strings.HasPrefix(filepath.Clean(e.Dir), os.TempDir()+"/tpctl-hosttest-") {
		if err := detachBelow(e.Dir); err != nil {
			errs = append(errs, err)
		} else if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", e.Dir, err))
		}
	}
	if e.Bridge != "" || e.NFTTable != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs = append(errs, removeBridge(ctx, e.Bridge, e.NFTTable))
	}
	return errors.Join(errs...)
}
