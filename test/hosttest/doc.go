// Package hosttest makes and boots a Debian host with a real systemd for
// tests: a debootstrapped root (cached as a tarball under .cache/hosttest)
// booted with systemd-nspawn, sharing the host's network by default, or
// (Options.Network) in its own network namespace on a test bridge.
package hosttest
