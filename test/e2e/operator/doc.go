// Package operator holds the end-to-end tests of the tpctl operator on a
// real single-node Kubernetes (test/cluster Node, build tag e2e): the
// operator image built by the project runs as a pod from the tp-operator
// chart, pipelines run the harness's sink image, and traffic from the host
// reaches their backends through their frontends.
package operator
