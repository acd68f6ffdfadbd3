// Package release tests the release path end to end: scripts/release builds
// the dist/ layout (tpctl-linux-<arch>, install.sh, SHA256SUMS), and
// scripts/install.sh installs from it.
//
// Build tag integration: install.sh under dash and busybox ash, against a
// release served over HTTP on 127.0.0.1 by the test process and through
// file://, with the real binary in a private mount namespace whose
// /usr/local/bin is a temporary directory (the host's is never touched);
// refusals (tampered or truncated binary, 404, not root, unsupported
// architecture, missing tools) with their exit codes; a release built from
// local K3s artifacts.
//
// Build tag e2e: the documented one-liner in a booted Debian with a real
// systemd (test/hosttest), and two builds of the same commit compared byte
// for byte (scripts/check-reproducible).
package release
