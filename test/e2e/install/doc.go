// Package install holds the end-to-end test of `tpctl install` and
// `tpctl uninstall` on a booted systemd host (test/hosttest) with a real
// Kubernetes node, run by the K3s-compatible launcher (test/k3slauncher), a
// test double for the K3s release binary. The tests are behind the e2e build
// tag; scripts/test-deps prepares what they need.
package install
