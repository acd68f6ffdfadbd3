// Package ha holds the end-to-end test of K3s high availability through
// tpctl: three booted Debian hosts on one test bridge (test/multihost),
// tpctl installed on the first, converted to K3s's embedded etcd by `tpctl
// token create --role server`, the other two joined as servers.
package ha
