// Package multihost boots a group of Debian hosts with a real systemd
// (test/hosttest), each from its own copy of the root and in its own network
// namespace, joined by veth pairs to one test bridge with its own subnet:
// the machines of a multi-node cluster on one test machine.
package multihost

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/hosttest"
)

// MaxHosts bounds a group: the memory budget is three hosts.
const MaxHosts = 3

// Options tune a Group; the zero value is hosts tpctl-mh-a, -b, -c on
// hosttest.DefaultBridgeName with hosttest.DefaultSubnet().
type Options struct {
	// Hosts is how many hosts boot (1 to MaxHosts).
	Hosts int
	// Prefix of the host names (default "tpctl-mh"): <prefix>-a, -b, -c.
	Prefix string
	// Bridge and Subnet of the test bridge (defaults
	// hosttest.DefaultBridgeName and hosttest.DefaultSubnet()).
	Bridge string
	Subnet netip.Prefix
	// Host is the template of every host's options (Rootfs, BindRO,
	// DropCapabilities); Name, Network and the lock are set per host.
	Host hosttest.Options
	// LockPath defaults to cluster.DefaultLockPath: a group holds the same
	// lock as single hosts and nodes, so none of them overlap.
	LockPath string
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
}

// Group is a set of booted hosts on one bridge.
type Group struct {
	Hosts  []*hosttest.Host
	Bridge *hosttest.Bridge

	lock      *cluster.HostLock
	before    cluster.HostSnapshot
	routes    []string
	logf      func(string, ...any)
	boot      time.Duration
	closeOnce sync.Once
	closeErr  error
}

// Start boots n hosts for the test and tears them down in t.Cleanup
// (printing each host's console and failed units when the test failed).
// Needs root.
func Start(ctx context.Context, t testing.TB, n int) *Group {
	t.Helper()
	return StartWith(ctx, t, Options{Hosts: n})
}

// StartWith is Start with options.
func StartWith(ctx context.Context, t testing.TB, opts Options) *Group {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: booted hosts mount, make cgroups, a bridge and veth pairs")
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	g, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("boot hosts: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range g.Hosts {
				t.Log(h.Diagnostics(context.Background()))
			}
		}
		if err := g.Close(); err != nil {
			t.Errorf("tear down hosts: %v", err)
		}
	})
	return g
}

// New takes the host lock, removes what a killed test left, snapshots this
// machine, makes the bridge and boots the hosts at once; the caller must
// Close the group.
func New(ctx context.Context, opts Options) (_ *Group, err error) {
	if opts.Hosts < 1 || opts.Hosts > MaxHosts {
		return nil, fmt.Errorf("a group has 1 to %d hosts, not %d", MaxHosts, opts.Hosts)
	}
	if opts.Prefix == "" {
		opts.Prefix = "tpctl-mh"
	}
	// nspawn names the veth on this machine vb-<name>, shortened past 15
	// characters: keep names short enough to stay readable.
	if len(opts.Prefix) > 10 {
		return nil, fmt.Errorf("host name prefix %q: at most 10 characters", opts.Prefix)
	}
	g := &Group{logf: opts.Logf}
	if g.logf == nil {
		g.logf = func(string, ...any) {}
	}
	lockPath := opts.LockPath
	if lockPath == "" {
		lockPath = cluster.DefaultLockPath
	}
	if g.lock, err = cluster.AcquireHostLock(ctx, lockPath); err != nil {
		return nil, err
	}
	if err := hosttest.RecoverStale(lockPath, g.logf); err != nil {
		_ = g.lock.Release()
		return nil, err
	}
	if g.before, err = cluster.TakeHostSnapshot(ctx); err != nil {
		_ = g.lock.Release()
		return nil, fmt.Errorf("snapshot this machine: %w", err)
	}
	if g.routes, err = hosttest.MachineRoutes(ctx); err != nil {
		_ = g.lock.Release()
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, h := range g.Hosts {
				if d := h.Diagnostics(context.Background()); d != "" {
					err = fmt.Errorf("%w\n%s", err, d)
				}
			}
			err = errors.Join(err, g.Close())
		}
	}()
	if g.Bridge, err = hosttest.NewBridge(ctx, hosttest.BridgeOptions{Name: opts.Bridge, Subnet: opts.Subnet, LockPath: lockPath}); err != nil {
		return nil, err
	}
	begin := time.Now()
	hosts := make([]*hosttest.Host, opts.Hosts)
	errs := make([]error, opts.Hosts)
	var wg sync.WaitGroup
	for i := range hosts {
		ho := opts.Host
		ho.Name = fmt.Sprintf("%s-%c", opts.Prefix, 'a'+i)
		ho.LockPath, ho.HostLock, ho.Logf = lockPath, g.lock, g.logf
		ho.Network = &hosttest.Network{Bridge: g.Bridge}
		wg.Add(1)
		go func(i int, ho hosttest.Options) {
			defer wg.Done()
			hosts[i], errs[i] = hosttest.New(ctx, ho)
		}(i, ho)
	}
	wg.Wait()
	for _, h := range hosts {
		if h != nil {
			g.Hosts = append(g.Hosts, h)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g.boot = time.Since(begin)
	var names []string
	for _, h := range g.Hosts {
		names = append(names, h.Name()+" "+h.Address().String())
	}
	g.logf("multihost: %d hosts booted in %s on %s (%s, gateway %s): %s", len(g.Hosts), g.boot.Round(time.Millisecond),
		g.Bridge.Name(), g.Bridge.Subnet(), g.Bridge.Gateway(), strings.Join(names, ", "))
	return g, nil
}

// Boot is the time from the first host's start to the last host's boot.
func (g *Group) Boot() time.Duration { return g.boot }

// Close tears the hosts down (at once), removes the bridge, checks this
// machine against the snapshot taken before (interfaces, addresses,
// firewall, mounts, sysctls, routes and rules: any difference is an
// error) and releases the lock.
func (g *Group) Close() error {
	g.closeOnce.Do(func() {
		errs := make([]error, len(g.Hosts))
		var wg sync.WaitGroup
		for i, h := range g.Hosts {
			wg.Add(1)
			go func(i int, h *hosttest.Host) {
				defer wg.Done()
				errs[i] = h.Close()
			}(i, h)
		}
		wg.Wait()
		if g.Bridge != nil {
			errs = append(errs, g.Bridge.Close())
		}
		if err := errors.Join(errs...); err == nil && g.before.Sysctls != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			after, err := cluster.TakeHostSnapshot(ctx)
			errs = append(errs, err)
			d := g.before.Diff(after)
			routes, err := hosttest.MachineRoutes(ctx)
			errs = append(errs, err)
			d = append(d, hosttest.DiffLines("route", g.routes, routes)...)
			if len(d) > 0 {
				errs = append(errs, fmt.Errorf("this machine differs after teardown:\n  %s", strings.Join(d, "\n  ")))
			}
		}
		if g.lock != nil {
			errs = append(errs, g.lock.Release())
		}
		g.closeErr = errors.Join(errs...)
	})
	return g.closeErr
}
