// Package launcher is the library of the K3s-compatible launcher in
// test/k3slauncher.
//
// The launcher is a TEST DOUBLE for the K3s release binary, which cannot be
// fetched in this build environment. It is never shipped: tpctl's release
// embeds the real K3s (scripts/fetch-k3s). The install end-to-end tests give
// it to `tpctl install --k3s-binary` so that the whole install runs against a
// real systemd and a real Kubernetes node.
//
// It behaves like `k3s server` where tpctl depends on it: it accepts exactly
// the server keys tpctl writes (Keys, equal to installer.K3sConfigKeys) in
// /etc/rancher/k3s/config.yaml, its drop-ins config.yaml.d/*.yaml (merged as
// K3s merges them, key+ appending) and on the command line, and rejects any
// other with an error naming it, so drift shows; it runs the upstream
// components (kine on SQLite, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd 2 built from github.com/containerd/containerd/v2,
// kubelet, kube-proxy, a bridge CNI network named cni0 with the portmap
// plugin) as its children; it keeps its state in the
// data dir K3s uses (server/tls, server/db, agent/etc/containerd,
// agent/images, …), generates containerd's config.toml in K3s's version 3
// layout (no restrict_oom_score_adj key, as K3s's) or renders it from
// config-v3.toml.tmpl, else config.toml.tmpl, when one is there, imports the image archives of <data-dir>/agent/images at
// every start and pins them (io.cri-containerd.pinned=pinned), skipping those
// an opt-in .cache.json records unchanged, and imports archives that appear
// there while it runs (airgap.go), writes the admin kubeconfig to /etc/rancher/k3s/k3s.yaml with
// write-kubeconfig-mode, and sends READY=1 to systemd once the API server
// answers /readyz, as K3s does (the node becomes Ready later), never passing
// NOTIFY_SOCKET to its children. After READY=1 it deploys K3s's packaged
// components unless disabled: CoreDNS, Traefik (a stand-in image holding 80
// and 443 through a LoadBalancer Service), local storage (the default
// StorageClass local-path and a stand-in provisioner making hostPath
// volumes in <data-dir>/storage) and the service load balancer
// (servicelb.go: a svclb-<service>-<uid> DaemonSet per LoadBalancer Service
// whose pods hold hostPort = port, and the nodes of Ready svclb pods as the
// Service's ingress). On SIGTERM it stops the components in order (kubelet
// and kube-proxy, then the control plane and containerd, then the
// datastore); containerd's shims and the pods stay up, as with K3s under
// KillMode=process.
//
// metrics-server is a kube-system Deployment of that name running the pause
// image (metricsserver.go): tpctl waits for it as for any packaged add-on,
// but it serves no metrics API.
//
// The supervisor (supervisor.go, supervisor_server.go) is K3s's: kube-apiserver
// listens on 127.0.0.1:6444 and the launcher's own TLS listener on 6443
// (every address) serves /cacerts, /ping and the /v1-k3s/ routes an agent
// uses — serving-kubelet.crt, client-kubelet.crt, client-kube-proxy.crt
// (a POSTed CSR is signed; a GET gets a key too), client-ca.crt,
// server-ca.crt, config (a JSON subset of K3s's config.Control under its
// field names: ClusterDNS, ClusterDomain, ClusterIPRange, ServiceIPRange,
// ServiceNodePortRange, FlannelBackend, DisableNPC), apiservers, readyz —
// and forwards every other request to the API server. The /v1-k3s/ routes
// take K3s's credentials: basic auth "server:<passphrase>" (group
// k3s:server) or "node:<passphrase>" (k3s:agent; server/agent-token is
// "K10<CA hash>::node:<passphrase>", the server token's passphrase, as K3s
// without an agent-token), a bootstrap token "<id>.<secret>" as bearer,
// checked against the kube-system Secret bootstrap-token-<id> as
// Kubernetes's bootstrap authenticator does (what `k3s token create`
// makes; the controller manager runs the tokencleaner), or a client
// certificate of the cluster CA (a node's, to rejoin after its token
// expired; a valid token wins over the certificate, so a join that stopped
// before its Node registered resumes). The kubelet certificate routes need the K3s-Node-Name and
// K3s-Node-Password headers: the password's scrypt hash (K3s's format) is
// kept in the immutable kube-system Secret <node>.node-password.k3s (type
// k3s.cattle.io/node-password), made at the first request; another
// password for the same name is refused with 403. As K3s's node-password
// controller, each such Secret gets its Node as owner (the garbage
// collector deletes it with the Node) and one older than ten minutes
// without a Node is deleted. Forwarded requests: a client certificate of
// the CA is passed on as request-header identity (X-Remote-User/Group with
// the system:auth-proxy certificate); anything else goes as it came, and
// X-Remote-* headers from clients are dropped. The kubernetes Service's
// EndpointSlice and Endpoints point at <node-ip>:6443 (the API server runs
// with endpoint-reconciler-type=none: K3s's API server advertises 6443
// through a flag the upstream one lacks). Differences from K3s: one CA
// instead of K3s's server, client and request-header CAs; no /v1-k3s/
// connect tunnel (the API server reaches agents' kubelets directly at their
// InternalIP:10250); no server-only routes (server-bootstrap, token,
// encrypt, cert rotation); the listener speaks HTTP/1.1 only; the
// apiservers route reads the EndpointSlices only (no etcd).
//
// `k3slauncher agent` (agent.go, agentconfig.go, loadbalancer.go) joins a
// node the way K3s's agent does. It accepts exactly AgentKeys — server,
// token, token-file, node-name, node-ip, node-label, node-taint, data-dir,
// kubelet-arg, all K3s agent keys — from /etc/rancher/k3s/config.yaml, its
// drop-ins and the command line (merged as in server mode; any other key,
// server keys included, is refused naming it), and K3S_URL, K3S_TOKEN,
// K3S_TOKEN_FILE, K3S_NODE_NAME for keys still unset. The token is parsed
// as K3s's (K10<hash>::user:pass, K10<hash>::<id>.<secret>, or the short
// form); the agent authenticates as user "node" with its password, or with
// the bootstrap token. In order: it makes /etc/rancher/node/password
// (random, 0600) at the first start; listens on 127.0.0.1:6444 as K3s's
// agent load balancer (TCP, the --server address first, then those
// /v1-k3s/apiservers reports; state in
// <data-dir>/agent/etc/k3s-agent-load-balancer.json); fetches /cacerts
// through it without verification, refuses a CA whose hash differs from
// the token's ("token CA hash does not match the Cluster CA certificate
// hash") before sending any credential, then verifies the server with it
// (on any failure it logs and tries again every 2 s, as K3s's agent);
// reads /v1-k3s/config; posts CSRs for
// serving-kubelet, client-kubelet (with the node name, password and
// address headers) and client-kube-proxy, keeping keys and certificates in
// <data-dir>/agent (client-ca.crt, server-ca.crt, kubelet.kubeconfig and
// kubeproxy.kubeconfig pointing at the load balancer); a refused node
// password ends the agent (exit 1). It then starts containerd (same
// config generation and templates as the server), imports
// <data-dir>/agent/images (and watches it), starts the kubelet (node-label
// and node-taint as --node-labels and --register-with-taints, kubelet-arg
// as flags), waits for /v1-k3s/readyz, starts kube-proxy, waits for its
// Node's podCIDR and writes the bridge network over it, then sends READY=1
// (K3s's agent notifies after its network starts). SIGTERM stops kubelet
// and kube-proxy, then containerd; pods and shims stay.
//
// Cross-node pod traffic, in both modes: each node routes every other
// node's podCIDR via that node's InternalIP (flannel's host-gw backend;
// `ip route replace … proto 248`, routes of nodes gone are deleted, every
// 3 s), so both hosts must share a link. The bridge's ipMasq is kept: a pod
// reaching a pod on another node arrives from the node's address, not the
// pod's (flannel keeps the pod address inside the cluster CIDR).
//
// Agent mode does not: run flannel or VXLAN (host-gw routes only, whatever
// backend the server names; "none" from the server means no CNI network and
// no routes on the agent, as on the server), the remote tunnel, the agent's node-config
// annotations and label updates after registration, with-node-id,
// kube-proxy-arg, node-external-ip, rootless, certificate renewal, or any
// key not in AgentKeys. Private registries work in both modes
// (registries.go: <data-dir>/agent/etc/containerd/certs.d/<registry>/hosts.toml
// and the registry auth in config.toml, as K3s renders registries.yaml).
//
// What it does not do: flannel (the bridge network stands in for it;
// flannel-backend none runs no network), the metrics API
// (v1beta1.metrics.k8s.io), HelmChart resources (Traefik is created directly, not
// through helm-install jobs), and any K3s key tpctl does not write.
//
// Embedded etcd (etcd.go, server_etcd.go; the etcd child is
// test/k3slauncher/etcd, go.etcd.io/etcd/server/v3/embed, built as
// etcd-<EtcdVersion>): the server keys cluster-init, server, token and
// token-file (ServerJoinKeys) are accepted besides Keys. cluster-init, a
// server URL, or a WAL under <data-dir>/server/db/etcd makes the datastore
// embedded etcd instead of kine (peer https://<node-ip>:2380, clients
// https://<node-ip>:2379 and https://127.0.0.1:2379, client certificates
// required everywhere). A first start with cluster-init on a server that
// has a SQLite datastore migrates every /registry/ key into the new
// cluster and renames state.db to state.db.migrated (K3s's
// migrateFromSQLite). A server with server and token (the server token or
// its passphrase; agent and bootstrap tokens are refused) verifies the
// server's CA against the token, takes the CA and service-account keys
// from /v1-k3s/server-bootstrap, reads /db/info, adds itself as a learner
// (member name <node-name>-<8 hex>, kept in server/db/etcd/name; another
// member of the same node name is refused as K3s refuses it) and starts
// with initial-cluster-state existing; the leader promotes learners
// (every 15 s, as K3s). The API server starts once the local member
// votes. /db/info and /v1-k3s/server-bootstrap answer the "server" user
// only, and 404 without embedded etcd. The token check of the datastore is
// kept in etcd. With etcd the controller manager and scheduler elect a
// leader, and the kubernetes Service lists every server that answers on
// 6443 (K3s's lease reconciler drops a server after 15 s). Differences:
// one CA for etcd too, no etcd snapshots, no cluster-reset, no
// datastore-endpoint, no member removal when a server's Node is deleted,
// and the stand-in's own controllers (add-ons, servicelb) run on every
// server without leader election.
package launcher
