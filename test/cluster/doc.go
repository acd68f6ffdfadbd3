// Package cluster runs real Kubernetes for tests, built from upstream sources
// by scripts/test-deps (binaries in .cache/bin, or $TPCTL_TEST_BIN):
//
//   - ControlPlane: kine (SQLite) + kube-apiserver on 127.0.0.1 and free
//     ports. Up in a few seconds; no nodes, so no pods run. For CRDs, CEL
//     validation, Helm releases, watches and controllers run in-process.
//     Several may run at once (tests in parallel packages).
//   - Node: the full single node: kine, kube-apiserver, kube-controller-manager,
//     kube-scheduler, containerd 2 (built from github.com/containerd/containerd/v2,
//     the stand-in K3s's release; version 3 configuration with every path
//     under the harness directory, restrict_oom_score_adj, sandbox image
//     built from test/images/pause), kubelet (cgroupfs, cgroup v1 accepted),
//     kube-proxy (iptables), a bridge CNI network and CoreDNS. Pods run,
//     Services, NodePorts and cluster DNS work. One Node per host at a time:
//     a flock on DefaultLockPath serialises them across test processes.
//
// CoreDNS runs as a host process bound to the node address (a /32 alias on
// lo, DefaultNodeIP); the kube-dns Service (ClusterDNS) has a hand-made
// EndpointSlice pointing at it. That keeps DNS out of the scheduling path and
// needs no image, while pods still reach it through kube-proxy like any
// Service. It has no upstream resolver: only cluster names resolve.
//
// Tests that use these are behind build tags so `go test ./...` stays fast:
// `integration` for ControlPlane, `e2e` for Node (run e2e packages with -p 1).
// Both register t.Cleanup, write component logs to the test log when the
// test failed, and (Node) put the host back as it was: processes, mounts,
// bridge and veths, KUBE-*/CNI-* chains, nft tables, the lo alias, sysctls,
// kubepods cgroups and paths that did not exist before. TakeHostSnapshot and
// HostSnapshot.Diff check that.
//
// # One harness per package
//
// Starting a harness per test is simple (StartControlPlane(ctx, t)); to share
// one across a package's tests, start it in TestMain with NewControlPlane or
// NewNode and close it after m.Run:
//
//	//go:build integration
//
//	package mypkg
//
//	var cp *cluster.ControlPlane
//
//	func TestMain(m *testing.M) {
//		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
//		var err error
//		cp, err = cluster.NewControlPlane(ctx, cluster.ControlPlaneOptions{})
//		cancel()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		if code != 0 {
//			cp.DumpLogs(os.Stderr, 200)
//		}
//		if err := cp.Close(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
// Tests then use cp.RESTConfig() and should work in their own namespace;
// test/cluster/shared is a package that does exactly this.
// A Node is shared the same way (NewNode(ctx, NodeOptions{Images: …}), then
// n.Close()); its tests import their images with n.ImportImage and use
// imagePullPolicy Never with a non-latest tag.
package cluster
