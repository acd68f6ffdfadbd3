// Package join holds the multi-host end-to-end tests of `tpctl token
// create` and `tpctl join`: booted Debian hosts on one test bridge
// (test/multihost), tpctl installed on the first, the others joined to it.
package join
