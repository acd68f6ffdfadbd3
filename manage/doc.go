// Package manage holds the client-side operations on pipelines and core
// instances that `tpctl pipeline …`, `tpctl instance …` and the terminal UI
// share: finding the kubeconfig, reading and writing Pipeline and
// CoreInstance objects, waiting for the operator, computing the address a
// client uses for each port, and rendering tables.
//
// # Kubeconfig
//
// ResolveKubeconfig looks, in order, at the --kubeconfig flag, $KUBECONFIG,
// the kubeconfig of the K3s that tpctl installed (/etc/rancher/k3s/k3s.yaml)
// and ~/.kube/config, and says which one it took.
//
// # Writes
//
// Create and update validate first, without the cluster, with the rules the
// CRD and the operator apply (package pipeline): a pipeline name that can
// name its Service, known protocols and Service types, and backend ports
// unique within the pipeline (a duplicate names both entries). A create
// checks that the instance exists and, when none is named and exactly one
// exists, uses it. Updates change only the fields the caller sets
// (PipelineChange), so changing the image never resets the Service type.
// Rejections by the API server come back as *APIError with the server's
// reason. WriteOptions.DryRun sends the request as a server-side dry run:
// the server validates it and nothing is stored.
//
// # Endpoints
//
// Endpoints turns a pipeline's assigned triplets and its Service into the
// address a client uses per Service type: ClusterIP → the cluster IP and the
// frontend (inside the cluster), NodePort → a node address and the node
// port, LoadBalancer → the load balancer's address and the frontend (or,
// while none is assigned, the node port as a fallback).
//
// # API
//
// API is the interface the terminal UI drives; *Client implements it over
// a controller-runtime client, and package managetest holds an in-memory
// implementation for model tests.
package manage
