// Package shared shows (and tests) the one-harness-per-package pattern: its
// TestMain starts one ControlPlane that every test of the package uses.
package shared
